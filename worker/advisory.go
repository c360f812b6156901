package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
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

// watchMaxDeliveries dead-letters events whose last delivery never
// finished (the worker crashed or timed out on every one): JetStream stops
// delivering them and says so only in an advisory. A queue group makes one
// replica handle each advisory.
func (w *Worker) watchMaxDeliveries(ctx context.Context, nc *nats.Conn) (stop func(), err error) {
	subj := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + EventsStream + "." + w.opts.ConsumerName
	sub, err := nc.QueueSubscribe(subj, "hookworker-advisories", func(m *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
			w.log.Warn("unreadable max-deliveries advisory", zap.ByteString("advisory", m.Data))
			return
		}
		w.deadLetterAbandoned(ctx, adv)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subj, err)
	}
	return func() { _ = sub.Drain() }, nil
}

func (w *Worker) deadLetterAbandoned(ctx context.Context, adv maxDeliveriesAdvisory) {
	log := w.log.With(zap.Uint64("stream_seq", adv.StreamSeq), zap.Uint64("deliveries", adv.Deliveries))
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	stream, err := w.js.Stream(gctx, EventsStream)
	if err != nil {
		log.Error("max deliveries reached but the events stream cannot be read; the event stays in the stream", zap.Error(err))
		return
	}
	raw, err := stream.GetMsg(gctx, adv.StreamSeq)
	if err != nil {
		log.Error("max deliveries reached but the event cannot be read; it stays in the stream", zap.Error(err))
		return
	}
	env, _ := events.Decode(raw.Data)
	dl := events.DeadLetter{
		EventID: env.ID, EventType: env.Type, Source: env.Source, Subject: raw.Subject, StreamSequence: adv.StreamSeq,
		MsgID: raw.Header.Get(jetstream.MsgIDHeader), ErrorClass: events.Transient, Deliveries: adv.Deliveries,
		Reason:         fmt.Sprintf("no delivery of %d finished: the worker stopped or timed out during every attempt", adv.Deliveries),
		DeadLetteredAt: time.Now().UTC(),
	}
	if src, t, ok := events.ParseInboundSubject(raw.Subject); ok && (dl.Source == "" || dl.EventType == "") {
		dl.Source, dl.EventType = src, t
	}
	if json.Valid(raw.Data) {
		dl.Event = raw.Data
	} else {
		dl.Raw = raw.Data
	}
	var ops []events.Operation
	if env.ID != "" {
		ops, _ = Route(env, w.cat)
	}
	for _, op := range ops {
		dl.Operations = append(dl.Operations, op.Key)
		if rec, err := LoadRecord(gctx, w.kv, op.Key); err == nil {
			dl.Attempts = append(dl.Attempts, rec.Attempts...)
		}
	}
	body, _ := json.Marshal(dl)
	if _, err := w.js.Publish(gctx, events.DeadLetterSubject(dl.Source, dl.EventType), body,
		jetstream.WithMsgID("dlq:"+strconv.FormatUint(adv.StreamSeq, 10)+":max-deliveries")); err != nil {
		w.m.publishFailures.Inc()
		log.Error("could not dead-letter an abandoned event; it stays in the events stream", zap.Error(err))
		return
	}
	reason := events.AsTransient(fmt.Errorf("%s", dl.Reason), 0)
	if len(ops) == 0 {
		ops = []events.Operation{{Key: "stream:" + EventsStream + ":" + strconv.FormatUint(adv.StreamSeq, 10)}}
		if env.ID == "" {
			env.ID, env.Source = ops[0].Key, dl.Source
		}
	}
	for _, op := range ops {
		w.publishResult(events.OutcomeDeadLettered, env, op, resultFields{attempt: int(adv.Deliveries), err: reason, seq: adv.StreamSeq})
	}
	w.m.processed.WithLabelValues(typeLabel(env.Type), "dead_lettered").Inc()
	log.Warn("event abandoned after max deliveries; dead-lettered", zap.String("event_id", env.ID))
}
