package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/worker/catalog"
)

// Provider is what the worker needs of a provider client (see package
// providers for the contract each one honours).
type Provider interface {
	Name() string
	Prepare(ctx context.Context, op events.Operation) (map[string]string, error)
	Lookup(ctx context.Context, op events.Operation) (events.Outcome, bool, error)
	Apply(ctx context.Context, op events.Operation) (events.Outcome, error)
	Check(ctx context.Context) error
}

// Worker consumes the events stream. Create it with New, then call Run.
type Worker struct {
	js        jetstream.JetStream
	cat       *catalog.Catalog
	providers map[string]Provider
	opts      Options
	log       *zap.Logger
	m         *Metrics
	instance  string

	setupOnce sync.Mutex
	cons      jetstream.Consumer
	adv       jetstream.Consumer // of AdvisoryStream
	kv        jetstream.KeyValue
	running   atomic.Bool
	status    atomic.Pointer[Status]
	provUp    sync.Map // provider name → error (nil = up)
	inflight  sync.WaitGroup
	streak    map[string]*atomic.Int64 // provider → consecutive transient failures
	slots     chan struct{}            // provider calls in progress; capacity Concurrency
}

// failingStreak is how many transient failures in a row make a provider
// "failing": its events then get one attempt per delivery and go back to
// the queue with a delay, instead of holding worker slots in in-process
// retries, so a provider that is down slows only its own work.
const failingStreak = 3

// New checks that every provider the catalog routes to is configured and
// returns a worker. m may be nil (metrics not registered anywhere).
func New(js jetstream.JetStream, cat *catalog.Catalog, providers map[string]Provider, o Options, log *zap.Logger, m *Metrics) (*Worker, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.defaults()
	for _, name := range cat.Providers() {
		if providers[name] == nil {
			return nil, fmt.Errorf("catalog routes to provider %q, which is not configured (set HOOKWORKER_%s_URL)", name, strings.ToUpper(name))
		}
	}
	if log == nil {
		log = zap.NewNop()
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	inst := o.InstanceID
	if inst == "" {
		host, _ := os.Hostname()
		inst = host + ":" + strconv.Itoa(os.Getpid())
	}
	streak := make(map[string]*atomic.Int64, len(providers))
	for name := range providers {
		streak[name] = new(atomic.Int64)
	}
	return &Worker{js: js, cat: cat, providers: providers, opts: o, log: log, m: m, instance: inst, streak: streak,
		slots: make(chan struct{}, o.Concurrency)}, nil
}

// Setup ensures the streams, the consumer and the bucket exist. Run calls
// it; calling it first lets readiness report a broken broker before Run.
func (w *Worker) Setup(ctx context.Context) error {
	w.setupOnce.Lock()
	defer w.setupOnce.Unlock()
	if w.cons != nil {
		return nil
	}
	cons, kv, err := Setup(ctx, w.js, w.opts)
	if err != nil {
		return err
	}
	adv, err := w.js.Consumer(ctx, AdvisoryStream, advisoryConsumer)
	if err != nil {
		return fmt.Errorf("consumer %s on %s: %w", advisoryConsumer, AdvisoryStream, err)
	}
	w.cons, w.kv, w.adv = cons, kv, adv
	w.shareReservations(kv) // renewal chains and username claims, shared by every replica
	return nil
}

// Run consumes events until ctx is cancelled, then stops fetching, lets
// in-flight events finish within the shutdown timeout, naks the rest and
// returns nil. It returns an error when setup fails, and when the NATS
// connection is closed for good (after letting in-flight events end).
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Setup(ctx); err != nil {
		return err
	}
	w.running.Store(true)
	defer w.running.Store(false)
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var connLost atomic.Bool
	go w.watchConn(ctx, func() { connLost.Store(true); stopRun() })
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go w.pollStats(ctx)
	go w.pollProviders(ctx)
	stopAdvisories, err := w.consumeAdvisories(ctx)
	if err != nil {
		return err
	}
	defer stopAdvisories()

	// A continuous pull feeds Prefetch workers, each with one event in
	// hand. At most Concurrency of them are at a provider at once (the
	// slots); the others write their records and results meanwhile, so the
	// store's round trips overlap the provider calls instead of holding a
	// provider slot. Every event in hand gets an in-progress signal every
	// third of the ack wait from one shared ticker, so waiting for a slot
	// never runs into the ack wait.
	held := newHeld()
	queue := make(chan jetstream.Msg)
	var stopping atomic.Bool
	var lastPullWarn atomic.Int64
	cc, err := w.cons.Consume(func(msg jetstream.Msg) {
		if stopping.Load() {
			_ = msg.Nak() // shutting down: hand it straight to another replica
			return
		}
		held.add(msg)
		queue <- msg
	}, jetstream.PullMaxMessages(w.opts.Prefetch), jetstream.PullExpiry(max(w.opts.FetchWait, time.Second)),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			w.m.jetstreamErrors.WithLabelValues(jsFetch).Inc()
			if now := time.Now().UnixNano(); now-lastPullWarn.Load() > int64(5*time.Second) { // one line per 5 s while it lasts
				lastPullWarn.Store(now)
				w.log.Warn("pulling events failed; the pull is retried", zap.Error(err))
			}
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", w.opts.ConsumerName, err)
	}
	beatCtx, stopBeats := context.WithCancel(context.Background())
	defer stopBeats()
	go held.beat(beatCtx, w.opts.AckWait/3)
	w.log.Info("worker started", zap.String("consumer", w.opts.ConsumerName), zap.Int("concurrency", w.opts.Concurrency),
		zap.Int("prefetch", w.opts.Prefetch), zap.Duration("ack_wait", w.opts.AckWait), zap.Int("max_deliver", w.opts.MaxDeliver))
	for range w.opts.Prefetch {
		w.inflight.Add(1)
		go func() {
			defer w.inflight.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case msg := <-queue:
					if ctx.Err() != nil {
						_ = msg.Nak()
					} else {
						w.handle(workCtx, msg)
					}
					held.remove(msg)
				}
			}
		}()
	}
	<-ctx.Done()
	stopping.Store(true)
	cc.Stop()
	// Events in hand that no worker started: back to the stream at once.
	go func() {
		for {
			select {
			case msg := <-queue:
				_ = msg.Nak()
				held.remove(msg)
			case <-cc.Closed():
				for {
					select {
					case msg := <-queue:
						_ = msg.Nak()
						held.remove(msg)
					default:
						return
					}
				}
			}
		}
	}()
	w.log.Info("shutting down: no more fetches; waiting for in-flight events", zap.Duration("timeout", w.opts.ShutdownTimeout))
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	select {
	case <-done:
		w.log.Info("in-flight events finished")
	case <-time.After(w.opts.ShutdownTimeout):
		w.log.Warn("shutdown timeout: cancelling in-flight events; they are nak'ed for redelivery")
		cancelWork()
		<-done
	}
	// Acks are not waited for one by one: make sure the server has them
	// all before Run returns.
	if nc := w.js.Conn(); nc != nil && nc.IsConnected() {
		if err := nc.FlushTimeout(5 * time.Second); err != nil {
			w.log.Warn("could not flush the last acks; those events will be redelivered and answered from their records", zap.Error(err))
		}
	}
	if connLost.Load() {
		return errConnClosed
	}
	return nil
}

// maxAttemptHistory bounds the attempts kept in a record: the first and the
// latest ones.
const maxAttemptHistory = 20

// failure is an operation that did not succeed in this delivery.
type failure struct {
	op  events.Operation
	err error
	rec Record
}

func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	w.m.inFlight.Inc()
	defer w.m.inFlight.Dec()
	d, ready := w.receive(ctx, msg)
	if d == nil {
		return
	}
	defer d.observe(w)
	if !ready {
		return
	}
	var failed []failure
	for i := range d.ops {
		if rec, err := w.runOp(ctx, d, d.ops[i]); err != nil {
			failed = addFailure(failed, &d.ops[i], err, rec)
		}
	}
	w.conclude(ctx, d, failed)
}

// addFailure appends a failed operation (kept out of handle's frame).
//
//go:noinline
func addFailure(failed []failure, op *events.Operation, err error, rec *Record) []failure {
	return append(failed, failure{op: *op, err: err, rec: *rec})
}

// delivery is one delivery of an event in work. It lives on the heap, not
// in the frames of handle and runOp: a goroutine's stack doubles as it
// grows, so with a thousand events in flight every byte of frame counts
// twice.
type delivery struct {
	msg   jetstream.Msg
	meta  *jetstream.MsgMetadata
	env   events.Envelope
	ops   []events.Operation
	typ   string
	start time.Time
	log   *zap.Logger
}

func (d *delivery) observe(w *Worker) {
	w.m.eventDuration.WithLabelValues(d.typ).Observe(time.Since(d.start).Seconds())
}

// receive decodes, validates and routes msg. ready is false when the
// delivery was settled here (dead-lettered, finished); d is nil when msg
// has no JetStream metadata (nak'ed).
//
//go:noinline
func (w *Worker) receive(ctx context.Context, msg jetstream.Msg) (d *delivery, ready bool) {
	start := time.Now()
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without JetStream metadata; nak'ed", zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Nak()
		return nil, false
	}

	env, payload, decodeErr := events.DecodeWithPayload(msg.Data())
	typ := typeLabel(env.Type)
	w.m.received.WithLabelValues(typ).Inc()
	d = &delivery{msg: msg, meta: meta, env: env, typ: typ, start: start}
	d.log = w.log.WithLazy(zap.String("event_id", env.ID), zap.String("type", string(env.Type)),
		zap.Uint64("stream_seq", meta.Sequence.Stream), zap.Uint64("delivery", meta.NumDelivered))
	log := d.log

	if decodeErr == nil {
		// Exactly whmcs.<source>.<type>: anything else (whmcs.chaos, another
		// instance's subject) is not this event's and is dead-lettered.
		if want := events.InboundSubject(env.Source, env.Type); msg.Subject() != want {
			decodeErr = events.Permanentf("%w: subject %q is not %q, the subject of the event's source and type", events.ErrMalformed, events.Clip(msg.Subject()), want)
		}
	}
	if decodeErr != nil {
		log.Warn("malformed event; dead-lettering", zap.Error(decodeErr))
		w.deadLetter(ctx, msg, meta, env, nil, decodeErr, log)
		return d, false
	}
	ops, err := w.route(env, payload)
	if err != nil {
		log.Warn("event cannot be routed; dead-lettering", zap.Error(err))
		w.deadLetter(ctx, msg, meta, env, nil, err, log)
		return d, false
	}
	if meta.NumDelivered > uint64(w.opts.MaxDeliver) {
		w.finishUnfinished(ctx, msg, meta, env, ops, log)
		return d, false
	}
	if len(ops) == 0 {
		log.Info("0 operations: " + NoOperationsReason(env, w.cat))
	}
	d.ops = ops
	return d, true
}

// conclude acks, naks or settles a delivery whose operations ran.
//
//go:noinline
func (w *Worker) conclude(ctx context.Context, d *delivery, failed []failure) {
	msg, log := d.msg, d.log
	if ctx.Err() != nil {
		// Shutdown ran out of time: hand the event back for immediate redelivery.
		log.Warn("interrupted by shutdown; nak'ed for redelivery")
		_ = msg.Nak()
		w.m.processed.WithLabelValues(d.typ, "retry").Inc()
		return
	}
	if len(failed) == 0 {
		if err := w.ack(msg); err != nil {
			w.m.jetstreamErrors.WithLabelValues(jsAck).Inc()
			log.Warn("ack failed; the event will be redelivered and its recorded results re-published", zap.Error(err))
		}
		w.m.processed.WithLabelValues(d.typ, "succeeded").Inc()
		log.Debug("event done", zap.Int("operations", len(d.ops)), zap.Duration("took", time.Since(d.start)))
		return
	}
	w.settle(ctx, msg, d.meta, d.env, d.typ, failed, log)
}

// settle ends a delivery in which some operations failed: dead-letters it
// when a failure is permanent or the deliveries are exhausted, else reports
// the failures and naks it with the redelivery delay. (Kept out of handle so
// that the hot path's stack frame stays small: with a thousand events in
// flight, each goroutine's stack is a good part of the worker's memory.)
func (w *Worker) settle(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, env events.Envelope, typ string, failed []failure, log *zap.Logger) {
	exhausted := meta.NumDelivered >= uint64(w.opts.MaxDeliver)
	permanent := false
	var retryAfter time.Duration
	for _, f := range failed {
		if events.ClassOf(f.err) == events.Permanent {
			permanent = true
		}
		retryAfter = max(retryAfter, events.RetryAfterOf(f.err))
	}
	if permanent || exhausted {
		reason := failed[0].err
		if exhausted && !permanent {
			reason = fmt.Errorf("gave up after %d deliveries: %w", meta.NumDelivered, reason)
		}
		w.deadLetter(ctx, msg, meta, env, failed, reason, log)
		return
	}
	delay := w.opts.redeliveryDelay(meta.NumDelivered, retryAfter)
	for _, f := range failed {
		if errors.Is(f.err, ErrBusy) {
			continue // another worker is on it: no failure to report
		}
		w.publishResult(events.OutcomeFailed, env, f.op, resultFields{attempt: len(f.rec.Attempts), willRetry: true, err: f.err})
		w.m.operations.WithLabelValues(f.op.Provider, string(f.op.Action), "retry").Inc()
	}
	log.Info("transient failure; redelivery scheduled", zap.Duration("delay", delay), zap.Error(failed[0].err))
	if err := msg.NakWithDelay(delay); err != nil {
		w.m.jetstreamErrors.WithLabelValues(jsAck).Inc()
		log.Warn("nak failed; the event is redelivered after the ack wait", zap.Error(err))
	}
	w.m.processed.WithLabelValues(typ, "retry").Inc()
}

// ack acknowledges without waiting for the server's confirmation. Only
// an event whose records and results are durably stored is acked, so a lost
// ack costs a redelivery, which finds the done records and re-publishes
// their results: waiting for the confirmation would buy nothing but a round
// trip. On shutdown the connection is drained, which flushes pending acks.
func (w *Worker) ack(msg jetstream.Msg) error {
	return msg.Ack()
}

// held is the set of events this worker has in hand: waiting for a worker
// or in work.
type held struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]struct{}
}

func newHeld() *held { return &held{msgs: map[jetstream.Msg]struct{}{}} }

func (h *held) add(m jetstream.Msg) {
	h.mu.Lock()
	h.msgs[m] = struct{}{}
	h.mu.Unlock()
}

func (h *held) remove(m jetstream.Msg) {
	h.mu.Lock()
	delete(h.msgs, m)
	h.mu.Unlock()
}

// beat tells JetStream, every interval until ctx ends, that each event in
// hand is still being worked on, so none is redelivered while it waits or
// while a slow provider call runs.
func (h *held) beat(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var list []jetstream.Msg
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		h.mu.Lock()
		list = list[:0]
		for m := range h.msgs {
			list = append(list, m)
		}
		h.mu.Unlock()
		for _, m := range list {
			_ = m.InProgress()
		}
	}
}

// runOp applies one operation at most once. It returns the operation's
// record and nil when the effect exists (now or before) and its result was
// published.
func (w *Worker) runOp(ctx context.Context, d *delivery, op events.Operation) (*Record, error) {
	env, meta := &d.env, d.meta
	p := w.providers[op.Provider]
	log := opLogger(w.log, env.ID, &op)
	c, err := w.claimFor(ctx, meta, &op, p)
	if err != nil {
		if !errors.Is(err, ErrBusy) {
			log.Warn("operation not started", zap.Error(err))
		}
		return &Record{Key: op.Key, Operation: op}, err
	}
	rec := &c.rec
	if rec.State == StateDone {
		return rec, w.answerDone(*env, meta, op, p, rec, log)
	}
	op.Plan = rec.Plan
	out, err := w.effect(ctx, p, &op, c.prior || meta.NumDelivered > 1, rec, log)
	if err != nil {
		return w.fail(ctx, rec, c.rev, err, log)
	}
	return rec, w.complete(ctx, *env, meta, op, p, rec, c.rev, out, log)
}

// acquire takes a provider slot: at most Concurrency provider calls run at
// once. It fails (transient) only when ctx ends first.
func (w *Worker) acquire(ctx context.Context) error {
	select {
	case w.slots <- struct{}{}:
		w.m.slotsInUse.Inc()
		return nil
	case <-ctx.Done():
		return events.AsTransient(fmt.Errorf("waiting for a provider slot: %w", ctx.Err()), 0)
	}
}

func (w *Worker) release() {
	<-w.slots
	w.m.slotsInUse.Dec()
}

// effect brings op's effect about at its provider, holding one provider
// slot: when look is set (an earlier attempt may have done it) the provider
// is asked first and the effect is applied only when it is not found.
//
//go:noinline
func (w *Worker) effect(ctx context.Context, p Provider, op *events.Operation, look bool, rec *Record, log *zap.Logger) (events.Outcome, error) {
	if err := w.acquire(ctx); err != nil {
		return events.Outcome{}, err
	}
	defer w.release()
	if look {
		o, found, err := p.Lookup(ctx, *op)
		switch {
		case err != nil:
			log.Warn("look-up before retry failed; not applying blindly", zap.Error(err))
			rec.Attempts = w.appendAttempt(rec.Attempts, *op, err)
			return o, err
		case found:
			o.AlreadyDone = true
			log.Info("effect found at the provider; not applying again", zap.String("reference", o.Reference))
			return o, nil
		}
	}
	return w.apply(ctx, p, *op, rec, log)
}

// opLogger is the logger of one operation (kept out of runOp's frame).
//
//go:noinline
func opLogger(l *zap.Logger, eventID string, op *events.Operation) *zap.Logger {
	return l.WithLazy(zap.String("event_id", eventID), zap.String("operation", op.Key), zap.String("provider", op.Provider),
		zap.String("action", string(op.Action)))
}

// claimFor claims op for this delivery; the claim lives on the heap.
// Prepare, which may call the provider, runs in a provider slot.
//
//go:noinline
func (w *Worker) claimFor(ctx context.Context, meta *jetstream.MsgMetadata, op *events.Operation, p Provider) (*claim, error) {
	lease := max(w.opts.LeaseTime, w.opts.AttemptBudget+w.opts.AckWait)
	return w.claim(ctx, meta, op, newOwner(w.instance), lease, func() (map[string]string, error) {
		if err := w.acquire(ctx); err != nil {
			return nil, err
		}
		plan, err := p.Prepare(ctx, *op)
		w.release()
		if err != nil {
			return nil, fmt.Errorf("%s prepare %s: %w", op.Provider, op.Action, err)
		}
		return plan, nil
	})
}

// answerDone answers an operation whose record says it is done: its
// recorded result is published again.
func (w *Worker) answerDone(env events.Envelope, meta *jetstream.MsgMetadata, op events.Operation, p Provider, rec *Record, log *zap.Logger) error {
	w.m.operations.WithLabelValues(op.Provider, string(op.Action), "already_done").Inc()
	w.m.processed.WithLabelValues(typeLabel(env.Type), "duplicate").Inc()
	if b := backendOf(p); rec.Operation.Provider != op.Provider || (rec.Backend != "" && rec.Backend != b) {
		log.Warn("operation was done earlier by another provider or mode: not applied again; re-publishing its recorded result (use a fresh HOOKWORKER_DATA_DIR or bucket to start over)",
			zap.String("recorded_provider", rec.Operation.Provider), zap.String("recorded_backend", rec.Backend),
			zap.String("backend", b), zap.Time("done_at", rec.Updated))
	} else {
		log.Info("operation already done; re-publishing its recorded result")
	}
	return w.republish(*rec, meta.Sequence.Stream)
}

// complete records the effect's outcome in rec (done) and publishes its
// result, both confirmed before it returns nil.
func (w *Worker) complete(ctx context.Context, env events.Envelope, meta *jetstream.MsgMetadata, op events.Operation, p Provider, rec *Record, rev uint64, out events.Outcome, log *zap.Logger) error {
	rec.Attempts = w.appendAttempt(rec.Attempts, op, nil)
	resID, result, err := w.resultEnvelope(events.OutcomeSucceeded, env, op, resultFields{attempt: len(rec.Attempts), outcome: out})
	if err != nil {
		return events.AsTransient(err, 0)
	}
	rec.State, rec.Outcome, rec.Result, rec.Owner, rec.LeaseUntil = StateDone, &out, result, "", time.Time{}
	rec.EventID, rec.EventSeq, rec.Backend = env.ID, meta.Sequence.Stream, backendOf(p)
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// The done record and the result are written at the same time, and the
	// event is acked only when both are confirmed. Either failing fails the
	// delivery: a redelivery finds the done record and re-publishes its
	// result, or finds the effect by look-up and records it.
	pub, perr := w.js.PublishAsync(events.ResultSubject(events.OutcomeSucceeded, env.Source, op.ServiceID), result, jetstream.WithMsgID(resID))
	if _, err := saveRecord(saveCtx, w.kv, *rec, rev); err != nil {
		w.m.jetstreamErrors.WithLabelValues(jsRecord).Inc()
		log.Error("effect applied but its record could not be saved; the redelivery will look it up", zap.Error(err))
		return events.AsTransient(fmt.Errorf("save record: %w", err), 0)
	}
	if perr == nil {
		perr = awaitPub(saveCtx, pub)
	}
	if perr != nil {
		w.m.publishFailures.Inc()
		return events.AsTransient(fmt.Errorf("publish result: %w", perr), 0)
	}
	outcome := "succeeded"
	if out.AlreadyDone {
		outcome = "already_done"
	}
	w.m.operations.WithLabelValues(op.Provider, string(op.Action), outcome).Inc()
	log.Info("operation succeeded", zap.String("reference", out.Reference), zap.Bool("already_done", out.AlreadyDone),
		zap.Int("attempt", len(rec.Attempts)))
	return nil
}

// awaitPub waits for an asynchronous publish's confirmation.
func awaitPub(ctx context.Context, f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apply calls the provider, retrying transient errors in process within the
// attempt budget. A Retry-After longer than what is left of the budget ends
// the delivery instead, so that the redelivery waits as the provider asked.
func (w *Worker) apply(ctx context.Context, p Provider, op events.Operation, rec *Record, log *zap.Logger) (events.Outcome, error) {
	var out events.Outcome
	deadline := time.Now().Add(w.opts.AttemptBudget)
	var policy backoff.BackOff = &backoff.StopBackOff{} // a zero budget: one attempt per delivery
	streak := w.streak[op.Provider]
	if w.opts.AttemptBudget > 0 && streak.Load() < failingStreak {
		policy = backoff.NewExponentialBackOff(backoff.WithInitialInterval(200*time.Millisecond),
			backoff.WithMaxInterval(5*time.Second), backoff.WithMaxElapsedTime(w.opts.AttemptBudget))
	}
	b := backoff.WithContext(policy, ctx)
	attempt := len(rec.Attempts)
	err := backoff.RetryNotify(func() error {
		attempt++
		start := time.Now()
		o, err := p.Apply(ctx, op)
		class := "ok"
		if err != nil {
			class = string(events.ClassOf(err))
		}
		w.m.providerCall.WithLabelValues(op.Provider, string(op.Action), class).Observe(time.Since(start).Seconds())
		if err == nil {
			streak.Store(0)
			out = o
			return nil
		}
		if events.ClassOf(err) == events.Transient && ctx.Err() == nil && !errors.Is(err, providers.ErrProviderBusy) {
			if streak.Add(1) >= failingStreak {
				err = backoff.Permanent(fmt.Errorf("%w (provider failing: no in-process retry)", err))
			}
		}
		var stop *backoff.PermanentError
		if errors.As(err, &stop) {
			err = stop.Err
		}
		if prefix := op.Provider + " " + string(op.Action); !strings.HasPrefix(err.Error(), prefix) {
			err = fmt.Errorf("%s: %w", prefix, err) // providers usually name themselves already
		}
		rec.Attempts = w.appendAttempt(rec.Attempts, op, err)
		if stop != nil {
			return backoff.Permanent(err)
		}
		log.Info("provider call failed", zap.Int("attempt", attempt), zap.String("error_class", class), zap.Error(err))
		if events.ClassOf(err) == events.Permanent || ctx.Err() != nil {
			return backoff.Permanent(err)
		}
		if ra := events.RetryAfterOf(err); ra > 0 && time.Now().Add(ra).After(deadline) {
			return backoff.Permanent(err)
		}
		return err
	}, b, func(err error, d time.Duration) {
		w.m.retries.WithLabelValues(op.Provider, string(op.Action)).Inc()
	})
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (interrupted: %v)", err, ctx.Err())
	}
	return out, err
}

func (w *Worker) appendAttempt(list []events.Attempt, op events.Operation, err error) []events.Attempt {
	a := events.Attempt{Number: len(list) + 1, At: time.Now().UTC(), Operation: op.Key}
	if err != nil {
		a.ErrorClass, a.Error, a.Reply = events.ClassOf(err), err.Error(), events.ReplyOf(err)
	}
	list = append(list, a)
	if n := maxAttemptHistory; len(list) > n {
		list = append(list[:1], list[len(list)-n+1:]...) // keep the first and the latest
	}
	return list
}

// fail records a failed attempt and returns err (classified).
func (w *Worker) fail(ctx context.Context, rec *Record, rev uint64, err error, log *zap.Logger) (*Record, error) {
	rec.State, rec.Owner, rec.LeaseUntil = StateFailed, "", time.Time{}
	saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, serr := saveRecord(saveCtx, w.kv, *rec, rev); serr != nil {
		w.m.jetstreamErrors.WithLabelValues(jsRecord).Inc()
		log.Warn("could not record the failed attempt", zap.Error(serr))
	}
	return rec, err
}

// RepublishedHeader is set on a result re-published from its record for a
// later events-stream message (the same event sent again, a replay): its
// value is that message's stream sequence. The body is the recorded result
// unchanged, so followers stay idempotent on the envelope id.
const RepublishedHeader = "Hookworker-Republished-For"

// republish publishes a done record's result event for the events-stream
// message seq. For the message that produced the effect, the Nats-Msg-Id is
// the result's id, so a redelivery after a lost ack is de-duplicated by
// JetStream. For any other message it is the result's id plus that
// message's sequence: the copy reaches followers (the duplicate window
// would drop it otherwise) and that message's own redeliveries are
// de-duplicated in turn.
func (w *Worker) republish(rec Record, seq uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := resultID(rec.Key, events.OutcomeSucceeded)
	msg := &nats.Msg{Subject: events.ResultSubject(events.OutcomeSucceeded, rec.Operation.Source, rec.Operation.ServiceID), Data: rec.Result, Header: nats.Header{}}
	if rec.EventSeq != seq {
		s := strconv.FormatUint(seq, 10)
		id += ":republished:" + s
		msg.Header.Set(RepublishedHeader, s)
	}
	if _, err := w.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		w.m.publishFailures.Inc()
		return events.AsTransient(fmt.Errorf("publish result: %w", err), 0)
	}
	return nil
}

// backendOf says where p applies effects: its Backend() when it has one
// ("comet at https://…"), else its name.
func backendOf(p Provider) string {
	if b, ok := p.(interface{ Backend() string }); ok {
		return b.Backend()
	}
	return p.Name()
}

// resultID is the envelope id of an operation's result event.
func resultID(opKey, outcome string) string {
	return "hookworker:" + opKey + ":" + outcome
}

type resultFields struct {
	attempt   int
	willRetry bool
	err       error
	outcome   events.Outcome
	seq       uint64
}

func (w *Worker) resultEnvelope(outcome string, env events.Envelope, op events.Operation, f resultFields) (id string, body []byte, err error) {
	d := events.ResultData{
		SourceEventID: env.ID, SourceEventType: env.Type, OperationKey: op.Key, Action: op.Action, Provider: op.Provider,
		ProductID: op.ProductID, ServiceID: op.ServiceID, ClientID: op.ClientID, Attempt: f.attempt, WillRetry: f.willRetry,
		Reference: f.outcome.Reference, AlreadyDone: f.outcome.AlreadyDone, Details: f.outcome.Details, WriteBack: f.outcome.WriteBack,
	}
	if f.err != nil {
		d.ErrorClass, d.Error = events.ClassOf(f.err), f.err.Error()
	}
	id = resultID(op.Key, outcome)
	switch outcome {
	case events.OutcomeFailed:
		id += ":" + strconv.Itoa(f.attempt)
	case events.OutcomeDeadLettered:
		id += ":" + strconv.FormatUint(f.seq, 10)
	}
	source := env.Source
	if !events.ValidSource(source) {
		source = events.Unknown
	}
	if outcome == events.OutcomeSucceeded {
		// Built from a decoded, validated and routed event: every field is
		// already known to be valid, so the envelope is not decoded again
		// to validate it (NewEnvelope does that; it is a third of the cost).
		data, err := json.Marshal(d)
		if err != nil {
			return "", nil, fmt.Errorf("build %s result: %w", outcome, err)
		}
		body, err = json.Marshal(events.Envelope{ID: id, Type: events.ResultType(outcome), SpecVersion: events.SpecVersion,
			OccurredAt: time.Now().UTC(), Source: source, Data: data})
		return id, body, err
	}
	res, err := events.NewEnvelope(id, events.ResultType(outcome), source, time.Now(), d)
	if err != nil {
		return "", nil, fmt.Errorf("build %s result: %w", outcome, err)
	}
	body, err = json.Marshal(res)
	return id, body, err
}

// publishResult publishes a failed or dead-lettered result; a failure to
// publish is counted and logged, never fatal to the event.
func (w *Worker) publishResult(outcome string, env events.Envelope, op events.Operation, f resultFields) {
	id, b, err := w.resultEnvelope(outcome, env, op, f)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = w.js.Publish(ctx, events.ResultSubject(outcome, env.Source, op.ServiceID), b, jetstream.WithMsgID(id))
	}
	if err != nil {
		w.m.publishFailures.Inc()
		w.log.Warn("could not publish result event", zap.String("operation", op.Key), zap.String("outcome", outcome), zap.Error(err))
	}
}
