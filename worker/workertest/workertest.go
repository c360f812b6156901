// Package workertest runs a real JetStream server and a worker for tests:
// an embedded nats-server with JetStream on a random loopback port, a
// connection to it, and collectors for result events and dead letters.
package workertest

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
)

// Server starts an embedded JetStream server on a random loopback port,
// stopped when the test ends.
func Server(t testing.TB) *server.Server {
	t.Helper()
	ns, err := worker.StartEmbedded(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatalf("embedded nats-server: %v", err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Connect opens a connection to url, closed when the test ends.
func Connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Context is a context cancelled when the test ends or after d.
func Context(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Publish publishes env to its inbound subject with its id as Nats-Msg-Id
// and returns the ack.
func Publish(t testing.TB, js jetstream.JetStream, env events.Envelope) *jetstream.PubAck {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.Publish(ctx, events.InboundSubject(env.Source, env.Type), b, jetstream.WithMsgID(env.ID))
	if err != nil {
		t.Fatalf("publish %s: %v", env.ID, err)
	}
	return ack
}

// Results collects every result event published from now on.
type Results struct {
	mu   sync.Mutex
	got  []Result
	cond chan struct{}
}

// Result is one collected result event.
type Result struct {
	Envelope events.Envelope
	Data     events.ResultData
}

// CollectResults follows the results stream from its start until the test
// ends. The results stream must exist (worker.Setup).
func CollectResults(t testing.TB, js jetstream.JetStream) *Results {
	t.Helper()
	ctx := Context(t, time.Hour)
	cons, err := js.OrderedConsumer(ctx, worker.ResultsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("results consumer: %v", err)
	}
	r := &Results{cond: make(chan struct{}, 1)}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		env, err := events.Decode(m.Data())
		if err != nil {
			t.Errorf("result event does not decode: %v: %s", err, m.Data())
			return
		}
		p, _ := env.Payload()
		r.mu.Lock()
		r.got = append(r.got, Result{Envelope: env, Data: *p.(*events.ResultData)})
		r.mu.Unlock()
		select {
		case r.cond <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatalf("consume results: %v", err)
	}
	t.Cleanup(cc.Stop)
	return r
}

// All returns the results collected so far.
func (r *Results) All() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.got...)
}

// Of returns the collected results of one type.
func (r *Results) Of(t events.Type) []Result {
	var out []Result
	for _, x := range r.All() {
		if x.Envelope.Type == t {
			out = append(out, x)
		}
	}
	return out
}

// WaitFor waits until n results of type typ have arrived, failing the test
// after timeout.
func (r *Results) WaitFor(t testing.TB, typ events.Type, n int, timeout time.Duration) []Result {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := r.Of(typ); len(got) >= n {
			return got
		}
		select {
		case <-r.cond:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("waited %s for %d %s results; have %d: %+v", timeout, n, typ, len(r.Of(typ)), r.All())
		}
	}
}

// Eventually polls cond until it holds, failing the test after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Options are worker options tuned for tests: short ack wait, quick
// redeliveries, frequent stats, no provider checks.
func Options() worker.Options {
	o := worker.DefaultOptions()
	o.Concurrency, o.AckWait, o.RetryBase, o.RetryMax, o.AttemptBudget = 4, 2*time.Second, 100*time.Millisecond, time.Second, 3*time.Second
	o.StatsInterval, o.ProviderCheck, o.FetchWait, o.ShutdownTimeout = 200*time.Millisecond, 0, 200*time.Millisecond, 10*time.Second
	return o
}

// Run runs w until the returned stop is called or the test ends; stop
// waits for Run to return and fails the test if it returned an error or
// took more than 30 s.
func Run(t testing.TB, w *worker.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("worker Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("worker Run did not return within 30s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
