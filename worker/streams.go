package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
)

// Names of the JetStream objects the worker owns.
const (
	EventsStream     = "WHMCS_EVENTS"
	ResultsStream    = "HOOKWORKER_RESULTS"
	DeadLetterStream = "HOOKWORKER_DLQ"
	RecordsBucket    = "hookworker_ops"
)

// Setup ensures, idempotently, the events, results and dead-letter streams,
// the durable pull consumer and the idempotency bucket, creating what is
// missing and updating what differs. Every worker replica may call it at
// start.
func Setup(ctx context.Context, js jetstream.JetStream, o Options) (jetstream.Consumer, jetstream.KeyValue, error) {
	o.defaults()
	streams := []jetstream.StreamConfig{
		{
			Name: EventsStream, Description: "WHMCS events published by the hookworker hooks",
			Subjects: []string{events.InboundWildcard}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: o.DuplicateWindow, MaxAge: o.EventsMaxAge, Replicas: o.StreamReplicas, Discard: jetstream.DiscardOld,
		},
		{
			Name: ResultsStream, Description: "hookworker result events: one per operation outcome",
			Subjects: []string{events.ResultsWildcard}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: 2 * time.Minute, MaxAge: o.ResultsMaxAge, Replicas: o.StreamReplicas,
		},
		{
			Name: DeadLetterStream, Description: "events that could not be provisioned; inspect and replay with `hookworker dlq`",
			Subjects: []string{events.DeadLetterWildcard}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: 2 * time.Minute, Replicas: o.StreamReplicas,
		},
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable: o.ConsumerName, Description: "hookworker provisioning workers (all replicas share it)",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: o.AckWait, MaxDeliver: o.MaxDeliver,
		MaxAckPending: o.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: events.InboundWildcard, MaxRequestBatch: max(o.Concurrency, 1) * 4,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ensure consumer %s on %s: %w", o.ConsumerName, EventsStream, err)
	}
	kvCfg := jetstream.KeyValueConfig{Bucket: RecordsBucket, Description: "hookworker operation records (idempotency)",
		History: 1, TTL: o.RecordTTL, Storage: jetstream.FileStorage, Replicas: o.StreamReplicas}
	kv, err := js.CreateOrUpdateKeyValue(ctx, kvCfg)
	if err != nil {
		return nil, nil, fmt.Errorf("ensure key-value bucket %s: %w", RecordsBucket, err)
	}
	return cons, kv, nil
}

// isNotFound reports a JetStream "no such message / key" answer.
func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrMsgNotFound)
}
