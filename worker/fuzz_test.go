package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/catalog"
)

// Fuzz targets of the worker's pure parts; seeds in testdata/fuzz/<target>
// and below. CI runs each for a few seconds (.ci/run).

// FuzzDeadLetterEntry: whatever the message, its labels and the reason, the
// entry fits under the limit, goes under a valid subject, records the
// original's size and hash, and keeps the original exactly unless it is
// marked truncated (then a bounded prefix).
func FuzzDeadLetterEntry(f *testing.F) {
	f.Add([]byte(`{"id":"x","type":"order.accepted"}`), "main", "order.accepted", "whmcs.main.order.accepted", "bad", uint32(0))
	f.Add([]byte("{not json"), "", "", "whmcs.chaos", "malformed", uint32(1<<20))
	f.Add([]byte(strings.Repeat("\xff", 5000)), strings.Repeat("s", 5000), "order..accepted", "whmcs.main.order.accepted", strings.Repeat("r", 9000), uint32(3000))
	f.Add([]byte(` {"a": "<&>"} `), "ma\xffin", "order.accepted.", "whmcs.x.y", "", uint32(200))
	f.Add([]byte("null"), "main", "*", "whmcs.main.>", "x", uint32(50000))
	f.Fuzz(func(t *testing.T, original []byte, source, typ, subject, reason string, limitSeed uint32) {
		limit := 4096 + int(limitSeed%(1<<20))
		dl := events.DeadLetter{EventID: source + typ, EventType: events.Type(typ), Source: source, Subject: subject, StreamSequence: 7,
			ErrorClass: events.Permanent, Reason: reason, Deliveries: 1, DeadLetteredAt: time.Unix(1, 0).UTC(),
			Attempts: []events.Attempt{{Number: 1, Error: reason}}}
		body, err := encodeDeadLetter(dl, original, limit)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		if len(body) > limit {
			t.Fatalf("entry of %d bytes over the limit %d", len(body), limit)
		}
		var got events.DeadLetter
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("entry does not decode: %v", err)
		}
		sum := sha256.Sum256(original)
		if got.OriginalSize != len(original) || got.OriginalSHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("size %d / hash %s for a %d-byte original", got.OriginalSize, got.OriginalSHA256, len(original))
		}
		kept := got.Original()
		if got.Truncated {
			if len(kept) > maxPrefixLen || string(kept) != string(original[:len(kept)]) {
				t.Fatalf("truncated entry keeps %d bytes that are not a bounded prefix", len(kept))
			}
		} else if string(kept) != string(original) {
			t.Fatalf("entry keeps %q, not the original %q", kept, original)
		}
		if len(got.Reason) > maxReasonLen+4 || len(got.Source) > maxLabelLen+4 || len(got.EventType) > maxLabelLen+4 {
			t.Fatalf("unbounded labels: reason %d, source %d, type %d bytes", len(got.Reason), len(got.Source), len(got.EventType))
		}
		subj := events.DeadLetterSubject(got.Source, got.EventType)
		if len(subj) > 150 || !strings.HasPrefix(subj, events.DeadLetterPrefix+".") {
			t.Fatalf("dead-letter subject %q", subj)
		}
		for _, tok := range strings.Split(subj, ".") {
			if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
				t.Fatalf("dead-letter subject %q has a bad token", subj)
			}
		}
		if s := resultSource(got); !events.ValidSource(s) {
			t.Fatalf("result source %q", s)
		}
	})
}

const fuzzCatalog = `
products:
  - {id: 1, provider: sandbox}
  - {id: 2, provider: sandbox, provision_on: invoice.paid}
  - {id: 3, provider: other, signup: signup_reseller}
client_added:
  - {provider: sandbox, action: signup_reseller}
`

// FuzzRoute: any event that decodes routes without panicking, and every
// operation it yields has a key, a configured provider and an action.
func FuzzRoute(f *testing.F) {
	for _, typ := range events.InboundTypes() {
		env, err := events.Sample(typ, "main")
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(env)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"i","type":"invoice.paid","spec_version":"1.0","occurred_at":"2026-11-22T10:00:00Z","source":"main","data":{"invoice_id":1,"client_id":2,"items":[{"id":1,"type":"Hosting","rel_id":5,"product_id":2,"renewal":false},{"id":2,"type":"Addon","rel_id":6,"renewal":true}]}}`))
	cat, err := catalog.Parse([]byte(fuzzCatalog), "fuzz", map[string]catalog.Validator{"sandbox": nil, "other": nil})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := events.Decode(b)
		if err != nil {
			return
		}
		ops, err := Route(env, cat)
		if err != nil {
			if events.ClassOf(err) != events.Permanent {
				t.Fatalf("routing error %v is not permanent", err)
			}
			return
		}
		keys := map[string]bool{}
		for _, op := range ops {
			if op.Key == "" || op.Action == "" || (op.Provider != "sandbox" && op.Provider != "other") {
				t.Fatalf("operation %+v", op)
			}
			if op.EventID != env.ID || op.Source != env.Source {
				t.Fatalf("operation %+v does not carry its event", op)
			}
			keys[op.Key] = true
		}
	})
}

// FuzzDeadLetterStore stores entries on a real embedded JetStream server
// whose max payload is 16 KiB: every entry must be accepted by the
// dead-letter stream (a subject it captures, a size under the server's
// limit), read back whole, and the connection must stay open.
func FuzzDeadLetterStore(f *testing.F) {
	f.Add([]byte(`{"id":"x","type":"order.accepted"}`), "main", "order.accepted", "whmcs.main.order.accepted", "bad")
	f.Add([]byte(strings.Repeat("not json ", 3000)), "main", "order..accepted", "whmcs.main.order.accepted", "big")
	f.Add([]byte("{}"), strings.Repeat("s", 5000), strings.Repeat("t", 5000), "whmcs.chaos", strings.Repeat("r", 20000))
	f.Add([]byte("\xff"), "ma\xffin", "order.accepted.", "whmcs..x", "")
	dir, err := os.MkdirTemp("", "hookworker-fuzz-")
	if err != nil {
		f.Fatal(err)
	}
	ns, err := server.NewServer(&server.Options{JetStream: true, StoreDir: dir, Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, MaxPayload: 16 << 10})
	if err != nil {
		f.Fatal(err)
	}
	go ns.Start()
	f.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown(); _ = os.RemoveAll(dir) })
	if !ns.ReadyForConnections(10 * time.Second) {
		f.Fatal("embedded server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := Setup(ctx, js, DefaultOptions()); err != nil {
		f.Fatal(err)
	}
	dlq, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		f.Fatal(err)
	}
	w := &Worker{js: js, m: NewMetrics(nil), log: zap.NewNop()}
	var seq atomic.Uint64
	seq.Store(uint64(time.Now().UnixNano())) // fresh message ids in every fuzz process
	f.Fuzz(func(t *testing.T, original []byte, source, typ, subject, reason string) {
		dl := events.DeadLetter{EventType: events.Type(typ), Source: source, Subject: subject, StreamSequence: seq.Add(1),
			ErrorClass: events.Permanent, Reason: reason, Deliveries: 1, DeadLetteredAt: time.Now().UTC()}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.storeDeadLetter(ctx, dl, original); err != nil {
			t.Fatalf("store: %v", err)
		}
		if nc.IsClosed() {
			t.Fatal("the connection closed")
		}
		labels(&dl)
		m, err := dlq.GetLastMsgForSubject(ctx, events.DeadLetterSubject(dl.Source, dl.EventType))
		if err != nil {
			t.Fatalf("read back: %v", err)
		}
		var got events.DeadLetter
		if err := json.Unmarshal(m.Data, &got); err != nil || got.StreamSequence != dl.StreamSequence {
			t.Fatalf("read back another entry or garbage: %v", err)
		}
		kept := got.Original()
		if got.Truncated {
			if string(kept) != string(original[:len(kept)]) || got.OriginalSize != len(original) {
				t.Fatalf("truncated entry keeps %d bytes that are not a prefix of %d", len(kept), len(original))
			}
		} else if string(kept) != string(original) {
			t.Fatalf("entry keeps %q, not %q", kept, original)
		}
	})
}
