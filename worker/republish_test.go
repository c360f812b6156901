package worker_test

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// elsewhere is the sandbox provider claiming another backend, as the same
// provider name does in another mode of a reused data directory.
type elsewhere struct{ *sandbox.Provider }

func (elsewhere) Backend() string { return "sandbox at somewhere else" }

// succeeded returns every message on the succeeded results subject.
func succeeded(t *testing.T, js jetstream.JetStream) []jetstream.RawStreamMsg {
	t.Helper()
	s, err := js.Stream(workertest.Context(t, 5*time.Second), worker.ResultsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(workertest.Context(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(workertest.Context(t, 5*time.Second), seq)
		if err != nil {
			continue
		}
		if strings.HasPrefix(m.Subject, events.ResultsPrefix+"."+events.OutcomeSucceeded+".") {
			out = append(out, *m)
		}
	}
	return out
}

// A done operation's event sent again (re-emitted, replayed, or another
// mode of the same data directory) re-publishes the recorded result; the
// copy must reach followers although it falls in the results stream's
// duplicate window, and carry the same envelope id so they stay idempotent.
func TestRepublishedResultReachesFollowers(t *testing.T) {
	p := newPipeline(t, nil)
	stop, _ := p.start(p.sb)
	env := order(t, 70, svc(700, 1))
	first := workertest.Publish(t, p.js, env)
	p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 10*time.Second)
	p.drained()
	stop()

	key := events.ServiceKey("main", 700, events.SignupCustomer)
	kv, err := p.js.KeyValue(workertest.Context(t, 5*time.Second), worker.RecordsBucket)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := worker.LoadRecord(workertest.Context(t, 5*time.Second), kv, key)
	if err != nil {
		t.Fatal(err)
	}
	if rec.EventID != env.ID || rec.EventSeq != first.Sequence || rec.Backend != sandbox.Name {
		t.Fatalf("record written by event %q seq %d backend %q; want %q, %d, %q", rec.EventID, rec.EventSeq, rec.Backend, env.ID, first.Sequence, sandbox.Name)
	}

	// Another backend under the same provider name answers from the record
	// and says why nothing was applied.
	core, logs := observer.New(zapcore.InfoLevel)
	_, js := workertest.Connect(t, p.url)
	other := elsewhere{sandbox.New()}
	w, err := worker.New(js, p.cat, map[string]worker.Provider{sandbox.Name: other}, p.opts, zap.New(core), nil)
	if err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, w)
	b, _ := json.Marshal(env)
	again, err := p.js.Publish(workertest.Context(t, 5*time.Second), events.InboundSubject("main", env.Type), b, jetstream.WithMsgID(env.ID+":again"))
	if err != nil {
		t.Fatal(err)
	}
	got := p.results.WaitFor(t, events.ProvisioningSucceeded, 2, 10*time.Second)
	p.drained()
	if got[0].Envelope.ID != got[1].Envelope.ID {
		t.Errorf("re-published result has envelope id %q, the original %q: followers could not de-duplicate", got[1].Envelope.ID, got[0].Envelope.ID)
	}
	if other.Effects() != 0 || p.sb.Effects() != 1 {
		t.Errorf("effects: %d first backend, %d other; want 1 and 0", p.sb.Effects(), other.Effects())
	}
	msgs := succeeded(t, p.js)
	if len(msgs) != 2 {
		t.Fatalf("results stream holds %d succeeded results, want 2", len(msgs))
	}
	if !bytes.Equal(msgs[0].Data, msgs[1].Data) {
		t.Errorf("re-published body differs from the recorded one:\n%s\n%s", msgs[0].Data, msgs[1].Data)
	}
	if h := msgs[1].Header.Get(worker.RepublishedHeader); h == "" || h != strconv.FormatUint(again.Sequence, 10) {
		t.Errorf("%s = %q, want the new message's sequence %d", worker.RepublishedHeader, h, again.Sequence)
	}
	if h := msgs[0].Header.Get(worker.RepublishedHeader); h != "" {
		t.Errorf("first publication carries %s = %q", worker.RepublishedHeader, h)
	}
	warned := logs.FilterMessageSnippet("done earlier by another provider or mode").All()
	if len(warned) != 1 {
		t.Fatalf("mismatch warnings: %d, want 1; logs: %v", len(warned), logs.All())
	}
	if f := warned[0].ContextMap(); f["recorded_backend"] != sandbox.Name || f["backend"] != other.Backend() {
		t.Errorf("warning fields %v", f)
	}
}

// A provider error that already names provider and action is not prefixed
// a second time (`codeguard signup_customer: codeguard signup_customer: …`);
// one that does not is.
func TestProviderErrorPrefixIsNotDoubled(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	p.sb.FailNext(events.Permanentf("sandbox signup_customer \"ada\": quota exceeded"))
	workertest.Publish(t, p.js, order(t, 71, svc(710, 1)))
	p.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 10*time.Second)
	p.sb.FailNext(events.Permanentf("quota exceeded"))
	workertest.Publish(t, p.js, order(t, 72, svc(720, 1)))
	got := p.results.WaitFor(t, events.ProvisioningDeadLettered, 2, 10*time.Second)
	want := map[int]string{710: "sandbox signup_customer \"ada\": quota exceeded", 720: "sandbox signup_customer: quota exceeded"}
	for _, r := range got {
		if r.Data.Error != want[r.Data.ServiceID] {
			t.Errorf("service %d: error %q, want %q", r.Data.ServiceID, r.Data.Error, want[r.Data.ServiceID])
		}
	}
}
