package worker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// Reservations is providers.Reservations kept in a JetStream key-value
// bucket, shared by every worker replica and kept across restarts: a
// renewal planned on one replica is seen by a renewal of the same order
// planned on another, a Comet username chosen by a signup on one replica is
// not chosen by a signup on another.
//
// The claims under one name are one JSON value under ReservationKey(name).
// Every change is a kv.Create or kv.Update at the revision just read:
// compare-and-set is the only arbiter, a lost race is read again and
// decided again, so two replicas never both see a name free. When the last
// claim goes, an empty list is written, never a kv.Delete: kv.Create of a
// key whose last entry is a delete marker writes over the marker at
// whatever revision it finds then, not the one read, so a claim taken and
// released (deleted again) by another replica between a read and a Create
// would go unnoticed, and the Create would land a decision made without it
// (TestReserveDecidesAgainWhenAClaimCameAndWentMeanwhile). Keys deleted by
// earlier versions are written over once that way; from then on they stay.
//
// A claim of another holder counts (is passed to decide and kept) while
//   - its holder's last Reserve is less than the lease ago, or
//   - its holder's operation record (RecordKey(holder), in the same bucket)
//     exists, is not done, and was written less than the lease ago: every
//     delivery of the operation writes it, so an operation still being
//     retried keeps its claims however long its retries take.
//
// A claim whose operation is recorded done is dropped at once (its effect
// exists, so the provider sees it), and so is one whose holder crashed and
// whose operation has not been delivered for a lease (dead-lettered, or
// gone with its event): a crashed holder never blocks a name for good.
//
// Reserve calls decide between its read of the claims and its write, and
// the write succeeds only if the claims have not changed since the read.
// What decide weighs besides the claims (the provider's state) must
// therefore be read inside decide, after the claims: read before them, it
// can predate an effect whose claim was released in between, and the
// claims then show neither. Both halves failed once for CodeGuard's
// renewals (found by scripts/chaos: two renewals of one order planned from
// one expiry on two replicas): its Prepare read the order's expiry before
// the claims; and once it read the expiry in decide, the delete of a last
// claim let a Create through over a claim that came and went meanwhile
// (now never deleted, see above). Neither the lease nor the reads
// were the cause: the lease outlasts any wait between deliveries (an hour
// at least), and a stale read (a follower's direct get on a clustered
// bucket, a read just after a nats-server restart) fails the
// compare-and-set and is read again; a stale holder's record can only make
// its claim count longer (a record never leaves done).
type Reservations struct {
	kv    jetstream.KeyValue
	lease time.Duration
}

// NewReservations returns reservations kept in kv (the worker uses its
// records bucket, RecordsBucket), whose claims last lease after the last
// sign of their operation (see Reservations).
func NewReservations(kv jetstream.KeyValue, lease time.Duration) *Reservations {
	return &Reservations{kv: kv, lease: lease}
}

// ReservationKey is the bucket key of a reservation name: "res." and the
// name base64url-encoded (bucket keys allow only [-/_=.a-zA-Z0-9]; a Comet
// username may be an e-mail address).
func ReservationKey(name string) string {
	return "res." + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// reservationLease is how long a claim outlives the last sign of its
// operation: well past the longest wait between two deliveries of one
// event, so a claim never lapses while its operation is still retried.
func reservationLease(o Options) time.Duration {
	return max(time.Hour, 2*(o.RetryMax+o.AckWait+o.AttemptBudget))
}

// storedClaims is the JSON value under a reservation key.
type storedClaims struct {
	Name   string        `json:"name"`
	Claims []storedClaim `json:"claims"`
}

type storedClaim struct {
	Holder  string    `json:"holder"`
	Value   string    `json:"value"`
	Touched time.Time `json:"touched"`
}

// casRounds bounds the read-decide-write rounds of one call.
const casRounds = 16

// Reserve implements providers.Reservations. decide may run more than
// once (once per compare-and-set round), each time after a fresh read of
// the claims; anything else it decides on should be read in it (see
// Reservations). Errors reaching the bucket are transient; decide's errors
// are returned unchanged.
func (r *Reservations) Reserve(ctx context.Context, name, holder string, decide func([]providers.Claim) (string, error)) (string, error) {
	key := ReservationKey(name)
	for range casRounds {
		cur, rev, err := r.read(ctx, key)
		if err != nil {
			return "", err
		}
		now := time.Now().UTC()
		var mine *storedClaim
		var keep []storedClaim
		var others []providers.Claim
		for _, c := range cur.Claims {
			if c.Holder == holder {
				mine = &c
				continue
			}
			alive, err := r.alive(ctx, c, now)
			if err != nil {
				return "", err
			}
			if alive {
				keep = append(keep, c)
				others = append(others, providers.Claim{Holder: c.Holder, Value: c.Value})
			}
		}
		var v string
		if mine != nil {
			v = mine.Value
		} else if v, err = decide(others); err != nil {
			return "", err
		}
		keep = append(keep, storedClaim{Holder: holder, Value: v, Touched: now})
		ok, err := r.write(ctx, key, name, rev, keep)
		if err != nil {
			return "", err
		}
		if ok {
			return v, nil
		}
	}
	return "", events.AsTransient(fmt.Errorf("reservation %q keeps changing under us", name), time.Second)
}

// Release implements providers.Reservations; it also drops the claims
// that no longer count. Errors reaching the bucket are transient.
func (r *Reservations) Release(ctx context.Context, name, holder string) error {
	key := ReservationKey(name)
	for range casRounds {
		cur, rev, err := r.read(ctx, key)
		if err != nil || rev == 0 {
			return err
		}
		now := time.Now().UTC()
		var keep []storedClaim
		held := false
		for _, c := range cur.Claims {
			if c.Holder == holder {
				held = true
				continue
			}
			alive, err := r.alive(ctx, c, now)
			if err != nil {
				return err
			}
			if alive {
				keep = append(keep, c)
			}
		}
		if !held && len(keep) == len(cur.Claims) {
			return nil
		}
		ok, err := r.write(ctx, key, name, rev, keep)
		if err != nil || ok {
			return err
		}
	}
	return events.AsTransient(fmt.Errorf("reservation %q keeps changing under us", name), time.Second)
}

// read returns the claims under key and their revision (0: none).
func (r *Reservations) read(ctx context.Context, key string) (storedClaims, uint64, error) {
	entry, err := r.kv.Get(ctx, key)
	if isNotFound(err) {
		return storedClaims{}, 0, nil
	}
	if err != nil {
		return storedClaims{}, 0, events.AsTransient(fmt.Errorf("read reservation %s: %w", key, err), 0)
	}
	var cur storedClaims
	if err := json.Unmarshal(entry.Value(), &cur); err != nil {
		// Unreadable claims protect nothing: they are replaced.
		return storedClaims{}, entry.Revision(), nil
	}
	return cur, entry.Revision(), nil
}

// write stores claims under key over revision rev (creating the key when
// rev is 0; an empty list when no claim is left, see Reservations); false
// when another write came first.
func (r *Reservations) write(ctx context.Context, key, name string, rev uint64, claims []storedClaim) (bool, error) {
	if len(claims) == 0 && rev == 0 {
		return true, nil
	}
	b, err := json.Marshal(storedClaims{Name: name, Claims: append([]storedClaim{}, claims...)})
	if err != nil {
		return false, err
	}
	if rev == 0 {
		_, err = r.kv.Create(ctx, key, b)
	} else {
		_, err = r.kv.Update(ctx, key, b, rev)
	}
	switch {
	case err == nil:
		return true, nil
	case casConflict(err):
		return false, nil
	}
	return false, events.AsTransient(fmt.Errorf("write reservation %s: %w", key, err), 0)
}

// alive reports whether another holder's claim still counts (see
// Reservations).
func (r *Reservations) alive(ctx context.Context, c storedClaim, now time.Time) (bool, error) {
	rec, err := LoadRecord(ctx, r.kv, c.Holder)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case isNotFound(err), errors.As(err, &syntax), errors.As(err, &typ): // no readable record: only the claim's own lease
		return now.Before(c.Touched.Add(r.lease)), nil
	case err != nil:
		return false, events.AsTransient(fmt.Errorf("read the record of %q, which holds a reservation: %w", c.Holder, err), 0)
	case rec.State == StateDone:
		return false, nil
	}
	return now.Before(c.Touched.Add(r.lease)) || now.Before(rec.Updated.Add(r.lease)), nil
}

// casConflict reports a compare-and-set write that lost to another.
func casConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// reservationsUser is a provider that keeps claims replicas must agree on
// (codeguard, comet).
type reservationsUser interface {
	UseReservations(providers.Reservations)
}

// shareReservations hands every provider that keeps claims, or that wraps
// one (Unwrap() Provider), the reservations kept in kv. Setup calls it, so
// every replica's providers share one store.
func (w *Worker) shareReservations(kv jetstream.KeyValue) {
	r := NewReservations(kv, reservationLease(w.opts))
	for _, p := range w.providers {
		for p != nil {
			if u, ok := p.(reservationsUser); ok {
				u.UseReservations(r)
				break
			}
			uw, ok := p.(interface{ Unwrap() Provider })
			if !ok {
				break
			}
			p = uw.Unwrap()
		}
	}
}

// LedgerKey is the bucket key of a ledger name (providers.Ledger): "led."
// and the name base64url-encoded.
func LedgerKey(name string) string {
	return "led." + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// storedNotes is the JSON value under a ledger key.
type storedNotes struct {
	Name  string            `json:"name"`
	Notes []providers.Claim `json:"notes"`
}

// Notes implements providers.Ledger: the notes under name, oldest first,
// kept in the same bucket as the claims (so for the bucket's TTL after the
// last note, HOOKWORKER_RECORD_TTL), never judged gone. Errors reaching the
// bucket are transient.
func (r *Reservations) Notes(ctx context.Context, name string) ([]providers.Claim, error) {
	n, _, err := r.readNotes(ctx, LedgerKey(name))
	return n.Notes, err
}

// Note implements providers.Ledger with compare-and-set, like Reserve.
func (r *Reservations) Note(ctx context.Context, name, holder string, decide func([]providers.Claim) (string, error)) (string, error) {
	key := LedgerKey(name)
	for range casRounds {
		cur, rev, err := r.readNotes(ctx, key)
		if err != nil {
			return "", err
		}
		v, err := decide(cur.Notes)
		if err != nil {
			return "", err
		}
		b, err := json.Marshal(storedNotes{Name: name, Notes: providers.SetNote(cur.Notes, holder, v)})
		if err != nil {
			return "", err
		}
		if rev == 0 {
			_, err = r.kv.Create(ctx, key, b)
		} else {
			_, err = r.kv.Update(ctx, key, b, rev)
		}
		switch {
		case err == nil:
			return v, nil
		case !casConflict(err):
			return "", events.AsTransient(fmt.Errorf("write ledger %s: %w", key, err), 0)
		}
	}
	return "", events.AsTransient(fmt.Errorf("ledger %q keeps changing under us", name), time.Second)
}

func (r *Reservations) readNotes(ctx context.Context, key string) (storedNotes, uint64, error) {
	entry, err := r.kv.Get(ctx, key)
	if isNotFound(err) {
		return storedNotes{}, 0, nil
	}
	if err != nil {
		return storedNotes{}, 0, events.AsTransient(fmt.Errorf("read ledger %s: %w", key, err), 0)
	}
	var cur storedNotes
	if err := json.Unmarshal(entry.Value(), &cur); err != nil {
		// Unlike claims, notes protect a paid renewal: never overwrite
		// what cannot be read.
		return storedNotes{}, 0, events.AsTransient(fmt.Errorf("ledger %s is unreadable: %w", key, err), 0)
	}
	return cur, entry.Revision(), nil
}

// abandoner is a provider that holds claims for an operation until it ends
// (CodeGuard's place in an order's chain of renewals).
type abandoner interface {
	Abandon(ctx context.Context, op events.Operation)
}

// abandon tells the providers of operations being dead-lettered, so their
// claims stop holding later operations back now, not a lease later. A
// replay claims again.
func (w *Worker) abandon(ctx context.Context, failed []failure) {
	for _, f := range failed {
		p := Provider(w.providers[f.op.Provider])
		for p != nil {
			if a, ok := p.(abandoner); ok {
				op := f.op
				if op.Plan == nil {
					op.Plan = f.rec.Plan
				}
				a.Abandon(ctx, op)
				break
			}
			uw, ok := p.(interface{ Unwrap() Provider })
			if !ok {
				break
			}
			p = uw.Unwrap()
		}
	}
}
