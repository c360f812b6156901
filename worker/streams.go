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
	// AdvisoryStream keeps JetStream's max-deliveries advisories for the
	// worker consumer, so that an event whose every allowed delivery died
	// with its worker is dead-lettered even when no replica was connected
	// when JetStream gave up on it.
	AdvisoryStream = "HOOKWORKER_ADVISORIES"
	// advisoryConsumer is the durable consumer of AdvisoryStream all
	// replicas share.
	advisoryConsumer = "hookworker-advisories"
)

// maxDeliveriesSubject is where JetStream announces that the consumer
// stopped redelivering a message.
func maxDeliveriesSubject(consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + EventsStream + "." + consumer
}

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
			// One entry per event: every path that dead-letters the message
			// at a stream sequence uses one Nats-Msg-Id, and the window
			// outlasts the ack wait after which the last path (the
			// max-deliveries advisory) can run.
			Subjects: []string{events.DeadLetterWildcard}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
			Duplicates: max(2*time.Minute, 4*o.AckWait), Replicas: o.StreamReplicas,
		},
		{
			Name: AdvisoryStream, Description: "JetStream max-deliveries advisories of the hookworker consumer, until a worker dead-letters their events",
			Subjects: []string{maxDeliveriesSubject(o.ConsumerName)}, Storage: jetstream.FileStorage, Retention: jetstream.WorkQueuePolicy,
			MaxAge: o.EventsMaxAge, Replicas: o.StreamReplicas,
		},
	}
	for _, cfg := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	// MaxDeliver + 1: the worker gives up on delivery MaxDeliver itself
	// (dead-lettering a failure); the extra delivery exists only for an
	// event whose delivery MaxDeliver never finished, and the worker
	// dead-letters it before doing any work (finishUnfinished). Setup updates
	// an existing consumer in place to this.
	//
	// The filter takes every subject of the events stream (whmcs.>), not
	// only whmcs.<instance>.<type>: a message on any other subject must still
	// reach a worker, which dead-letters it because its subject is not
	// exactly InboundSubject(source, type); a narrower filter would leave it
	// in the stream unseen.
	cons, err := js.CreateOrUpdateConsumer(ctx, EventsStream, jetstream.ConsumerConfig{
		Durable: o.ConsumerName, Description: "hookworker provisioning workers (all replicas share it)",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: o.AckWait, MaxDeliver: o.MaxDeliver + 1,
		MaxAckPending: o.MaxAckPending, DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: events.InboundWildcard, MaxRequestBatch: max(o.Concurrency, 1) * 4,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ensure consumer %s on %s: %w", o.ConsumerName, EventsStream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, AdvisoryStream, jetstream.ConsumerConfig{
		Durable: advisoryConsumer, Description: "hookworker replicas dead-lettering events JetStream gave up on",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: o.AckWait, MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
	}); err != nil {
		return nil, nil, fmt.Errorf("ensure consumer %s on %s: %w", advisoryConsumer, AdvisoryStream, err)
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
