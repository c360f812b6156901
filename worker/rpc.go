package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

// SingleSignOner is a provider that can start a login session for one of
// its users (Comet). The returned session key is a secret: it goes only
// into the SSO reply, never into a log or an error. A provider wrapped by
// another is found through the wrapper's Unwrap() Provider method.
type SingleSignOner interface {
	SingleSignOn(ctx context.Context, username string) (loginURL, sessionKey string, err error)
}

// singleSignOnOf finds the SingleSignOner in p or in the providers it wraps
// (a wrapper offers Unwrap() Provider, as errors.Unwrap does for errors).
func singleSignOnOf(p Provider) (SingleSignOner, bool) {
	for p != nil {
		if s, ok := p.(SingleSignOner); ok {
			return s, true
		}
		u, ok := p.(interface{ Unwrap() Provider })
		if !ok {
			break
		}
		p = u.Unwrap()
	}
	return nil, false
}

// rpcMaxTimeout bounds how long one request may keep the worker busy, what
// ever the caller asks for.
const rpcMaxTimeout = 30 * time.Second

// rpcConcurrency bounds the requests handled at once; more wait their turn
// (and their caller's timeout).
const rpcConcurrency = 16

// RPC answers the request-reply subjects of events/rpc.go for a worker:
// status, providers check, the last result and the dead letters of a
// service, "retry now" (replay a service's dead letters) and Comet single
// sign-on. A service's latest result is read from the results stream when
// it is asked for (one last-message-by-subject get on the service's result
// subjects), so results cost the worker nothing until then. Create it with
// Worker.StartRPC.
type RPC struct {
	w     *Worker
	nc    *nats.Conn
	log   *zap.Logger
	subs  []*nats.Subscription
	slots chan struct{}
	wg    sync.WaitGroup

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	cancel context.CancelFunc
}

// StartRPC subscribes to every request subject in the events.RPCQueue
// queue group on nc (the worker's own, authenticated connection). It registers
// hookworker_rpc_requests_total{request,outcome} and
// hookworker_rpc_request_duration_seconds{request} with reg (nil: not
// registered). Call Stop (or cancel ctx) to unsubscribe; Stop waits for
// requests being answered.
func (w *Worker) StartRPC(ctx context.Context, nc *nats.Conn, reg prometheus.Registerer) (*RPC, error) {
	if nc == nil {
		return nil, errors.New("rpc: no NATS connection")
	}
	r := &RPC{w: w, nc: nc, log: w.log.Named("rpc"), slots: make(chan struct{}, rpcConcurrency),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_rpc_requests_total",
			Help: "Requests answered (WHMCS module, hookworker status / providers check), by request and outcome (ok, error)."}, []string{"request", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hookworker_rpc_request_duration_seconds",
			Help: "Time to answer a request, by request.", Buckets: []float64{.005, .025, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"request"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.requests, r.duration} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("rpc: metrics: %w", err)
			}
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	handlers := map[string]func(context.Context, events.RPCRequest) any{
		events.RPCStatus:         r.status,
		events.RPCProvidersCheck: r.providersCheck,
		events.RPCServiceResult:  r.serviceResult,
		events.RPCServiceRetry:   r.serviceRetry,
		events.RPCCometSSO:       r.cometSSO,
	}
	for subj, h := range handlers {
		sub, err := nc.QueueSubscribe(subj, events.RPCQueue, r.serve(ctx, subj, h))
		if err != nil {
			r.Stop()
			return nil, fmt.Errorf("rpc: subscribe %s: %w", subj, err)
		}
		r.subs = append(r.subs, sub)
	}
	if err := nc.Flush(); err != nil {
		r.Stop()
		return nil, fmt.Errorf("rpc: subscribe: %w", err)
	}
	r.log.Info("answering requests", zap.String("subjects", events.RPCPrefix+".>"), zap.String("queue", events.RPCQueue))
	return r, nil
}

// Stop unsubscribes and waits for the requests being answered.
func (r *RPC) Stop() {
	for _, s := range r.subs {
		_ = s.Unsubscribe()
	}
	r.cancel()
	r.wg.Wait()
}

func (r *RPC) serve(ctx context.Context, subj string, h func(context.Context, events.RPCRequest) any) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Reply == "" {
			return // a publish, not a request: nothing to answer
		}
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-r.slots }()
			var req events.RPCRequest
			var reply any
			if len(m.Data) > 0 {
				if err := json.Unmarshal(m.Data, &req); err != nil {
					reply = events.RPCReply{Error: "request is not the JSON expected: " + err.Error()}
				}
			}
			start := time.Now()
			if reply == nil {
				timeout := events.RPCDefaultTimeout
				if req.TimeoutMS > 0 {
					timeout = time.Duration(req.TimeoutMS) * time.Millisecond
				}
				rctx, cancel := context.WithTimeout(ctx, min(timeout, rpcMaxTimeout))
				reply = h(rctx, req)
				cancel()
			}
			label := strings.ReplaceAll(strings.TrimPrefix(subj, events.RPCPrefix+"."), ".", "_")
			outcome := "ok"
			if e, ok := reply.(interface{ Err() error }); ok && e.Err() != nil {
				outcome = "error"
			}
			r.requests.WithLabelValues(label, outcome).Inc()
			r.duration.WithLabelValues(label).Observe(time.Since(start).Seconds())
			b, err := json.Marshal(reply)
			if err != nil {
				b, _ = json.Marshal(events.RPCReply{Error: "encoding the reply: " + err.Error(), Worker: r.w.instance})
			}
			if err := m.Respond(b); err != nil {
				r.log.Warn("could not answer a request", zap.String("subject", subj), zap.Error(err))
			}
			r.log.Debug("answered", zap.String("subject", subj), zap.Int("service_id", req.ServiceID), zap.String("provider", req.Provider))
		}()
	}
}

func (r *RPC) base(err error) events.RPCReply {
	rep := events.RPCReply{Worker: r.w.instance}
	if err != nil {
		rep.Error = err.Error()
	}
	return rep
}

// status: the worker's latest queue snapshot (read now when there is none
// yet) and provider health.
func (r *RPC) status(ctx context.Context, _ events.RPCRequest) any {
	st, ok := r.w.Status()
	if !ok {
		var err error
		if st, err = ReadStatus(ctx, r.w.js, r.w.opts.ConsumerName); err != nil {
			return events.StatusReply{RPCReply: r.base(fmt.Errorf("queue status: %w", err))}
		}
	}
	health := r.w.providerHealth()
	for _, n := range r.w.Providers() {
		if _, ok := health[n]; !ok {
			health[n] = "unchecked"
		}
	}
	rep := events.StatusReply{RPCReply: r.base(nil), At: st.At, Consumer: r.w.opts.ConsumerName,
		Pending: st.Pending, AckPending: st.AckPending, Redelivered: st.Redelivered, OldestPendingAge: st.OldestPendingAge,
		StreamMessages: st.StreamMessages, Results: st.Results, DeadLetters: st.DeadLetters, Providers: health, Ready: true}
	if err := r.w.Ready(); err != nil {
		rep.Ready, rep.NotReady = false, err.Error()
	}
	return rep
}

// providersCheck runs Check now on the named provider, or on every
// configured provider, concurrently.
func (r *RPC) providersCheck(ctx context.Context, req events.RPCRequest) any {
	names := r.w.Providers()
	if req.Provider != "" {
		if r.w.providers[req.Provider] == nil {
			return events.ProvidersCheckReply{RPCReply: r.base(fmt.Errorf("provider %q is not configured at this worker (configured: %v)", req.Provider, names))}
		}
		names = []string{req.Provider}
	}
	out := make([]events.ProviderCheck, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := r.w.providers[n].Check(ctx)
			c := events.ProviderCheck{Provider: n, OK: err == nil, Millis: time.Since(start).Milliseconds()}
			if err != nil {
				c.ErrorClass, c.Error = events.ClassOf(err), err.Error()
				r.w.provUp.Store(n, err.Error())
			} else {
				r.w.provUp.Store(n, "up")
			}
			out[i] = c
		}()
	}
	wg.Wait()
	return events.ProvidersCheckReply{RPCReply: r.base(nil), Providers: out}
}

// lastResult reads the newest result event about the service from the
// results stream (subjects hookworker.results.*.<source>.<service>). A
// failure that names no provider account carries the reference of the
// service's newest success at the same provider, as the reply promises the
// account the service has. found is false when the stream keeps no result
// of the service.
func (r *RPC) lastResult(ctx context.Context, source string, serviceID int) (events.ServiceResult, bool, error) {
	if !events.ValidSource(source) {
		return events.ServiceResult{}, false, nil // no result subject names such an instance
	}
	stream, err := r.w.js.Stream(ctx, ResultsStream)
	if err != nil {
		return events.ServiceResult{}, false, fmt.Errorf("results stream %s: %w", ResultsStream, err)
	}
	last, found, err := readResult(ctx, stream, events.ServiceResultsFilter("*", source, serviceID))
	if err != nil || !found || last.Reference != "" || last.Type == events.ProvisioningSucceeded {
		return last, found, err
	}
	ok, okFound, err := readResult(ctx, stream, events.ServiceResultsFilter(events.OutcomeSucceeded, source, serviceID))
	if err != nil {
		return last, true, err
	}
	if okFound && ok.Provider == last.Provider {
		last.Reference = ok.Reference // a failure names no account: keep the one already known
	}
	return last, true, nil
}

// readResult reads the newest result event on subjects matching filter.
func readResult(ctx context.Context, stream jetstream.Stream, filter string) (events.ServiceResult, bool, error) {
	m, err := stream.GetLastMsgForSubject(ctx, filter)
	if isNotFound(err) {
		return events.ServiceResult{}, false, nil
	}
	if err != nil {
		return events.ServiceResult{}, false, fmt.Errorf("last result on %s: %w", filter, err)
	}
	var env struct {
		ID         string            `json:"id"`
		Type       events.Type       `json:"type"`
		OccurredAt time.Time         `json:"occurred_at"`
		Data       events.ResultData `json:"data"`
	}
	if err := json.Unmarshal(m.Data, &env); err != nil {
		return events.ServiceResult{}, false, fmt.Errorf("result %d on %s is unreadable: %w", m.Sequence, m.Subject, err)
	}
	d := env.Data
	return events.ServiceResult{EventID: env.ID, Type: env.Type, At: env.OccurredAt, SourceEventID: d.SourceEventID,
		Action: d.Action, Provider: d.Provider, Reference: d.Reference, AlreadyDone: d.AlreadyDone, Attempt: d.Attempt,
		WillRetry: d.WillRetry, ErrorClass: d.ErrorClass, Error: d.Error}, true, nil
}

// serviceResult: the latest result for the service and its dead letters.
func (r *RPC) serviceResult(ctx context.Context, req events.RPCRequest) any {
	if err := req.ServiceRequired(); err != nil {
		return events.ServiceResultReply{RPCReply: r.base(err)}
	}
	rep := events.ServiceResultReply{RPCReply: r.base(nil)}
	last, found, err := r.lastResult(ctx, req.Source, req.ServiceID)
	if found {
		rep.Found, rep.Last = true, &last
	}
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	queued, err := r.queuedFor(ctx, req.Source, req.ServiceID)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	rep.Queued = queued
	entries, err := r.deadLettersOf(ctx, req.Source, req.ServiceID)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	for _, e := range entries {
		rep.DeadLetters = append(rep.DeadLetters, events.DeadLetterRef{Seq: e.Seq, EventID: e.EventID, EventType: e.EventType,
			ErrorClass: e.ErrorClass, Reason: e.Reason, Attempts: len(e.Attempts), At: e.DeadLetteredAt})
	}
	return rep
}

// queuedFor returns the service's events the consumer has not acknowledged,
// looking through the newest events.RPCQueuedScan after the ack floor (an
// event acked out of order above the floor may still be listed until the
// floor passes it).
func (r *RPC) queuedFor(ctx context.Context, source string, serviceID int) ([]events.QueuedEvent, error) {
	cons, err := r.w.js.Consumer(ctx, EventsStream, r.w.opts.ConsumerName)
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", r.w.opts.ConsumerName, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumer info: %w", err)
	}
	stream, err := r.w.js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	last := ci.Delivered.Stream + ci.NumPending // the stream's last sequence the consumer knows of
	var out []events.QueuedEvent
	for seq, n := last, 0; seq > ci.AckFloor.Stream && n < events.RPCQueuedScan; seq, n = seq-1, n+1 {
		m, err := stream.GetMsg(ctx, seq)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("event %d: %w", seq, err)
		}
		src, _, ok := events.ParseInboundSubject(m.Subject)
		if !ok || src != source || !concernsService(m.Data, serviceID) {
			continue
		}
		var head struct {
			ID   string      `json:"id"`
			Type events.Type `json:"type"`
		}
		_ = json.Unmarshal(m.Data, &head)
		out = append(out, events.QueuedEvent{Seq: seq, EventID: head.ID, Type: head.Type})
	}
	return out, nil
}

// serviceRetry replays every dead letter of the service, oldest first.
func (r *RPC) serviceRetry(ctx context.Context, req events.RPCRequest) any {
	if err := req.ServiceRequired(); err != nil {
		return events.ServiceRetryReply{RPCReply: r.base(err)}
	}
	entries, err := r.deadLettersOf(ctx, req.Source, req.ServiceID)
	rep := events.ServiceRetryReply{RPCReply: r.base(err), Replayed: []events.Replayed{}}
	if err != nil {
		return rep
	}
	d, err := OpenDeadLetters(ctx, r.w.js)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	for _, e := range entries {
		seq, err := d.Replay(ctx, e.Seq)
		if err != nil {
			rep.Error = err.Error()
			return rep
		}
		rep.Replayed = append(rep.Replayed, events.Replayed{Seq: e.Seq, EventSeq: seq})
		r.log.Info("dead letter replayed on request", zap.Uint64("dead_letter", e.Seq), zap.Uint64("event_seq", seq),
			zap.String("event_id", e.EventID), zap.Int("service_id", req.ServiceID))
	}
	return rep
}

// deadLettersOf lists the dead letters whose event concerns the service. It
// reads the instance's entries (subject hookworker.dlq.<source>.>) in one
// ordered consumer, not one request per entry.
func (r *RPC) deadLettersOf(ctx context.Context, source string, serviceID int) ([]Entry, error) {
	cons, err := r.w.js.OrderedConsumer(ctx, DeadLetterStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.DeadLetterPrefix + "." + source + ".>"}, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", DeadLetterStream, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", DeadLetterStream, err)
	}
	var out []Entry
	for left := info.NumPending; left > 0; {
		batch, err := cons.Fetch(int(min(left, 256)), jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return out, fmt.Errorf("read dead letters: %w", err)
		}
		got := uint64(0)
		for m := range batch.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			left = md.NumPending
			var dl events.DeadLetter
			if json.Unmarshal(m.Data(), &dl) != nil || !concernsService(dl.Event, serviceID) {
				continue
			}
			out = append(out, Entry{Seq: md.Sequence.Stream, DeadLetter: dl})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return out, fmt.Errorf("read dead letters: %w", err)
		}
		if got == 0 {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			break // entries removed while reading
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// concernsService reports whether an inbound event names the service: as
// data.service_id, one of data.services[].service_id, or the rel_id of a
// Hosting item of an invoice.
func concernsService(event json.RawMessage, serviceID int) bool {
	if len(event) == 0 {
		return false
	}
	var e struct {
		Data struct {
			ServiceID int `json:"service_id"`
			Services  []struct {
				ServiceID int `json:"service_id"`
			} `json:"services"`
			Items []struct {
				Type  string `json:"type"`
				RelID int    `json:"rel_id"`
			} `json:"items"`
		} `json:"data"`
	}
	if json.Unmarshal(event, &e) != nil {
		return false
	}
	if e.Data.ServiceID == serviceID {
		return true
	}
	for _, s := range e.Data.Services {
		if s.ServiceID == serviceID {
			return true
		}
	}
	for _, it := range e.Data.Items {
		if it.Type == "Hosting" && it.RelID == serviceID {
			return true
		}
	}
	return false
}

// cometSSO starts a Comet session for the service's Comet user: the account
// the service's signup record names (the name hookworker chose or adopted),
// or, for a service provisioned before hookworker kept records, the
// username WHMCS holds for it.
func (r *RPC) cometSSO(ctx context.Context, req events.RPCRequest) any {
	const provider = "comet"
	if err := req.ServiceRequired(); err != nil {
		return events.SSOReply{RPCReply: r.base(err)}
	}
	p, ok := singleSignOnOf(r.w.providers[provider])
	if !ok {
		return events.SSOReply{RPCReply: r.base(errors.New("the Comet provider is not configured at this worker (set HOOKWORKER_COMET_URL)"))}
	}
	user, err := r.serviceAccount(ctx, req.Source, req.ServiceID, provider)
	if err != nil {
		return events.SSOReply{RPCReply: r.base(err)}
	}
	if user == "" {
		user = req.Username
	}
	if user == "" {
		return events.SSOReply{RPCReply: r.base(fmt.Errorf("service %d has no Comet account yet (no successful signup recorded and no username in WHMCS)", req.ServiceID))}
	}
	loginURL, key, err := p.SingleSignOn(ctx, user)
	if err != nil {
		return events.SSOReply{RPCReply: r.base(err)}
	}
	r.log.Info("Comet single sign-on session started", zap.Int("service_id", req.ServiceID), zap.String("source", req.Source))
	return events.SSOReply{RPCReply: r.base(nil), URL: loginURL, Username: user, SessionKey: key}
}

// serviceAccount returns the provider account the service's done signup
// record names, "" when there is none. A signup recorded at another
// provider is an error: the service is not that provider's.
func (r *RPC) serviceAccount(ctx context.Context, source string, serviceID int, provider string) (string, error) {
	kv := r.w.Records()
	if kv == nil {
		return "", errors.New("the records bucket is not open yet")
	}
	for _, a := range []events.Action{events.SignupCustomer, events.SignupReseller} {
		entry, err := kv.Get(ctx, RecordKey(events.ServiceKey(source, serviceID, a)))
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("signup record of service %d: %w", serviceID, err)
		}
		var rec Record
		if err := json.Unmarshal(entry.Value(), &rec); err != nil {
			return "", fmt.Errorf("signup record of service %d is unreadable: %w", serviceID, err)
		}
		if rec.State != StateDone || rec.Outcome == nil {
			continue
		}
		if rec.Operation.Provider != provider {
			return "", fmt.Errorf("service %d was provisioned at %s, not %s", serviceID, rec.Operation.Provider, provider)
		}
		return rec.Outcome.Reference, nil
	}
	return "", nil
}
