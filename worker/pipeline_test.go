package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

const testCatalog = `
products:
  - id: 1
    name: Backup 100 GB
    provider: sandbox
  - id: 2
    name: Always fails
    provider: sandbox
    settings: {fail: permanent}
  - id: 3
    name: Flaky
    provider: sandbox
    settings: {fail_first: 2}
  - id: 4
    name: Slow
    provider: sandbox
    settings: {delay: 1500ms}
  - id: 5
    name: Never up
    provider: sandbox
    settings: {fail_first: 1000}
  - id: 6
    name: Paid first
    provider: sandbox
    provision_on: invoice.paid
client_added:
  - provider: sandbox
    action: signup_reseller
`

// pipeline is a worker on a real JetStream server with the sandbox provider.
type pipeline struct {
	t       *testing.T
	url     string
	js      jetstream.JetStream
	nc      *nats.Conn
	sb      *sandbox.Provider
	cat     *catalog.Catalog
	opts    worker.Options
	results *workertest.Results
}

func newPipeline(t *testing.T, tune func(*worker.Options)) *pipeline {
	t.Helper()
	ns := workertest.Server(t)
	nc, js := workertest.Connect(t, ns.ClientURL())
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	o := workertest.Options()
	if tune != nil {
		tune(&o)
	}
	if _, _, err := worker.Setup(workertest.Context(t, 10*time.Second), js, o); err != nil {
		t.Fatal(err)
	}
	p := &pipeline{t: t, url: ns.ClientURL(), js: js, nc: nc, sb: sandbox.New(), cat: cat, opts: o}
	p.results = workertest.CollectResults(t, js)
	return p
}

// start runs a worker with its own connection until the returned stop is
// called (or the test ends); stop waits for Run to return.
func (p *pipeline) start(sb *sandbox.Provider) (stop func(), nc *nats.Conn) {
	p.t.Helper()
	nc, js := workertest.Connect(p.t, p.url)
	w, err := worker.New(js, p.cat, map[string]worker.Provider{sandbox.Name: sb}, p.opts, zaptest.NewLogger(p.t), nil)
	if err != nil {
		p.t.Fatal(err)
	}
	stop = workertest.Run(p.t, w)
	return stop, nc
}

func event(t *testing.T, typ events.Type, id string, data any) events.Envelope {
	t.Helper()
	env, err := events.NewEnvelope(id, typ, "main", time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func order(t *testing.T, orderID int, services ...events.OrderedService) events.Envelope {
	t.Helper()
	return event(t, events.OrderAccepted, fmt.Sprintf("whmcs:main:AcceptOrder:%d", orderID), events.OrderAcceptedData{
		OrderID: orderID, Client: events.Client{ID: 7, Email: "ada@example.com", FirstName: "Ada"}, Services: services})
}

func svc(serviceID, productID int) events.OrderedService {
	return events.OrderedService{ServiceID: serviceID, ProductID: productID, BillingCycle: "Annually"}
}

func (p *pipeline) consumerInfo() *jetstream.ConsumerInfo {
	p.t.Helper()
	c, err := p.js.Consumer(workertest.Context(p.t, 5*time.Second), worker.EventsStream, p.opts.ConsumerName)
	if err != nil {
		p.t.Fatal(err)
	}
	ci, err := c.Info(workertest.Context(p.t, 5*time.Second))
	if err != nil {
		p.t.Fatal(err)
	}
	return ci
}

// drained waits until every event was acked or terminated.
func (p *pipeline) drained() {
	p.t.Helper()
	workertest.Eventually(p.t, 15*time.Second, "the consumer to drain", func() bool {
		ci := p.consumerInfo()
		return ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

func (p *pipeline) deadLetters() []worker.Entry {
	p.t.Helper()
	d, err := worker.OpenDeadLetters(workertest.Context(p.t, 5*time.Second), p.js)
	if err != nil {
		p.t.Fatal(err)
	}
	list, err := d.List(workertest.Context(p.t, 5*time.Second), worker.Filter{})
	if err != nil {
		p.t.Fatal(err)
	}
	return list
}

func TestOrderWithTwoServicesProvisionsEach(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	workertest.Publish(t, p.js, order(t, 50, svc(100, 1), svc(101, 1)))
	res := p.results.WaitFor(t, events.ProvisioningSucceeded, 2, 10*time.Second)
	keys := map[string]bool{}
	for _, r := range res {
		keys[r.Data.OperationKey] = true
		if r.Data.SourceEventID != "whmcs:main:AcceptOrder:50" || r.Data.Provider != "sandbox" || r.Data.Reference == "" || r.Data.Attempt != 1 {
			t.Errorf("result data %+v", r.Data)
		}
	}
	if !keys[events.ServiceKey("main", 100, events.SignupCustomer)] || !keys[events.ServiceKey("main", 101, events.SignupCustomer)] {
		t.Errorf("operation keys %v", keys)
	}
	if n := p.sb.Effects(); n != 2 {
		t.Errorf("effects = %d, want 2", n)
	}
	p.drained()
}

func TestSameEventTwiceHasOneEffect(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	env := order(t, 51, svc(110, 1))
	first := workertest.Publish(t, p.js, env)
	second := workertest.Publish(t, p.js, env)
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second publish ack %+v: JetStream did not de-duplicate by Nats-Msg-Id", second)
	}
	// The same event again outside the duplicate window (another msg id):
	// the operation record keeps the effect single and re-publishes the result.
	b, _ := json.Marshal(env)
	if _, err := p.js.Publish(workertest.Context(t, 5*time.Second), events.InboundSubject("main", env.Type), b,
		jetstream.WithMsgID(env.ID+":after-window")); err != nil {
		t.Fatal(err)
	}
	p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 10*time.Second)
	p.drained()
	if n := p.sb.Effects(); n != 1 {
		t.Fatalf("effects = %d, want 1", n)
	}
	if n := p.sb.Calls(); n != 1 {
		t.Fatalf("provider called %d times, want 1 (the second copy must be answered from the record)", n)
	}
}

func TestAcceptOrderThenFirstPaymentIsOneSignup(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	// product 6 provisions on payment: AcceptOrder does nothing, InvoicePaid signs up.
	workertest.Publish(t, p.js, order(t, 52, svc(120, 6)))
	paid := event(t, events.InvoicePaid, "whmcs:main:InvoicePaid:920", events.InvoicePaidData{InvoiceID: 920, ClientID: 7,
		Items: []events.InvoiceItem{{ID: 1, Type: "Hosting", RelID: 120, ProductID: 6}, {ID: 2, Type: "Hosting", RelID: 121, ProductID: 6, Renewal: true}}})
	workertest.Publish(t, p.js, paid)
	res := p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 10*time.Second)
	p.drained()
	if got := res[0].Data.OperationKey; got != events.ServiceKey("main", 120, events.SignupCustomer) {
		t.Fatalf("operation %q", got)
	}
	if n := p.sb.Effects(); n != 1 {
		t.Fatalf("effects = %d, want 1 (the renewal item is not a signup)", n)
	}
}

func TestTransientFailureThenSuccess(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	workertest.Publish(t, p.js, order(t, 53, svc(130, 3))) // fails twice, then works
	res := p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 10*time.Second)
	p.drained()
	if res[0].Data.Attempt != 3 {
		t.Errorf("attempt = %d, want 3", res[0].Data.Attempt)
	}
	if n := p.sb.Effects(); n != 1 {
		t.Errorf("effects = %d, want 1", n)
	}
	if dl := p.deadLetters(); len(dl) != 0 {
		t.Errorf("dead letters %+v", dl)
	}
}

func TestTransientFailureAcrossRedeliveries(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.AttemptBudget = 0 }) // one attempt per delivery
	p.start(p.sb)
	workertest.Publish(t, p.js, order(t, 54, svc(140, 3)))
	ok := p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 15*time.Second)
	failed := p.results.Of(events.ProvisioningFailed)
	if len(failed) != 2 {
		t.Fatalf("failed results = %d, want 2 (one per failed delivery)", len(failed))
	}
	for _, f := range failed {
		if !f.Data.WillRetry || f.Data.ErrorClass != events.Transient || f.Data.Error == "" {
			t.Errorf("failed result %+v", f.Data)
		}
	}
	if ok[0].Data.Attempt != 3 {
		t.Errorf("attempt = %d, want 3", ok[0].Data.Attempt)
	}
	p.drained()
}

func TestPermanentFailureIsDeadLettered(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	workertest.Publish(t, p.js, order(t, 55, svc(150, 2)))
	res := p.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 10*time.Second)
	p.drained()
	d := res[0].Data
	if d.ErrorClass != events.Permanent || !strings.Contains(d.Error, "configured to fail") || d.OperationKey == "" {
		t.Errorf("dead-lettered result %+v", d)
	}
	if n := p.sb.Calls(); n != 1 {
		t.Errorf("provider called %d times for a permanent error, want 1", n)
	}
	dl := p.deadLetters()
	if len(dl) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dl))
	}
	e := dl[0]
	if e.EventID != "whmcs:main:AcceptOrder:55" || e.Subject != "whmcs.main.order.accepted" || len(e.Attempts) != 1 ||
		e.Attempts[0].ErrorClass != events.Permanent || len(e.Operations) != 1 {
		t.Errorf("dead letter %+v", e)
	}
	if _, err := events.Decode(e.Original()); err != nil {
		t.Errorf("dead letter keeps a different event: %v", err)
	}
}

func TestUnknownProductIsDeadLetteredWithItsID(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	workertest.Publish(t, p.js, order(t, 56, svc(160, 999)))
	res := p.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 10*time.Second)
	if !strings.Contains(res[0].Data.Error, "product 999 (service 160) is not in the catalog") {
		t.Errorf("error %q does not name the product", res[0].Data.Error)
	}
}

func TestMalformedMessagesAreDeadLetteredAndDoNotBlock(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.Concurrency = 1 })
	p.start(p.sb)
	ctx := workertest.Context(t, 10*time.Second)
	bad := []struct {
		name, subject, body string
	}{
		{"not json", "whmcs.main.order.accepted", "{this is not json"},
		{"missing field", "whmcs.main.order.accepted", `{"id":"x1","type":"order.accepted","spec_version":"1.0","occurred_at":"2026-01-01T00:00:00Z","source":"main","data":{"order_id":0}}`},
		{"unknown type", "whmcs.main.order.exploded", `{"id":"x2","type":"order.exploded","spec_version":"1.0","occurred_at":"2026-01-01T00:00:00Z","source":"main","data":{}}`},
		{"subject mismatch", "whmcs.other.client.added", `{"id":"x3","type":"client.added","spec_version":"1.0","occurred_at":"2026-01-01T00:00:00Z","source":"main","data":{"client":{"id":1,"email":"a@b.c"}}}`},
	}
	for _, b := range bad {
		if _, err := p.js.Publish(ctx, b.subject, []byte(b.body)); err != nil {
			t.Fatal(err)
		}
	}
	workertest.Publish(t, p.js, order(t, 57, svc(170, 1)))
	p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 10*time.Second)
	p.results.WaitFor(t, events.ProvisioningDeadLettered, len(bad), 10*time.Second)
	p.drained()
	dl := p.deadLetters()
	if len(dl) != len(bad) {
		t.Fatalf("dead letters = %d, want %d", len(dl), len(bad))
	}
	// Several events are in work at once, so the dead letters come in any
	// order: each is matched to its event by the original body.
	byBody := map[string]worker.Entry{}
	for _, e := range dl {
		byBody[string(e.Original())] = e
	}
	for _, b := range bad {
		e, ok := byBody[b.body]
		if !ok || e.Subject != b.subject || e.ErrorClass != events.Permanent {
			t.Errorf("%s: dead letter %+v (found %v)", b.name, e, ok)
		}
	}
	if r := byBody[bad[1].body].Reason; !strings.Contains(r, `"data.order_id"`) {
		t.Errorf("reason %q does not name the field", r)
	}
}

func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.AttemptBudget, o.MaxDeliver = 0, 3 })
	p.start(p.sb)
	workertest.Publish(t, p.js, order(t, 58, svc(180, 5)))
	res := p.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 15*time.Second)
	p.drained()
	if res[0].Data.ErrorClass != events.Transient || !strings.Contains(res[0].Data.Error, "simulated outage") {
		t.Errorf("dead-lettered result %+v", res[0].Data)
	}
	if n := len(p.results.Of(events.ProvisioningFailed)); n != 2 {
		t.Errorf("will-retry results = %d, want 2", n)
	}
	dl := p.deadLetters()
	if len(dl) != 1 || len(dl[0].Attempts) != 3 || dl[0].Deliveries != 3 || !strings.Contains(dl[0].Reason, "gave up after 3 deliveries") {
		t.Fatalf("dead letters %+v", dl)
	}
}

func TestReplayDoesNotRepeatEffects(t *testing.T) {
	p := newPipeline(t, nil)
	p.start(p.sb)
	// service 190 fails permanently once (a fix is then made at the provider); 191 succeeds.
	p.sb.FailNext(events.Permanentf("sandbox: quota exceeded"))
	workertest.Publish(t, p.js, order(t, 59, svc(190, 1)))
	p.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 10*time.Second)
	dl := p.deadLetters()
	if len(dl) != 1 {
		t.Fatalf("dead letters = %d", len(dl))
	}
	d, _ := worker.OpenDeadLetters(workertest.Context(t, 5*time.Second), p.js)
	if _, err := d.Replay(workertest.Context(t, 5*time.Second), dl[0].Seq); err != nil {
		t.Fatal(err)
	}
	p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 10*time.Second)
	p.drained()
	if left := p.deadLetters(); len(left) != 0 {
		t.Fatalf("replayed entry still in the dead-letter stream: %+v", left)
	}
	if n := p.sb.Effects(); n != 1 {
		t.Fatalf("effects = %d, want 1", n)
	}
	// Replaying an event whose operations are done changes nothing.
	if err := d.Discard(workertest.Context(t, 5*time.Second), dl[0].Seq); err == nil {
		t.Error("discarding a replayed entry succeeded")
	}
}

// A worker killed after the provider applied the effect, before the record
// was written: the redelivery must look the effect up, not create it again.
func TestRedeliveryAfterKillMidCallHasOneEffect(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.AckWait, o.AttemptBudget = time.Second, time.Second })
	killed := make(chan struct{})
	sb := sandbox.New()
	var victim *nats.Conn
	var once sync.Once
	sb.AfterEffect = func(ctx context.Context, op events.Operation) {
		once.Do(func() {
			victim.Close() // the process "dies": no ack, no heartbeat, no record update
			close(killed)
		})
		<-ctx.Done()
	}
	stopA, ncA := p.start(sb)
	victim = ncA
	workertest.Publish(t, p.js, order(t, 60, svc(200, 1)))
	select {
	case <-killed:
	case <-time.After(10 * time.Second):
		t.Fatal("the first worker never reached the provider")
	}
	go stopA()
	sb.AfterEffect = nil // the same provider state: the account exists
	p.start(sb)
	res := p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 20*time.Second)
	p.drained()
	if !res[0].Data.AlreadyDone {
		t.Errorf("result %+v: want already_done (found by look-up)", res[0].Data)
	}
	if n := sb.Effects(); n != 1 {
		t.Fatalf("effects = %d, want 1", n)
	}
}

func TestShutdownFinishesInFlightWork(t *testing.T) {
	p := newPipeline(t, nil)
	stop, _ := p.start(p.sb)
	for i := range 4 {
		workertest.Publish(t, p.js, order(t, 70+i, svc(300+i, 4))) // 1.5 s each
	}
	// In flight means in a handler, inside the provider's call: an event
	// still in the prefetch buffer is handed back at shutdown, not finished.
	workertest.Eventually(t, 5*time.Second, "all four events in the provider's hands", func() bool {
		return p.sb.Started() == 4
	})
	stop() // waits for Run: in-flight work finishes first
	if n := len(p.results.WaitFor(t, events.ProvisioningSucceeded, 4, 5*time.Second)); n != 4 {
		t.Fatalf("results = %d", n)
	}
	ci := p.consumerInfo()
	if ci.NumAckPending != 0 || ci.NumPending != 0 {
		t.Fatalf("after shutdown: ack pending %d, pending %d; want 0 and 0", ci.NumAckPending, ci.NumPending)
	}
}

func TestShutdownTimeoutNaksAndLosesNothing(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.ShutdownTimeout = 100 * time.Millisecond })
	stop, _ := p.start(p.sb)
	for i := range 3 {
		workertest.Publish(t, p.js, order(t, 80+i, svc(400+i, 4)))
	}
	workertest.Eventually(t, 5*time.Second, "events in flight", func() bool { return p.consumerInfo().NumAckPending == 3 })
	stop()
	if n := len(p.results.Of(events.ProvisioningSucceeded)); n != 0 {
		t.Fatalf("%d events finished within a 100ms shutdown; the test needs them interrupted", n)
	}
	p.start(p.sb) // a new worker picks the nak'ed events up at once
	p.results.WaitFor(t, events.ProvisioningSucceeded, 3, 15*time.Second)
	p.drained()
	if n := p.sb.Effects(); n != 3 {
		t.Fatalf("effects = %d, want 3", n)
	}
}

func TestBrokerRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	ns, err := worker.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ns.Addr().String()
	t.Cleanup(ns.Shutdown)
	nc, js := workertest.Connect(t, ns.ClientURL())
	_ = nc
	o := workertest.Options()
	o.AttemptBudget = time.Second
	cat, _ := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	sb := sandbox.New()
	w, err := worker.New(js, cat, map[string]worker.Provider{sandbox.Name: sb}, o, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, w)
	workertest.Eventually(t, 5*time.Second, "the worker to set up", func() bool { return w.Records() != nil })
	workertest.Publish(t, js, order(t, 90, svc(500, 1)))
	workertest.Eventually(t, 10*time.Second, "the first effect", func() bool { return sb.Effects() == 1 })

	ns.Shutdown()
	ns.WaitForShutdown()
	time.Sleep(300 * time.Millisecond)
	ns2, err := worker.StartEmbedded(dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns2.Shutdown)
	workertest.Eventually(t, 10*time.Second, "the client to reconnect", nc.IsConnected)
	workertest.Publish(t, js, order(t, 91, svc(501, 1)))
	workertest.Eventually(t, 20*time.Second, "the event published after the restart", func() bool { return sb.Effects() == 2 })
	workertest.Eventually(t, 10*time.Second, "the consumer to drain", func() bool {
		c, err := js.Consumer(context.Background(), worker.EventsStream, o.ConsumerName)
		if err != nil {
			return false
		}
		ci, err := c.Info(context.Background())
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

func TestProviderMissingFromConfigIsAnError(t *testing.T) {
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	_, err = worker.New(nil, cat, map[string]worker.Provider{}, worker.DefaultOptions(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "HOOKWORKER_SANDBOX_URL") {
		t.Fatalf("err = %v", err)
	}
}

// An event whose every delivery dies mid-call (no worker ever finishes it)
// is dead-lettered on the extra delivery instead of silently staying in the
// stream.
func TestEventAbandonedOnEveryDeliveryIsDeadLettered(t *testing.T) {
	p := newPipeline(t, func(o *worker.Options) { o.MaxDeliver, o.AckWait, o.AttemptBudget = 2, time.Second, time.Second })
	workertest.Publish(t, p.js, order(t, 95, svc(600, 1)))
	// Two deliveries taken by "workers" that die before acking.
	cons, err := p.js.Consumer(workertest.Context(t, 5*time.Second), worker.EventsStream, p.opts.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	for d := 1; d <= 2; d++ {
		var got jetstream.Msg
		workertest.Eventually(t, 10*time.Second, fmt.Sprintf("delivery %d", d), func() bool {
			b, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
			if err != nil {
				return false
			}
			for m := range b.Messages() {
				got = m
			}
			return got != nil
		})
		if md, _ := got.Metadata(); md.NumDelivered != uint64(d) {
			t.Fatalf("delivery %d has NumDelivered %d", d, md.NumDelivered)
		}
	}
	// The consumer allows one delivery more than the worker does: a replica
	// gets it when the last ack wait runs out and dead-letters at once.
	p.start(p.sb)
	res := p.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 15*time.Second)
	if !strings.Contains(res[0].Data.Error, "no delivery of 2 finished") || res[0].Data.OperationKey != events.ServiceKey("main", 600, events.SignupCustomer) {
		t.Fatalf("result %+v", res[0].Data)
	}
	dl := p.deadLetters()
	if len(dl) != 1 || dl[0].StreamSequence != 1 || len(dl[0].Operations) != 1 || dl[0].Deliveries != 3 {
		t.Fatalf("dead letters %+v", dl)
	}
	if n := p.sb.Calls(); n != 0 {
		t.Fatalf("the abandoned event was applied %d times after max deliveries", n)
	}
}
