package worker

import (
	"fmt"
	"time"
)

// Options tune the worker; every field is read from the environment with
// the HOOKWORKER_ prefix (see `hookworker help`).
type Options struct {
	Concurrency     int           `envconfig:"CONCURRENCY" default:"8" desc:"provider calls this worker makes at once (records and results of more events are written meanwhile: see PREFETCH)"`
	AckWait         time.Duration `envconfig:"ACK_WAIT" default:"30s" desc:"time JetStream waits for an ack before redelivering; the worker sends in-progress signals during long provider calls"`
	MaxAckPending   int           `envconfig:"MAX_ACK_PENDING" default:"0" desc:"most unacknowledged events across all replicas (0 = 4 x CONCURRENCY)"`
	Prefetch        int           `envconfig:"PREFETCH" default:"0" desc:"events this worker has in hand at once: at a provider, writing their records and results, or waiting for a provider slot (0 = 4 x CONCURRENCY up to 256; at least CONCURRENCY, at most MAX_ACK_PENDING)"`
	MaxDeliver      int           `envconfig:"MAX_DELIVER" default:"30" desc:"deliveries of an event before it is dead-lettered (with the retry defaults: about 6 hours of retries); the consumer allows one more, only to dead-letter an event whose last delivery never finished"`
	RetryBase       time.Duration `envconfig:"RETRY_BASE" default:"5s" desc:"redelivery delay after the first failed delivery; doubles each delivery"`
	RetryMax        time.Duration `envconfig:"RETRY_MAX" default:"15m" desc:"longest redelivery delay"`
	AttemptBudget   time.Duration `envconfig:"ATTEMPT_BUDGET" default:"20s" desc:"time one delivery may spend on in-process retries of transient errors"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s" desc:"time in-flight work may take to finish on SIGTERM before it is nak'ed"`
	StreamReplicas  int           `envconfig:"STREAM_REPLICAS" default:"1" desc:"replicas of every stream and the idempotency bucket (3 on a NATS cluster)"`
	DuplicateWindow time.Duration `envconfig:"DUPLICATE_WINDOW" default:"5m" desc:"JetStream de-duplication window of the events stream (Nats-Msg-Id)"`
	EventsMaxAge    time.Duration `envconfig:"EVENTS_MAX_AGE" default:"168h" desc:"how long events are kept in the events stream"`
	ResultsMaxAge   time.Duration `envconfig:"RESULTS_MAX_AGE" default:"720h" desc:"how long result events are kept"`
	RecordTTL       time.Duration `envconfig:"RECORD_TTL" default:"2160h" desc:"how long an operation's idempotency record is kept"`
	LeaseTime       time.Duration `envconfig:"LEASE" default:"0" desc:"how long an operation in flight is reserved for one worker (0 = ACK_WAIT x 2)"`
	StatsInterval   time.Duration `envconfig:"STATS_INTERVAL" default:"5s" desc:"how often queue depth and dead letters are read for metrics"`
	ProviderCheck   time.Duration `envconfig:"PROVIDER_CHECK_INTERVAL" default:"60s" desc:"how often each provider's connectivity is checked for metrics (0 = never)"`
	ConsumerName    string        `envconfig:"CONSUMER" default:"hookworker" desc:"durable consumer name shared by all worker replicas"`
	FetchWait       time.Duration `envconfig:"FETCH_WAIT" default:"1s" desc:"longest wait of one pull request"`
	InstanceID      string        `envconfig:"INSTANCE_ID" desc:"this replica's name in operation records (default: host name and pid)"`
}

func (o *Options) defaults() {
	if o.MaxAckPending == 0 {
		o.MaxAckPending = 4 * o.Concurrency
	}
	if o.Prefetch == 0 {
		// Enough events in hand that the round trips of their records and
		// results overlap the provider calls; more buys no speed, only memory.
		o.Prefetch = min(4*o.Concurrency, 256)
	}
	// At least one event per provider slot; never more than the server lets
	// this worker hold, nor than one pull may ask for (the consumer's
	// MaxRequestBatch is 4 x CONCURRENCY).
	o.Prefetch = min(max(o.Prefetch, o.Concurrency), o.MaxAckPending, 4*o.Concurrency)
	if o.LeaseTime == 0 {
		o.LeaseTime = 2 * o.AckWait
	}
}

// EventsInHand is how many events a worker with these options holds at
// once, each with its own goroutine: PREFETCH after its default and bounds.
func (o Options) EventsInHand() int {
	o.defaults()
	return o.Prefetch
}

// DefaultOptions returns the options `hookworker run` uses when nothing is
// set.
func DefaultOptions() Options {
	o := Options{Concurrency: 8, AckWait: 30 * time.Second, MaxDeliver: 30, RetryBase: 5 * time.Second,
		RetryMax: 15 * time.Minute, AttemptBudget: 20 * time.Second, ShutdownTimeout: 30 * time.Second,
		StreamReplicas: 1, DuplicateWindow: 5 * time.Minute, EventsMaxAge: 7 * 24 * time.Hour,
		ResultsMaxAge: 30 * 24 * time.Hour, RecordTTL: 90 * 24 * time.Hour, StatsInterval: 5 * time.Second,
		ProviderCheck: time.Minute, ConsumerName: "hookworker", FetchWait: time.Second}
	return o // MaxAckPending and LeaseTime stay 0: derived from the other fields in New
}

// Validate checks the options; each error names the environment variable.
func (o Options) Validate() error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > 1024:
		return fmt.Errorf("HOOKWORKER_CONCURRENCY: want 1 to 1024, got %d", o.Concurrency)
	case o.AckWait < time.Second:
		return fmt.Errorf("HOOKWORKER_ACK_WAIT: want at least 1s, got %s", o.AckWait)
	case o.MaxAckPending != 0 && o.MaxAckPending < o.Concurrency:
		return fmt.Errorf("HOOKWORKER_MAX_ACK_PENDING: must be at least HOOKWORKER_CONCURRENCY (%d), got %d", o.Concurrency, o.MaxAckPending)
	case o.Prefetch < 0:
		return fmt.Errorf("HOOKWORKER_PREFETCH: must not be negative, got %d", o.Prefetch)
	case o.MaxDeliver < 1:
		return fmt.Errorf("HOOKWORKER_MAX_DELIVER: want at least 1, got %d", o.MaxDeliver)
	case o.RetryBase <= 0:
		return fmt.Errorf("HOOKWORKER_RETRY_BASE: must be positive, got %s", o.RetryBase)
	case o.RetryMax < o.RetryBase:
		return fmt.Errorf("HOOKWORKER_RETRY_MAX: must be at least HOOKWORKER_RETRY_BASE (%s), got %s", o.RetryBase, o.RetryMax)
	case o.AttemptBudget < 0 || o.AttemptBudget >= o.AckWait*10:
		return fmt.Errorf("HOOKWORKER_ATTEMPT_BUDGET: want 0 to 10 x HOOKWORKER_ACK_WAIT, got %s", o.AttemptBudget)
	case o.ShutdownTimeout <= 0:
		return fmt.Errorf("HOOKWORKER_SHUTDOWN_TIMEOUT: must be positive, got %s", o.ShutdownTimeout)
	case o.StreamReplicas != 1 && o.StreamReplicas != 3 && o.StreamReplicas != 5:
		return fmt.Errorf("HOOKWORKER_STREAM_REPLICAS: want 1, 3 or 5, got %d", o.StreamReplicas)
	case o.DuplicateWindow < 100*time.Millisecond || o.DuplicateWindow > o.EventsMaxAge:
		return fmt.Errorf("HOOKWORKER_DUPLICATE_WINDOW: want 100ms up to HOOKWORKER_EVENTS_MAX_AGE, got %s", o.DuplicateWindow)
	case o.RecordTTL < o.DuplicateWindow:
		return fmt.Errorf("HOOKWORKER_RECORD_TTL: must be at least HOOKWORKER_DUPLICATE_WINDOW, got %s", o.RecordTTL)
	case o.StatsInterval <= 0:
		return fmt.Errorf("HOOKWORKER_STATS_INTERVAL: must be positive, got %s", o.StatsInterval)
	case o.ProviderCheck < 0:
		return fmt.Errorf("HOOKWORKER_PROVIDER_CHECK_INTERVAL: must not be negative, got %s", o.ProviderCheck)
	case o.ConsumerName == "":
		return fmt.Errorf("HOOKWORKER_CONSUMER: is required")
	case o.FetchWait < 100*time.Millisecond:
		return fmt.Errorf("HOOKWORKER_FETCH_WAIT: want at least 100ms, got %s", o.FetchWait)
	}
	return nil
}

// redeliveryDelay is the NakWithDelay delay after the given delivery:
// RetryBase doubling per delivery up to RetryMax, or longer when the
// provider asked for it.
func (o Options) redeliveryDelay(delivered uint64, retryAfter time.Duration) time.Duration {
	d := o.RetryBase
	for i := uint64(1); i < delivered && d < o.RetryMax; i++ {
		d *= 2
	}
	return max(min(d, o.RetryMax), retryAfter)
}
