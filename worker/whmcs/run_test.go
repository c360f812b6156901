package whmcs

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/whmcs/whmcstest"
)

const resultsStream = "HOOKWORKER_RESULTS"

// runEnv is a results stream created as the worker creates it, a fake WHMCS
// and Run consuming the stream.
type runEnv struct {
	js   jetstream.JetStream
	fake *whmcstest.Server
	cfg  Config
	w    *Writer
}

func startRun(t *testing.T, log *zap.Logger) *runEnv {
	t.Helper()
	_, js := startJetStream(t)
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: resultsStream,
		Subjects: []string{"hookworker.results.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	f := newFake(t)
	cfg := fakeConfig(f)
	w := NewWriter(newClient(t, cfg), newKV(t, js), log)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, js, resultsStream, w, cfg, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	// Wait until the consumer exists, so publishes are not missed... they
	// would not be (DeliverAll), but it makes failures clearer.
	waitFor(t, 5*time.Second, "the write-back consumer", func() bool {
		_, err := js.Consumer(ctx, resultsStream, cfg.WritebackConsumer)
		return err == nil
	})
	return &runEnv{js: js, fake: f, cfg: cfg, w: w}
}

func (e *runEnv) publish(t *testing.T, env events.Envelope) {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	outcome := strings.TrimPrefix(string(env.Type), "provisioning.")
	var d events.ResultData
	_ = json.Unmarshal(env.Data, &d)
	if _, err := e.js.Publish(context.Background(), events.ResultSubject(outcome, env.Source, d.ServiceID), b, jetstream.WithMsgID(env.ID)); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// settled waits until the consumer has nothing pending or unacked.
func (e *runEnv) settled(t *testing.T) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	waitFor(t, 10*time.Second, "the consumer to settle", func() bool {
		c, err := e.js.Consumer(context.Background(), resultsStream, e.cfg.WritebackConsumer)
		if err != nil {
			return false
		}
		info, err = c.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	return info
}

func TestRunWritesBack(t *testing.T) {
	log, logs := observed()
	e := startRun(t, log)
	e.publish(t, result(t, events.ProvisioningSucceeded, "r1", events.ResultData{Action: events.SignupCustomer,
		Provider: "storegrid", ServiceID: 34, ClientID: 12, Reference: "acct-34", WriteBack: map[string]string{"Pass Key": passKey}}))
	e.publish(t, result(t, events.ProvisioningDeadLettered, "r2", events.ResultData{Action: events.Renew,
		Provider: "comet", ServiceID: 35, ClientID: 12, Error: "comet: quota", ErrorClass: events.Permanent}))
	e.publish(t, result(t, events.ProvisioningFailed, "r3", events.ResultData{Action: events.Renew,
		Provider: "comet", ServiceID: 35, ClientID: 12, Attempt: 2, WillRetry: true, Error: "timeout", ErrorClass: events.Transient}))

	waitFor(t, 10*time.Second, "the write-back", func() bool {
		p, _ := e.fake.Product(34)
		return p.Status == "Active" && len(e.fake.Notes(12)) == 1 && len(e.fake.Activity()) == 2
	})
	e.settled(t)
	p, _ := e.fake.Product(34)
	if p.Username != "acct-34" || e.fake.CustomFields(12)[7] != passKey {
		t.Errorf("service = %+v, fields = %d", p, len(e.fake.CustomFields(12)))
	}
	// A replayed result (a new stream message with the same event) is a
	// no-op.
	calls := len(e.fake.Calls())
	env := result(t, events.ProvisioningDeadLettered, "r2", events.ResultData{Action: events.Renew,
		Provider: "comet", ServiceID: 35, ClientID: 12, Error: "comet: quota", ErrorClass: events.Permanent})
	b, _ := json.Marshal(env)
	if _, err := e.js.Publish(context.Background(), "hookworker.results.dead_lettered", b); err != nil {
		t.Fatal(err)
	}
	e.settled(t)
	if len(e.fake.Calls()) != calls || len(e.fake.Notes(12)) != 1 || len(e.fake.Activity()) != 2 {
		t.Errorf("replay wrote again: calls %d→%d, notes %d, activity %d", calls, len(e.fake.Calls()), len(e.fake.Notes(12)), len(e.fake.Activity()))
	}
	if m := moduleCalls(e.fake); len(m) > 0 {
		t.Errorf("Module* calls: %v", m)
	}
	assertNotLogged(t, logs, passKey, e.cfg.Secret)
}

func TestRunWHMCSDownThenUp(t *testing.T) {
	tests := []struct {
		name   string
		typ    events.Type
		data   events.ResultData
		down   func(f *whmcstest.Server)
		check  func(t *testing.T, f *whmcstest.Server)
		minBad int // failed requests the fake must have seen
	}{
		{name: "503s, dead-lettered result",
			typ:  events.ProvisioningDeadLettered,
			data: events.ResultData{Action: events.SignupCustomer, Provider: "comet", ServiceID: 34, ClientID: 12, Error: "x", ErrorClass: events.Permanent},
			down: func(f *whmcstest.Server) { f.FailNext(12, http.StatusServiceUnavailable) },
			check: func(t *testing.T, f *whmcstest.Server) {
				if n := len(f.Notes(12)); n != 1 {
					t.Errorf("notes = %d, want 1", n)
				}
			},
			minBad: 12},
		{name: "dropped connections, succeeded result",
			typ:  events.ProvisioningSucceeded,
			data: events.ResultData{Action: events.SignupCustomer, Provider: "comet", ServiceID: 34, ClientID: 12, Reference: "acct"},
			down: func(f *whmcstest.Server) { f.FailNext(12, 0) },
			check: func(t *testing.T, f *whmcstest.Server) {
				if p, _ := f.Product(34); p.Status != "Active" || p.Username != "acct" {
					t.Errorf("service = %+v", p)
				}
			},
			minBad: 12},
		{name: "log line replies lost",
			typ:  events.ProvisioningSucceeded,
			data: events.ResultData{Action: events.Suspend, Provider: "comet", ServiceID: 34, ClientID: 12, Reference: "acct"},
			down: func(f *whmcstest.Server) { f.LoseNextReplyTo("LogActivity", 1) },
			check: func(t *testing.T, f *whmcstest.Server) {
				if n := len(f.CallsTo("GetActivityLog")); n == 0 {
					t.Error("the retry did not look the line up")
				}
			},
			minBad: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := startRun(t, nil)
			tt.down(e.fake)
			e.publish(t, result(t, tt.typ, "r-down", tt.data))
			waitFor(t, 15*time.Second, "the write-back after WHMCS came back", func() bool { return len(e.fake.Activity()) > 0 })
			info := e.settled(t)
			if n := len(e.fake.Activity()); n != 1 {
				t.Errorf("activity lines = %d, want 1: %+v", n, e.fake.Activity())
			}
			bad := 0
			for _, c := range e.fake.Calls() {
				if c.Status != http.StatusOK {
					bad++
				}
			}
			if bad < tt.minBad {
				t.Errorf("fake saw %d failed requests, want at least %d", bad, tt.minBad)
			}
			if info.NumRedelivered != 0 || info.NumAckPending != 0 {
				t.Errorf("consumer = %+v", info)
			}
			tt.check(t, e.fake)
		})
	}
}

func TestRunPermanentFailureIsTerminated(t *testing.T) {
	log, logs := observed()
	e := startRun(t, log)
	e.fake.SetStrict(true)
	e.publish(t, result(t, events.ProvisioningSucceeded, "r-bad", events.ResultData{Action: events.SignupCustomer,
		Provider: "comet", ServiceID: 404, ClientID: 12, Reference: "acct"}))
	// A malformed message is terminated too.
	if _, err := e.js.Publish(context.Background(), "hookworker.results.succeeded", []byte(`{"not":"an event"}`)); err != nil {
		t.Fatal(err)
	}
	e.fake.AddProduct(whmcstest.Product{ServiceID: 5, ClientID: 12})
	e.publish(t, result(t, events.ProvisioningSucceeded, "r-good", events.ResultData{Action: events.SignupCustomer,
		Provider: "comet", ServiceID: 5, ClientID: 12, Reference: "ok"}))

	waitFor(t, 10*time.Second, "the good result", func() bool { p, _ := e.fake.Product(5); return p.Status == "Active" })
	e.settled(t)
	time.Sleep(3 * nakMax) // a looping message would be back by now
	if n := len(e.fake.CallsTo("GetClientsProducts")); n != 2 {
		t.Errorf("GetClientsProducts calls = %d, want 2 (one per result, no loop)", n)
	}
	info := e.settled(t)
	if info.NumRedelivered != 0 {
		t.Errorf("redelivered = %d", info.NumRedelivered)
	}
	var terminated int
	for _, le := range logs.All() {
		if strings.Contains(le.Message, "terminat") {
			terminated++
		}
	}
	if terminated != 2 {
		t.Errorf("%d termination log entries, want 2", terminated)
	}
}

func TestRunAuthFailureIsRetried(t *testing.T) {
	log, logs := observed()
	e := startRun(t, log)
	e.fake.FailNext(3, http.StatusForbidden)
	e.publish(t, result(t, events.ProvisioningDeadLettered, "r-auth", events.ResultData{Action: events.Renew,
		Provider: "comet", ServiceID: 34, ClientID: 12, Error: "boom", ErrorClass: events.Permanent}))
	waitFor(t, 10*time.Second, "the write-back after the credentials were fixed", func() bool { return len(e.fake.Activity()) == 1 })
	e.settled(t)
	if n := len(e.fake.Notes(12)); n != 1 {
		t.Errorf("notes = %d, want 1", n)
	}
	var refused bool
	for _, le := range logs.All() {
		refused = refused || strings.Contains(le.Message, "refused the API credentials")
	}
	if !refused {
		t.Error("the auth failure was not logged")
	}
	assertNotLogged(t, logs, e.cfg.Secret)
}

func TestRunStops(t *testing.T) {
	_, js := startJetStream(t)
	f := newFake(t)
	cfg := fakeConfig(f)
	// Disabled: returns at once.
	if err := Run(context.Background(), js, resultsStream, nil, Config{}, nil); err != nil {
		t.Errorf("disabled Run = %v", err)
	}
	// No stream: an error.
	w := NewWriter(newClient(t, cfg), newKV(t, js), nil)
	if err := Run(context.Background(), js, "NO_SUCH_STREAM", w, cfg, nil); err == nil {
		t.Error("Run without a stream returned nil")
	}
	// Cancelled mid-call: returns promptly, leaves the message unacked.
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: resultsStream,
		Subjects: []string{"hookworker.results.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	f.Delay(5 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, js, resultsStream, w, cfg, nil) }()
	env := result(t, events.ProvisioningFailed, "r-slow", events.ResultData{Action: events.Renew, Provider: "comet",
		ServiceID: 1, ClientID: 2, Attempt: 1, WillRetry: true, Error: "x"})
	b, _ := json.Marshal(env)
	if _, err := js.Publish(context.Background(), "hookworker.results.failed", b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the call to start", func() bool {
		c, err := js.Consumer(context.Background(), resultsStream, cfg.WritebackConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(context.Background())
		return err == nil && info.NumAckPending == 1
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not stop")
	}
	c, _ := js.Consumer(context.Background(), resultsStream, cfg.WritebackConsumer)
	info, _ := c.Info(context.Background())
	if info.NumAckPending != 1 {
		t.Errorf("ack pending = %d, want 1 (neither acked nor nak'ed)", info.NumAckPending)
	}
}

func TestNakDelay(t *testing.T) {
	tests := []struct {
		delivered  uint64
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, nakFirst},
		{2, 0, 2 * nakFirst},
		{3, 0, min(4*nakFirst, nakMax)},
		{50, 0, nakMax},
		{1, 2 * nakMax, 2 * nakMax},
		{1, 3 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		if got := nakDelay(tt.delivered, tt.retryAfter); got != tt.want {
			t.Errorf("nakDelay(%d, %s) = %s, want %s", tt.delivered, tt.retryAfter, got, tt.want)
		}
	}
}
