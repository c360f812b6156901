package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

// maxDeliveriesAdvisory is what JetStream publishes when it stops
// redelivering a message because MaxDeliver was reached.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// consumeAdvisories dead-letters the events whose every allowed delivery
// died unfinished, even the extra one the worker uses to dead-letter them
// itself (a worker killed while dead-lettering). JetStream says so only in
// a core-NATS advisory; the advisory stream keeps it until a replica has
// dead-lettered the event, so nobody needs to be listening at that moment.
func (w *Worker) consumeAdvisories(ctx context.Context) (stop func(), err error) {
	cc, err := w.adv.Consume(func(m jetstream.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data(), &adv); err != nil || adv.StreamSeq == 0 {
			w.log.Warn("unreadable max-deliveries advisory; dropped", zap.ByteString("advisory", m.Data()))
			_ = m.Term()
			return
		}
		if err := w.deadLetterAbandoned(ctx, adv); err != nil {
			delivered := uint64(1)
			if md, err := m.Metadata(); err == nil {
				delivered = md.NumDelivered
			}
			d := w.opts.redeliveryDelay(delivered, 0)
			w.log.Error("could not dead-letter an abandoned event; retrying", zap.Uint64("stream_seq", adv.StreamSeq), zap.Duration("in", d), zap.Error(err))
			_ = m.NakWithDelay(d)
			return
		}
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.DoubleAck(actx); err != nil {
			w.log.Warn("advisory ack failed; it comes back and finds the entry already made", zap.Error(err))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", AdvisoryStream, err)
	}
	return cc.Stop, nil
}

// deadLetterAbandoned dead-letters the event JetStream gave up on. It
// returns an error only when trying again later can help.
func (w *Worker) deadLetterAbandoned(ctx context.Context, adv maxDeliveriesAdvisory) error {
	log := w.log.With(zap.Uint64("stream_seq", adv.StreamSeq), zap.Uint64("deliveries", adv.Deliveries))
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	stream, err := w.js.Stream(gctx, EventsStream)
	if err != nil {
		return fmt.Errorf("events stream: %w", err)
	}
	raw, err := stream.GetMsg(gctx, adv.StreamSeq)
	if isNotFound(err) {
		log.Error("max deliveries reached but the event is no longer in the events stream (aged out or removed); nothing to dead-letter")
		return nil
	}
	if err != nil {
		return fmt.Errorf("read event %d: %w", adv.StreamSeq, err)
	}
	env, decErr := events.Decode(raw.Data)
	var reason error = events.AsTransient(fmt.Errorf("no delivery of %d finished: the worker stopped or timed out during the last one", adv.Deliveries), 0)
	if decErr != nil {
		reason = events.AsPermanent(fmt.Errorf("%v; the event is malformed: %w", reason, decErr))
	}
	dl := events.DeadLetter{
		EventID: env.ID, EventType: env.Type, Source: env.Source, Subject: raw.Subject, StreamSequence: adv.StreamSeq,
		MsgID: raw.Header.Get(jetstream.MsgIDHeader), ErrorClass: events.ClassOf(reason), Deliveries: adv.Deliveries,
		Reason: reason.Error(), DeadLetteredAt: time.Now().UTC(),
	}
	var ops, failed []events.Operation
	if decErr == nil && raw.Subject == events.InboundSubject(env.Source, env.Type) {
		ops, _ = Route(env, w.cat)
	}
	for _, op := range ops {
		rec, err := LoadRecord(gctx, w.kv, op.Key)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("read record %s: %w", op.Key, err)
		}
		if err == nil && rec.State == StateDone {
			if err := w.republish(rec, adv.StreamSeq); err != nil {
				return err
			}
			continue
		}
		failed = append(failed, op)
		dl.Operations = append(dl.Operations, op.Key)
		if err == nil {
			dl.Attempts = append(dl.Attempts, rec.Attempts...)
		}
	}
	if len(ops) > 0 && len(failed) == 0 {
		log.Info("max deliveries reached but every operation is done; results re-published")
		return nil
	}
	if err := w.storeDeadLetter(gctx, dl, raw.Data); err != nil {
		w.m.publishFailures.Inc()
		return fmt.Errorf("store dead letter: %w", err)
	}
	labels(&dl)
	if len(failed) == 0 {
		key := "stream:" + EventsStream + ":" + fmt.Sprint(adv.StreamSeq)
		failed = []events.Operation{{Key: key}}
		env = resultEventFor(env, dl, key)
	}
	for _, op := range failed {
		w.publishResult(events.OutcomeDeadLettered, env, op, resultFields{attempt: int(adv.Deliveries), err: clippedError{reason}, seq: adv.StreamSeq})
	}
	w.m.processed.WithLabelValues(typeLabel(env.Type), "dead_lettered").Inc()
	log.Warn("event abandoned after max deliveries; dead-lettered", zap.String("event_id", env.ID))
	return nil
}
