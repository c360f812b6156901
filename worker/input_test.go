package worker_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// Tests of issue 10: every message entering the events stream ends as its
// operations' results or as one dead-letter entry and a dead_lettered
// result, whatever it holds.

func envelopeJSON(id, typ, source, data string) string {
	// Values go in unescaped: the tests put raw invalid bytes in them.
	return `{"id":"` + id + `","type":"` + typ + `","spec_version":"1.0","occurred_at":"2026-11-22T10:00:00Z","source":"` + source + `","data":` + data + `}`
}

const orderData = `{"order_id":5,"client":{"id":7,"email":"a@b.c"},"services":[{"service_id":9,"product_id":1,"domain":"DOMAIN"}]}`

func (p *pipeline) publishRaw(subject string, body []byte) uint64 {
	p.t.Helper()
	ack, err := p.js.Publish(workertest.Context(p.t, 10*time.Second), subject, body)
	if err != nil {
		p.t.Fatalf("publish on %s: %v", events.Clip(subject), err)
	}
	return ack.Sequence
}

// entryFor returns the dead-letter entry of the events stream's message seq.
func (p *pipeline) entryFor(seq uint64) worker.Entry {
	p.t.Helper()
	for _, e := range p.deadLetters() {
		if e.StreamSequence == seq {
			return e
		}
	}
	p.t.Fatalf("no dead-letter entry for event %d; have %+v", seq, p.deadLetters())
	return worker.Entry{}
}

// deadLetteredFor returns the dead_lettered results of the message seq of
// the events stream (by its stream operation key, for a message that has
// no operations).
func (p *pipeline) deadLetteredFor(seq uint64) []workertest.Result {
	var out []workertest.Result
	for _, r := range p.results.Of(events.ProvisioningDeadLettered) {
		if r.Data.OperationKey == fmt.Sprintf("stream:%s:%d", worker.EventsStream, seq) {
			out = append(out, r)
		}
	}
	return out
}

// Finding 1: a ~5,000-character type or source made the dead-letter
// subject longer than the NATS protocol line; nats.go closed the connection
// for good and nothing behind the event was processed.
func TestHugeTypeOrSourceDoesNotStopProcessing(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.Concurrency = 1 })
	_, nc := p.start(p.sb)
	huge := strings.Repeat("x", 5000)
	seqType := p.publishRaw("whmcs.main.order.accepted", []byte(envelopeJSON("big-type", "order."+huge, "main", orderData)))
	seqSource := p.publishRaw("whmcs.main.order.accepted", []byte(envelopeJSON("big-source", "order.accepted", huge, orderData)))
	seqBoth := p.publishRaw("whmcs.main.client.added", []byte(envelopeJSON(strings.Repeat("i", 5000), huge, huge+"."+huge, orderData)))
	const valid = 10
	for i := range valid {
		workertest.Publish(t, p.js, order(t, 1000+i, svc(2000+i, 1)))
	}
	p.results.WaitFor(t, events.ProvisioningSucceeded, valid, 30*time.Second)
	p.drained()
	if nc.IsClosed() {
		t.Fatal("the worker's connection was closed")
	}
	for _, tc := range []struct {
		seq     uint64
		subject string
	}{
		{seqType, "hookworker.dlq.main.order.accepted"},
		{seqSource, "hookworker.dlq.main.order.accepted"},
		{seqBoth, "hookworker.dlq.main.client.added"},
	} {
		e := p.entryFor(tc.seq)
		if e.ErrorClass != events.Permanent || e.Truncated || e.OriginalSize == 0 {
			t.Errorf("event %d: entry %+v", tc.seq, e.DeadLetter)
		}
		if len(e.Reason) > 4200 || len(e.EventType) > 600 || len(e.Source) > 600 {
			t.Errorf("event %d: unbounded labels: reason %d, type %d, source %d bytes", tc.seq, len(e.Reason), len(e.EventType), len(e.Source))
		}
		m, err := p.js.Conn().Request("$JS.API.STREAM.MSG.GET."+worker.DeadLetterStream, []byte(fmt.Sprintf(`{"seq":%d}`, e.Seq)), 5*time.Second)
		if err != nil || !strings.Contains(string(m.Data), `"subject":"`+tc.subject+`"`) {
			t.Errorf("event %d: entry not on %s: %v %.200s", tc.seq, tc.subject, err, m.Data)
		}
		if r := p.deadLetteredFor(tc.seq); len(r) != 1 {
			t.Errorf("event %d: %d dead_lettered results, want 1", tc.seq, len(r))
		}
	}
}

// Finding 4: a valid event on a subject that is not exactly
// whmcs.<source>.<type> was processed.
func TestEventOnAnotherSubjectIsDeadLettered(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	body, _ := jsonOf(t, order(t, 77, svc(770, 1)))
	var seqs []uint64
	for _, subj := range []string{"whmcs.chaos", "whmcs.main.order.accepted.extra", "whmcs.main.order", "whmcs.other.order.accepted"} {
		seqs = append(seqs, p.publishRaw(subj, body))
	}
	for _, seq := range seqs {
		workertest.Eventually(t, 15*time.Second, fmt.Sprintf("event %d dead-lettered", seq), func() bool { return len(p.deadLetteredFor(seq)) == 1 })
		e := p.entryFor(seq)
		if e.ErrorClass != events.Permanent || !strings.Contains(e.Reason, "is not \"whmcs.main.order.accepted\"") || string(e.Original()) != string(body) {
			t.Errorf("event %d: entry %+v", seq, e.DeadLetter)
		}
	}
	p.drained()
	if n := p.sb.Calls(); n != 0 {
		t.Fatalf("events on foreign subjects reached the provider %d times", n)
	}
}

// Finding 2: an ~800 KB non-JSON body made a base64 entry larger than the
// max payload, and the event was lost without a trace.
func TestOversizedBodyIsDeadLetteredAsPrefixSizeAndHash(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	body := make([]byte, 800<<10)
	_, _ = rand.Read(body)
	body[0] = 0xff // surely not JSON
	jsonBody := []byte(envelopeJSON("big-json", "order.accepted", "main", `{"pad":"`+strings.Repeat("<&>", 300<<10)+`"}`))
	seq := p.publishRaw("whmcs.main.order.accepted", body)
	seqJSON := p.publishRaw("whmcs.main.order.accepted", jsonBody)
	workertest.Eventually(t, 15*time.Second, "both dead-lettered", func() bool {
		return len(p.deadLetteredFor(seq)) == 1 && len(p.deadLetteredFor(seqJSON)) == 1
	})
	p.drained()
	sum := sha256.Sum256(body)
	e := p.entryFor(seq)
	if !e.Truncated || e.OriginalSize != len(body) || e.OriginalSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("entry: truncated %v, size %d, sha256 %s", e.Truncated, e.OriginalSize, e.OriginalSHA256)
	}
	if n := len(e.Original()); n == 0 || n > 64<<10 || string(e.Original()) != string(body[:n]) {
		t.Fatalf("entry keeps %d bytes that are not a bounded prefix of the original", n)
	}
	ej := p.entryFor(seqJSON)
	if ej.Truncated || string(ej.Original()) != string(jsonBody) {
		t.Errorf("a JSON event that fits is not kept byte for byte (truncated %v, %d of %d bytes)", ej.Truncated, len(ej.Original()), len(jsonBody))
	}

	// Replay takes the whole original from the events stream.
	d, err := worker.OpenDeadLetters(workertest.Context(t, 5*time.Second), p.js)
	if err != nil {
		t.Fatal(err)
	}
	newSeq, err := d.Replay(workertest.Context(t, 10*time.Second), e.Seq)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.js.Stream(workertest.Context(t, 5*time.Second), worker.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(workertest.Context(t, 5*time.Second), newSeq)
	if err != nil || string(m.Data) != string(body) {
		t.Fatalf("replayed message is not the original (%v, %d bytes)", err, len(m.Data))
	}
}

// Finding 2: a type with an empty token made a dead-letter subject no
// stream captures; the event was lost.
func TestTypeWithEmptyTokensIsDeadLetteredUnderAValidSubject(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	var seqs []uint64
	for _, typ := range []string{"order..accepted", "order.accepted.", ".order.accepted", "order.*", "order.>", "order accepted"} {
		seqs = append(seqs, p.publishRaw("whmcs.main.order.accepted", []byte(envelopeJSON("t:"+typ, typ, "main", orderData))))
		seqs = append(seqs, p.publishRaw("whmcs.chaos", []byte(envelopeJSON("c:"+typ, typ, "ma in", orderData))))
	}
	for _, seq := range seqs {
		workertest.Eventually(t, 15*time.Second, fmt.Sprintf("event %d dead-lettered", seq), func() bool { return len(p.deadLetteredFor(seq)) == 1 })
		if e := p.entryFor(seq); e.ErrorClass != events.Permanent {
			t.Errorf("event %d: entry %+v", seq, e.DeadLetter)
		}
	}
	p.drained()
}

// Finding 4: invalid UTF-8 in source got a dead-letter entry but no
// dead_lettered result; invalid UTF-8 in a domain became U+FFFD and an
// order was created for that name.
func TestInvalidUTF8IsAPermanentErrorNamingTheField(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	badSource := p.publishRaw("whmcs.main.order.accepted", []byte(envelopeJSON("u1", "order.accepted", "ma\xffin", strings.Replace(orderData, "DOMAIN", "a.example", 1))))
	badDomain := p.publishRaw("whmcs.main.order.accepted", []byte(envelopeJSON("u2", "order.accepted", "main", strings.Replace(orderData, "DOMAIN", "b\xffckup.example", 1))))
	for seq, field := range map[uint64]string{badSource: `"source"`, badDomain: `"data.services[0].domain"`} {
		workertest.Eventually(t, 15*time.Second, fmt.Sprintf("event %d dead-lettered", seq), func() bool { return len(p.deadLetteredFor(seq)) == 1 })
		r := p.deadLetteredFor(seq)[0]
		if r.Data.ErrorClass != events.Permanent || !strings.Contains(r.Data.Error, field) || !strings.Contains(r.Data.Error, "UTF-8") {
			t.Errorf("event %d: result %+v does not name %s", seq, r.Data, field)
		}
		if e := p.entryFor(seq); !strings.Contains(e.Reason, field) || e.Truncated || e.OriginalSize == 0 {
			t.Errorf("event %d: entry %+v", seq, e.DeadLetter)
		}
		if r.Envelope.Source != "main" {
			t.Errorf("event %d: result source %q, want the subject's instance", seq, r.Envelope.Source)
		}
	}
	p.drained()
	if n := p.sb.Calls(); n != 0 {
		t.Fatalf("the provider was called %d times for events with invalid text", n)
	}
}

// Finding 3: an event whose last delivery died with its worker was lost
// when no replica was subscribed to the max-deliveries advisory at the
// moment JetStream gave up on it.
func TestEventGivenUpOnWhileNoWorkerListensIsDeadLettered(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.MaxDeliver, o.AckWait, o.AttemptBudget = 2, time.Second, time.Second })
	workertest.Publish(t, p.js, order(t, 96, svc(610, 1)))
	cons, err := p.js.Consumer(workertest.Context(t, 5*time.Second), worker.EventsStream, p.opts.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	// "Workers" that take every delivery they can and die with it, until
	// JetStream gives up; none of them listens for advisories.
	deliveries, quiet := 0, time.Now()
	for time.Since(quiet) < 3*p.opts.AckWait {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		for range b.Messages() {
			deliveries++
			quiet = time.Now()
		}
	}
	if deliveries < p.opts.MaxDeliver {
		t.Fatalf("only %d deliveries", deliveries)
	}
	// A replica that starts only now must still dead-letter the event.
	p.start(p.sb)
	res := p.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 15*time.Second)
	if res[0].Data.OperationKey != events.ServiceKey("main", 610, events.SignupCustomer) || !strings.Contains(res[0].Data.Error, "finished") {
		t.Fatalf("result %+v", res[0].Data)
	}
	if dl := p.deadLetters(); len(dl) != 1 || dl[0].StreamSequence != 1 || len(dl[0].Operations) != 1 {
		t.Fatalf("dead letters %+v", dl)
	}
	if n := p.sb.Calls(); n != 0 {
		t.Fatalf("the abandoned event was applied %d times", n)
	}
	workertest.Eventually(t, 10*time.Second, "the advisory to be consumed", func() bool {
		s, err := p.js.Stream(context.Background(), worker.AdvisoryStream)
		if err != nil {
			return false
		}
		si, err := s.Info(context.Background())
		return err == nil && si.State.Msgs == 0
	})
}

// Finding 3, existing deployments: the consumer created by an older
// version (MaxDeliver = HOOKWORKER_MAX_DELIVER) is updated in place to allow
// the extra delivery, keeping its position.
func TestSetupUpdatesAnExistingConsumerInPlace(t *testing.T) {
	ns := workertest.Server(t)
	_, js := workertest.Connect(t, ns.ClientURL())
	o := workertest.Options()
	ctx := workertest.Context(t, 20*time.Second)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: worker.EventsStream, Subjects: []string{events.InboundWildcard}}); err != nil {
		t.Fatal(err)
	}
	old := jetstream.ConsumerConfig{Durable: o.ConsumerName, AckPolicy: jetstream.AckExplicitPolicy, AckWait: o.AckWait,
		MaxDeliver: o.MaxDeliver, FilterSubject: events.InboundWildcard}
	c, err := js.CreateConsumer(ctx, worker.EventsStream, old)
	if err != nil {
		t.Fatal(err)
	}
	workertest.Publish(t, js, order(t, 97, svc(620, 1)))
	b, err := c.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range b.Messages() {
		_ = m.DoubleAck(ctx)
	}
	cons, _, err := worker.Setup(ctx, js, o)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Config.MaxDeliver != o.MaxDeliver+1 || ci.AckFloor.Stream != 1 {
		t.Fatalf("consumer after Setup: max deliver %d (want %d), ack floor %d (want 1)", ci.Config.MaxDeliver, o.MaxDeliver+1, ci.AckFloor.Stream)
	}
}

// A connection nats.go closed for good is not retried forever in silence:
// Run returns an error (the process exits non-zero and is restarted) and
// Alive reports it for /healthz.
func TestRunEndsWhenTheConnectionIsClosedForGood(t *testing.T) {
	p := newPipeline(t, nil)
	nc, js := workertest.Connect(t, p.url)
	w, err := worker.New(js, p.cat, map[string]worker.Provider{sandbox.Name: p.sb}, p.opts, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { done <- w.Run(ctx) }()
	workertest.Eventually(t, 10*time.Second, "the worker to run", func() bool { return w.Records() != nil })
	if err := w.Alive(); err != nil {
		t.Fatalf("Alive with an open connection: %v", err)
	}
	nc.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil after the connection closed")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run kept going on a closed connection")
	}
	if err := w.Alive(); err == nil {
		t.Fatal("Alive reports a closed connection as alive")
	}
}

func jsonOf(t *testing.T, env events.Envelope) ([]byte, error) {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b, nil
}
