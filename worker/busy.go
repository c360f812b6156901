package worker

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

// maxBusyWaits bounds the leases the last delivery of an event waits out
// for an operation another worker holds: each wait ends with the lease, so
// only a holder that takes the operation again and again (copies of it in
// other events) can exhaust them.
const maxBusyWaits = 3

// claim is claimOp for one delivery of an event. An event is never
// dead-lettered because another replica held one of its operations: a busy
// operation's event is nak'ed until the holder's lease ends (ErrBusy's
// retry-after), and on the last delivery MaxDeliver allows, the delivery
// waits in process for the lease to end instead (the event stays in
// progress meanwhile) and claims again. Only the delivery's own failures
// then decide whether the event is dead-lettered.
func (w *Worker) claim(ctx context.Context, meta *jetstream.MsgMetadata, op *events.Operation, owner string, lease time.Duration,
	prepare func() (map[string]string, error)) (*claim, error) {
	last := meta.NumDelivered >= uint64(w.opts.MaxDeliver)
	for waits := 0; ; waits++ {
		c, err := claimOp(ctx, w.kv, op, owner, lease, meta.NumDelivered > 1 || waits > 0, prepare)
		if !errors.Is(err, ErrBusy) || !last || waits == maxBusyWaits {
			return c, err
		}
		d := events.RetryAfterOf(err)
		w.log.Info("operation held by another worker on this event's last delivery; waiting for its lease to end",
			zap.String("operation", op.Key), zap.Uint64("delivery", meta.NumDelivered), zap.Duration("wait", d), zap.Error(err))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return c, err
		}
	}
}
