package whmcs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

// Timings of Run. Variables so that tests can shorten them.
var (
	// ackWait is the consumer's AckWait; a message being applied is kept
	// alive with InProgress every ackWait/3.
	ackWait = time.Minute
	// Retries inside one delivery (WHMCS blips): exponential from
	// retryInitial, for at most retryMaxElapsed.
	retryInitial    = 250 * time.Millisecond
	retryMaxElapsed = 20 * time.Second
	// After a delivery's retries are used up: NakWithDelay of
	// nakFirst·2^(deliveries-1), at most nakMax (or the Retry-After WHMCS
	// sent, if longer).
	nakFirst = 5 * time.Second
	nakMax   = 5 * time.Minute
	// authNak is the redelivery delay after an authentication failure.
	authNak = time.Minute
	// fetchPause is the pause after a failed fetch.
	fetchPause = time.Second
)

// Run consumes the results stream (every subject under
// hookworker.results.>) with the durable pull consumer
// cfg.WritebackConsumer, created or updated on stream, and applies each
// result with w until ctx ends. It returns nil when ctx ends, and at once
// (logging that) when cfg is disabled; it returns an error when the consumer
// cannot be set up or is deleted.
//
// Per message: a malformed message is terminated. Apply is retried in
// process with exponential backoff for transient errors (retryMaxElapsed);
// on success the message is acked; a transient failure left is nak'ed with a
// growing delay; a permanent failure is terminated (Term) and logged, except
// an authentication failure (ErrAuth), which is the configuration's fault,
// not the message's: it is nak'ed with a delay so that no write-back is lost
// while the credentials or the IP allowlist are fixed. When ctx ends
// mid-message the message is neither acked nor nak'ed: JetStream redelivers
// it after AckWait and the idempotency record makes the retry safe.
//
// The consumer delivers the stream from its start on first creation
// (DeliverAll) and never gives up on a message (MaxDeliver -1): write-backs
// that piled up while WHMCS was down or the write-back was off are applied
// once it is back. Results older than the stream's MaxAge are gone.
func Run(ctx context.Context, js jetstream.JetStream, stream string, w *Writer, cfg Config, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("whmcs_writeback")
	if !cfg.Enabled() {
		log.Info("WHMCS write-back disabled (" + EnvPrefix + "_API_URL is not set)")
		return nil
	}
	if w == nil || js == nil {
		return errors.New("whmcs.Run: nil writer or JetStream")
	}
	name := cfg.WritebackConsumer
	if name == "" {
		name = "hookworker-writeback"
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   "hookworker: WHMCS write-back of result events",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: 256,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: events.ResultsWildcard,
	})
	if err != nil {
		return fmt.Errorf("whmcs write-back: consumer %s on stream %s: %w", name, stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(8))
	if err != nil {
		return fmt.Errorf("whmcs write-back: consume %s: %w", name, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	log.Info("WHMCS write-back running", zap.String("stream", stream), zap.String("consumer", name), zap.Stringer("whmcs", cfg))

	for {
		msg, err := it.Next()
		switch {
		case err == nil:
			w.handle(ctx, msg, log)
			continue
		case ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed):
			log.Info("WHMCS write-back stopped")
			return nil
		case errors.Is(err, jetstream.ErrConsumerDeleted):
			return fmt.Errorf("whmcs write-back: consumer %s: %w", name, err)
		}
		log.Warn("fetching results failed; retrying", zap.Error(err))
		select {
		case <-ctx.Done():
		case <-time.After(fetchPause):
		}
	}
}

// handle applies one delivered result and settles the message.
func (w *Writer) handle(ctx context.Context, msg jetstream.Msg, log *zap.Logger) {
	var delivered uint64 = 1
	log = log.With(zap.String("subject", msg.Subject()))
	if md, err := msg.Metadata(); err == nil {
		delivered = md.NumDelivered
		log = log.With(zap.Uint64("stream_seq", md.Sequence.Stream), zap.Uint64("delivered", delivered))
	}
	env, err := events.Decode(msg.Data())
	if err != nil {
		w.metrics.result("invalid", "permanent_error")
		log.Error("malformed result event; terminating it", zap.Error(err))
		_ = msg.TermWithReason("malformed result event")
		return
	}
	log = log.With(zap.String("result_id", env.ID), zap.String("type", string(env.Type)))

	stopBeat := keepAlive(ctx, msg)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = retryInitial
	b.MaxInterval = retryMaxElapsed / 4
	b.MaxElapsedTime = retryMaxElapsed
	err = backoff.RetryNotify(func() error {
		err := w.Apply(ctx, env)
		if err != nil && events.ClassOf(err) == events.Permanent {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(b, ctx), func(err error, next time.Duration) {
		log.Debug("write-back failed; retrying", zap.Duration("in", next), zap.Error(err))
	})
	stopBeat()

	switch {
	case err == nil:
		if aerr := msg.Ack(); aerr != nil {
			log.Warn("ack failed; the result will be redelivered and found done", zap.Error(aerr))
		}
	case ctx.Err() != nil:
		log.Info("shutting down: result left for redelivery")
	case errors.Is(err, ErrAuth):
		log.Error("WHMCS refused the API credentials; the result will be retried", zap.Duration("in", authNak), zap.Error(err))
		_ = msg.NakWithDelay(authNak)
	case events.ClassOf(err) == events.Permanent:
		log.Error("write-back failed permanently; result terminated", zap.Error(err))
		_ = msg.TermWithReason(clip("whmcs write-back: "+err.Error(), 200))
	default:
		d := nakDelay(delivered, events.RetryAfterOf(err))
		log.Warn("write-back failed; result will be redelivered", zap.Duration("in", d), zap.Error(err))
		_ = msg.NakWithDelay(d)
	}
}

// nakDelay is nakFirst·2^(delivered-1), capped at nakMax, or retryAfter when
// longer (capped at an hour).
func nakDelay(delivered uint64, retryAfter time.Duration) time.Duration {
	d := nakFirst
	for i := uint64(1); i < delivered && d < nakMax; i++ {
		d *= 2
	}
	d = min(d, nakMax)
	return max(d, min(retryAfter, time.Hour))
}

// keepAlive tells JetStream every ackWait/3 that msg is still being worked
// on, until the returned stop is called (stop waits for it to finish, so no
// InProgress races the final ack).
func keepAlive(ctx context.Context, msg jetstream.Msg) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(ackWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}
