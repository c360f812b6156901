package codeguard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// The renewals of an order, as every replica sees them.
//
// An order's chain (Reservations, renewalsOf) holds the renewals planned
// and not yet confirmed, each with the end time it starts from and the one
// it must leave, so that a renewal planned meanwhile starts where they end.
// A renewal leaves the chain when it is confirmed, fails for good, or is
// dead-lettered (Abandon).
//
// An order's ledger (providers.Ledger, ledgerOf) keeps, for much longer,
// what was sent to renew.json and what was confirmed: "sent <at> <end>" is
// written before the call (at: the end time read just before it, end: at
// plus the renewal's months), "confirmed <at> <end>" once the renewal is
// known to be in place (end: the end time read after it). Two renewals
// never both take effect from one end time, so at most one confirmed
// renewal starts at any end time; a renewal whose confirmed start another
// renewal already holds did not take effect.
//
// Whether a renewal is in place (place) is decided by its own note first:
//   - confirmed: in place;
//   - sent at T, and another renewal is confirmed from T (its start within
//     the slack of T, short of T + months): this one did not take effect
//     (the other one moved the end time from T); it is planned again;
//   - sent at T, and the end time has reached T + months: in place (a reply
//     lost, a worker killed after the call, a delivery that ran out and was
//     dead-lettered after the renewal went through), confirmed now;
//   - sent, end time short of T + months: not applied; sent again when due.
//
// Without a note (never sent), the renewal takes its place in the chain
// again if it lost it (a replay of a dead-lettered or failed renewal, long
// after later renewals of the order took effect): it is planned afresh
// from today's end time and the live chain, and renews exactly once. A
// renewal still in the chain keeps its plan, and an end time past its
// expected one counts as its own (the guard of renewals sent before the
// ledger existed) unless another renewal is noted as sent from the end
// time it starts at: then two renewals were planned from one end time and
// the other one moved it, so this one is planned again. That happened
// (scripts/chaos) while a plan was made from an expiry read before the
// chain's claims: another replica's renewal took effect and released its
// claim in between. Plans are now made from an expiry read after the
// claims (planFrom); this check stays as a safety net.
//
// What remains: a renewal made outside hookworker (the reseller panel,
// LogicBoxes' own auto-renew) while a renewal's outcome is unknown is
// taken for that renewal, as before the ledger; and a renewal that
// LogicBoxes applies only after hookworker re-read the end time and saw it
// not applied can be sent once more.

// ledgerOf names an order's ledger.
func ledgerOf(orderID int64) string { return "codeguard.renewed." + itoa(orderID) }

// renewalNote is one renewal's ledger note.
type renewalNote struct {
	confirmed bool
	at, end   int64
}

func (n renewalNote) String() string {
	kind := "sent"
	if n.confirmed {
		kind = "confirmed"
	}
	return fmt.Sprintf("%s %d %d", kind, n.at, n.end)
}

func parseNote(v string) (renewalNote, bool) {
	f := strings.Fields(v)
	if len(f) != 3 || (f[0] != "sent" && f[0] != "confirmed") {
		return renewalNote{}, false
	}
	at, err1 := strconv.ParseInt(f[1], 10, 64)
	end, err2 := strconv.ParseInt(f[2], 10, 64)
	return renewalNote{confirmed: f[0] == "confirmed", at: at, end: end}, err1 == nil && err2 == nil
}

// noteOf returns holder's note among notes.
func noteOf(notes []providers.Claim, holder string) (renewalNote, bool) {
	for _, c := range notes {
		if c.Holder == holder {
			return parseNote(c.Value)
		}
	}
	return renewalNote{}, false
}

// confirmedFrom returns another holder confirmed from where n started
// (its start within slack of n.at, short of n's end): then n did not
// take effect.
func confirmedFrom(notes []providers.Claim, holder string, n renewalNote, slack int64) (string, bool) {
	for _, c := range notes {
		o, ok := parseNote(c.Value)
		if c.Holder != holder && ok && o.confirmed && o.at >= n.at-slack && o.at < n.end-slack {
			return c.Holder, true
		}
	}
	return "", false
}

// sentFrom returns another holder noted (sent or confirmed) from where n
// starts (its start within slack of n.at, short of n's end).
func sentFrom(notes []providers.Claim, holder string, n renewalNote, slack int64) (string, bool) {
	for _, c := range notes {
		o, ok := parseNote(c.Value)
		if c.Holder != holder && ok && o.at >= n.at-slack && o.at < n.end-slack {
			return c.Holder, true
		}
	}
	return "", false
}

// errTakenElsewhere: while confirming a renewal, another one was found
// confirmed from the same start.
var errTakenElsewhere = errors.New("another renewal is confirmed from the same end time")

func (p *Provider) ledger() providers.Ledger {
	if l, ok := p.reservations().(providers.Ledger); ok {
		return l
	}
	return p.memory
}

// note sets the renewal's note in its order's ledger.
func (p *Provider) note(ctx context.Context, orderID int64, opKey string, decide func([]providers.Claim) (string, error)) error {
	_, err := p.ledger().Note(ctx, ledgerOf(orderID), opKey, decide)
	return err
}

// forgetNote removes a renewal's note (it did not take effect); a failure
// is logged: the note then says "sent", which place attributes by the end
// time.
func (p *Provider) forgetNote(ctx context.Context, orderID int64, opKey string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
	defer cancel()
	if err := p.note(rctx, orderID, opKey, func([]providers.Claim) (string, error) { return "", nil }); err != nil {
		p.log.Warn("codeguard: could not remove the note of a renewal that was not applied", zap.Int64("order_id", orderID),
			zap.String("op_key", opKey), zap.Error(err))
	}
}

// chainValue is the claim of a renewal of months planned now: it starts at
// the order's end time, or where the last renewal still in the chain ends.
func chainValue(endtime int64, months int, others []providers.Claim) string {
	before := endtime
	for _, c := range others {
		if _, exp, ok := parseClaim(c.Value); ok {
			before = max(before, exp)
		}
	}
	return fmt.Sprintf("%d %d", before, addMonths(before, months))
}

// place returns the plan the renewal follows now (its place in the
// order's chain, taken again if it was lost) and whether it is in place
// already, given the order's details d (see the comment at the top of
// this file). Errors reaching the ledger or the chain are transient.
//
// When the renewal is planned again, its plan starts from the expiry read
// after the chain's claims (planFrom), and d is updated to that reading.
func (p *Provider) place(ctx context.Context, op events.Operation, rp renewalPlan, d *OrderDetails, months int) (renewalPlan, bool, error) {
	notes, err := p.ledger().Notes(ctx, ledgerOf(rp.orderID))
	if err != nil {
		return rp, false, fmt.Errorf("codeguard renew order %d: reading the renewals sent: %w", rp.orderID, err)
	}
	mine, sent := noteOf(notes, op.Key)
	slack := renewalSlack(months)
	switch {
	case sent && mine.confirmed:
		return rp, true, nil
	case sent:
		if other, ok := confirmedFrom(notes, op.Key, mine, slack); ok {
			p.log.Info("codeguard renewal sent earlier did not take effect: another renewal is confirmed from the same end time; planning it again",
				zap.Int64("order_id", rp.orderID), zap.String("op_key", op.Key), zap.String("confirmed", other), zap.Int64("sent_at", mine.at))
			p.forgetNote(ctx, rp.orderID, op.Key)
			p.confirmed(ctx, rp.orderID, op.Key) // its old place in the chain is stale
			sent = false
			break
		}
		if d.EndTime < mine.end-slack {
			break // not applied
		}
		conf := renewalNote{confirmed: true, at: mine.at, end: d.EndTime}
		err := p.note(ctx, rp.orderID, op.Key, func(now []providers.Claim) (string, error) {
			if _, ok := confirmedFrom(now, op.Key, mine, slack); ok {
				return "", errTakenElsewhere
			}
			return conf.String(), nil
		})
		switch {
		case err == nil:
			return rp, true, nil
		case errors.Is(err, errTakenElsewhere):
			return rp, false, events.AsTransient(fmt.Errorf("codeguard renew order %d: %w; looking again", rp.orderID, err), 0)
		}
		return rp, false, fmt.Errorf("codeguard renew order %d: noting the renewal confirmed: %w", rp.orderID, err)
	}
	for round := 0; ; round++ {
		replanned := false
		plan := p.planFrom(ctx, rp.orderID, months, d)
		v, err := p.reservations().Reserve(ctx, renewalsOf(rp.orderID), op.Key, func(others []providers.Claim) (string, error) {
			replanned = true
			return plan(others)
		})
		if err != nil {
			return rp, false, fmt.Errorf("codeguard renew order %d: taking its place among the order's renewals: %w", rp.orderID, err)
		}
		before, expected, ok := parseClaim(v)
		if !ok {
			return rp, false, events.Permanentf("codeguard renew order %d: the claim holds %q, not two end times", rp.orderID, v)
		}
		if replanned {
			p.log.Info("codeguard renewal planned again from the order's end time and the renewals in flight",
				zap.Int64("order_id", rp.orderID), zap.String("op_key", op.Key), zap.Int64("endtime", d.EndTime),
				zap.Int64("recorded_endtime_before", rp.before), zap.Int64("endtime_before", before), zap.Int64("endtime_expected", expected))
		}
		rp.before, rp.expected = before, expected
		if replanned || sent || !rp.reached(d.EndTime) {
			return rp, false, nil
		}
		// Still in the chain, never noted as sent, and the end time has
		// reached the one it expects. When another renewal was sent from
		// the same end time, that one moved it (two renewals planned from
		// one end time, as when plans were made from an expiry read before
		// the claims; see planFrom): this one did not take effect and is
		// planned again.
		if other, ok := sentFrom(notes, op.Key, renewalNote{at: before, end: expected}, slack); ok && round == 0 {
			p.log.Info("codeguard renewal never sent, and another renewal was sent from the end time it starts at: it did not take effect; planning it again",
				zap.Int64("order_id", rp.orderID), zap.String("op_key", op.Key), zap.String("sent", other), zap.Int64("endtime_before", before))
			p.confirmed(ctx, rp.orderID, op.Key) // its place in the chain is stale
			continue
		}
		// Otherwise a renewal sent before the ledger existed: the end time
		// it expects counts as its own.
		_ = p.note(ctx, rp.orderID, op.Key, func([]providers.Claim) (string, error) {
			return renewalNote{confirmed: true, at: rp.before, end: d.EndTime}.String(), nil
		})
		return rp, true, nil
	}
}

// Abandon is called by the worker when op is dead-lettered: a renewal
// leaves its order's chain at once, so later renewals of the order no
// longer wait for it (they would for a lease otherwise). Its ledger note
// stays: a replay re-takes its place, and the note tells whether the
// renewal went through before it was dead-lettered. Other actions hold
// nothing.
func (p *Provider) Abandon(ctx context.Context, op events.Operation) {
	if op.Action != events.Renew {
		return
	}
	if id, err := strconv.ParseInt(op.Plan[PlanOrderID], 10, 64); err == nil && id > 0 {
		p.confirmed(ctx, id, op.Key)
	}
}
