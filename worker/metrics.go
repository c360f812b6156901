package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookworker/hookworker/events"
)

// Metrics are the worker's Prometheus metrics. Labels are bounded: event
// types, providers, actions and outcomes, never ids.
type Metrics struct {
	received        *prometheus.CounterVec
	processed       *prometheus.CounterVec
	operations      *prometheus.CounterVec
	providerCall    *prometheus.HistogramVec
	retries         *prometheus.CounterVec
	inFlight        prometheus.Gauge
	slotsInUse      prometheus.Gauge
	eventDuration   *prometheus.HistogramVec
	deadLetters     prometheus.Gauge
	pending         prometheus.Gauge
	ackPending      prometheus.Gauge
	redelivered     prometheus.Gauge
	oldestAge       prometheus.Gauge
	publishFailures prometheus.Counter
	providerUp      *prometheus.GaugeVec
	jetstreamErrors *prometheus.CounterVec
	queueStatusUp   prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and tools).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_events_received_total",
			Help: "Events delivered to the worker, by type (\"invalid\" for malformed messages); redeliveries count again."}, []string{"type"}),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_events_processed_total",
			Help: "Deliveries finished, by type and outcome (succeeded, retry, dead_lettered, duplicate)."}, []string{"type", "outcome"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_operations_total",
			Help: "Operations finished, by provider, action and outcome (succeeded, already_done, retry, dead_lettered)."}, []string{"provider", "action", "outcome"}),
		providerCall: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hookworker_provider_call_duration_seconds",
			Help:    "Duration of one provider call, by provider, action and outcome (ok, transient, permanent).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}}, []string{"provider", "action", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_retries_total",
			Help: "In-process retries of provider calls after a transient error."}, []string{"provider", "action"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_operations_in_flight",
			Help: "Events being processed by this worker now (at most HOOKWORKER_PREFETCH)."}),
		slotsInUse: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_provider_slots_in_use",
			Help: "Provider calls this worker is making now (at most HOOKWORKER_CONCURRENCY): flat at CONCURRENCY means saturated."}),
		eventDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hookworker_event_duration_seconds",
			Help:    "Time from receiving an event to acking, nak'ing or dead-lettering it.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}}, []string{"type"}),
		deadLetters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_dead_letter_messages",
			Help: "Entries in the dead-letter stream waiting for an operator."}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_consumer_pending_messages",
			Help: "Events in the stream not yet delivered to any worker."}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_consumer_ack_pending_messages",
			Help: "Events delivered and not yet acknowledged (in progress or waiting for redelivery)."}),
		redelivered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_consumer_redelivered_messages",
			Help: "Events delivered more than once and not yet acknowledged."}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_oldest_pending_event_age_seconds",
			Help: "Age of the oldest event not yet acknowledged (0 when the queue is empty)."}),
		publishFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookworker_result_publish_failures_total",
			Help: "Result events or dead-letter entries that could not be published (the event is retried)."}),
		providerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookworker_provider_up",
			Help: "1 when the provider's last connectivity check passed, 0 when it failed."}, []string{"provider"}),
		jetstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookworker_jetstream_errors_total",
			Help: "JetStream requests that failed, by operation (fetch, ack, record, queue_status); the events concerned are redelivered."}, []string{"operation"}),
		queueStatusUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hookworker_queue_status_up",
			Help: "1 when the last read of the consumer and streams succeeded, 0 when it failed (the queue gauges are then stale)."}),
	}
	for _, op := range []string{jsFetch, jsAck, jsRecord, jsQueueStatus} {
		m.jetstreamErrors.WithLabelValues(op) // exported at 0 from the start, so rate() sees the first error
	}
	if reg != nil {
		reg.MustRegister(m.received, m.processed, m.operations, m.providerCall, m.retries, m.inFlight, m.slotsInUse,
			m.eventDuration, m.deadLetters, m.pending, m.ackPending, m.redelivered, m.oldestAge,
			m.publishFailures, m.providerUp, m.jetstreamErrors, m.queueStatusUp)
	}
	return m
}

// Values of the operation label of hookworker_jetstream_errors_total.
const (
	jsFetch       = "fetch"        // pulling events
	jsAck         = "ack"          // ack, nak or term of an event
	jsRecord      = "record"       // saving an idempotency record
	jsQueueStatus = "queue_status" // reading consumer and stream info
)

// typeLabel bounds the type label to the known inbound types.
func typeLabel(t events.Type) string {
	if t.IsInbound() {
		return string(t)
	}
	return "invalid"
}
