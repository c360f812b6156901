package worker

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker/catalog"
)

// One dead-letter entry and one dead_lettered result per event, whichever
// paths dead-letter it: here a delivery dead-letters the message and its
// term is as good as lost, then the max-deliveries advisory for the same
// message is handled too.
func TestEveryDeadLetterPathMakesOneEntry(t *testing.T) {
	ns, err := StartEmbedded(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Parse([]byte("products:\n  - {id: 1, provider: sandbox}\n"), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	w, err := New(js, cat, map[string]Provider{sandbox.Name: sandbox.New()}, o, zap.NewNop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "whmcs.main.order.accepted", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	b, err := w.cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	msg := <-b.Messages()
	if msg == nil {
		t.Fatal("no delivery")
	}
	meta, err := msg.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	env, decodeErr := events.Decode(msg.Data())
	w.deadLetter(ctx, msg, meta, env, nil, decodeErr, w.log)
	if err := w.deadLetterAbandoned(ctx, maxDeliveriesAdvisory{StreamSeq: meta.Sequence.Stream, Deliveries: uint64(o.MaxDeliver + 1)}); err != nil {
		t.Fatal(err)
	}
	for stream, want := range map[string]uint64{DeadLetterStream: 1, ResultsStream: 1} {
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		si, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if si.State.Msgs != want {
			t.Errorf("%s holds %d messages for one dead-lettered event, want %d", stream, si.State.Msgs, want)
		}
		if stream == DeadLetterStream && si.Config.Duplicates < 4*o.AckWait {
			t.Errorf("dead-letter duplicate window %s is shorter than 4 x the ack wait", si.Config.Duplicates)
		}
	}
}
