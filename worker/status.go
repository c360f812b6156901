package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Status is a snapshot of the queue, for metrics, readiness, the ops page
// and `hookworker status`.
type Status struct {
	At               time.Time         `json:"at"`
	Pending          uint64            `json:"pending"`             // not yet delivered
	AckPending       int               `json:"ack_pending"`         // delivered, not yet acked
	Redelivered      int               `json:"redelivered"`         // delivered more than once, not yet acked
	OldestPendingAge time.Duration     `json:"oldest_pending_age"`  // age of the oldest unacked event
	StreamMessages   uint64            `json:"stream_messages"`     // events kept in the events stream
	Results          uint64            `json:"results"`             // result events kept
	DeadLetters      uint64            `json:"dead_letters"`        // entries waiting in the dead-letter stream
	Providers        map[string]string `json:"providers,omitempty"` // name → "up" or the check's error
}

// ReadStatus reads the queue's state from JetStream.
func ReadStatus(ctx context.Context, js jetstream.JetStream, consumer string) (Status, error) {
	st := Status{At: time.Now().UTC()}
	cons, err := js.Consumer(ctx, EventsStream, consumer)
	if err != nil {
		return st, fmt.Errorf("consumer %s on %s: %w", consumer, EventsStream, err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("consumer info: %w", err)
	}
	st.Pending, st.AckPending, st.Redelivered = ci.NumPending, ci.NumAckPending, ci.NumRedelivered
	stream, err := js.Stream(ctx, EventsStream)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", EventsStream, err)
	}
	si, err := stream.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("stream info: %w", err)
	}
	st.StreamMessages = si.State.Msgs
	if st.Pending > 0 || st.AckPending > 0 {
		// The oldest unacked event is the first one after the ack floor.
		for seq := ci.AckFloor.Stream + 1; seq <= si.State.LastSeq && seq <= ci.AckFloor.Stream+64; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if err == nil {
				st.OldestPendingAge = time.Since(m.Time)
				break
			}
			if !isNotFound(err) {
				break
			}
		}
	}
	for name, dst := range map[string]*uint64{DeadLetterStream: &st.DeadLetters, ResultsStream: &st.Results} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return st, fmt.Errorf("stream %s: %w", name, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			return st, fmt.Errorf("stream %s info: %w", name, err)
		}
		*dst = info.State.Msgs
	}
	return st, nil
}

func (w *Worker) pollStats(ctx context.Context) {
	t := time.NewTicker(w.opts.StatsInterval)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := ReadStatus(qctx, w.js, w.opts.ConsumerName)
		cancel()
		if err == nil {
			st.Providers = w.providerHealth()
			w.status.Store(&st)
			w.m.pending.Set(float64(st.Pending))
			w.m.ackPending.Set(float64(st.AckPending))
			w.m.redelivered.Set(float64(st.Redelivered))
			w.m.oldestAge.Set(st.OldestPendingAge.Seconds())
			w.m.deadLetters.Set(float64(st.DeadLetters))
			w.m.queueStatusUp.Set(1)
		} else if ctx.Err() == nil {
			w.status.Store(nil)
			w.m.queueStatusUp.Set(0)
			w.m.jetstreamErrors.WithLabelValues(jsQueueStatus).Inc()
			w.log.Warn("could not read queue status", zap.Error(err))
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (w *Worker) pollProviders(ctx context.Context) {
	if w.opts.ProviderCheck <= 0 {
		return
	}
	t := time.NewTicker(w.opts.ProviderCheck)
	defer t.Stop()
	for {
		for name, p := range w.providers {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := p.Check(cctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			up := 1.0
			if err != nil {
				up = 0
				w.log.Warn("provider check failed", zap.String("provider", name), zap.Error(err))
				w.provUp.Store(name, err.Error())
			} else {
				w.provUp.Store(name, "up")
			}
			w.m.providerUp.WithLabelValues(name).Set(up)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (w *Worker) providerHealth() map[string]string {
	out := map[string]string{}
	w.provUp.Range(func(k, v any) bool {
		out[k.(string)] = v.(string)
		return true
	})
	return out
}

// Status returns the latest queue snapshot, or false before the first one.
func (w *Worker) Status() (Status, bool) {
	st := w.status.Load()
	if st == nil {
		return Status{}, false
	}
	return *st, true
}

// Ready reports why the worker is not ready to process events, or nil: it
// must be running with its streams and consumer present and a queue
// snapshot no older than three stats intervals.
func (w *Worker) Ready() error {
	if !w.running.Load() {
		return errors.New("not consuming")
	}
	st := w.status.Load()
	if st == nil {
		return errors.New("queue status unknown: NATS unreachable or streams missing")
	}
	if age := time.Since(st.At); age > 3*w.opts.StatsInterval+5*time.Second {
		return fmt.Errorf("queue status is %s old: NATS unreachable?", age.Round(time.Second))
	}
	return nil
}

// Providers returns the configured provider names.
func (w *Worker) Providers() []string {
	out := make([]string, 0, len(w.providers))
	for n := range w.providers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// JetStream returns the JetStream handle the worker uses.
func (w *Worker) JetStream() jetstream.JetStream { return w.js }

// Records returns the idempotency bucket (nil before Setup).
func (w *Worker) Records() jetstream.KeyValue {
	w.setupOnce.Lock()
	defer w.setupOnce.Unlock()
	return w.kv
}

// ConsumerName is the durable consumer the worker reads.
func (w *Worker) ConsumerName() string { return w.opts.ConsumerName }
