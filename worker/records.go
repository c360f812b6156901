package worker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
)

// RecordState is where an operation stands.
type RecordState string

// Operation record states.
const (
	StateInFlight RecordState = "in_flight" // an attempt is running, or a worker died during one
	StateDone     RecordState = "done"      // the effect exists; Result was published
	StateFailed   RecordState = "failed"    // the last attempt failed; a redelivery or replay may try again
)

// Record is an operation's idempotency record, kept in the RecordsBucket
// key-value bucket under RecordKey(op.Key).
type Record struct {
	Key        string            `json:"key"`
	State      RecordState       `json:"state"`
	Operation  events.Operation  `json:"operation"`
	Plan       map[string]string `json:"plan,omitempty"`
	Owner      string            `json:"owner,omitempty"`
	LeaseUntil time.Time         `json:"lease_until,omitempty"`
	Attempts   []events.Attempt  `json:"attempts,omitempty"`
	Outcome    *events.Outcome   `json:"outcome,omitempty"`
	Result     json.RawMessage   `json:"result,omitempty"` // the published provisioning.succeeded event
	// EventID and EventSeq name the event (and its events-stream message)
	// whose delivery produced the effect; Backend says which provider
	// instance wrote it ("sandbox (in process)", "comet at https://…"), so a
	// record written in another mode of the same data directory is explained.
	EventID  string    `json:"event_id,omitempty"`
	EventSeq uint64    `json:"event_seq,omitempty"`
	Backend  string    `json:"backend,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

// RecordKey is the bucket key of an operation key: the key itself,
// base64url-encoded (bucket keys allow only [-/_=.a-zA-Z0-9]).
func RecordKey(opKey string) string {
	return "op." + base64.RawURLEncoding.EncodeToString([]byte(opKey))
}

// ErrBusy means another worker holds a live lease on the operation. The
// error claimOp returns carries the lease's end as its retry-after
// (events.RetryAfterOf), so the event comes back once the lease is over:
// the holder has then finished (and the redelivery is answered from the
// record) or died (and the redelivery takes the operation over).
var ErrBusy = errors.New("operation in progress at another worker")

// busyMargin is added to a busy operation's remaining lease, so that its
// redelivery arrives after the lease has ended, not just before.
const busyMargin = 250 * time.Millisecond

type claim struct {
	rec   Record
	rev   uint64
	prior bool // an earlier attempt existed: look before acting
}

func newOwner(instance string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return instance + "/" + hex.EncodeToString(b)
}

// claimOp reserves the operation for owner. A done record is returned as
// is. A live lease of another owner is ErrBusy (transient). prepare runs
// only when there is no record yet (as far as we know).
//
// The Create of a new record is the claim: on a first delivery (lookFirst
// false) the record is created without reading it first, and read only when
// Create finds one; on a redelivery, where a record is likely, it is read
// first. Either way the outcome is the same; only the round trips differ.
func claimOp(ctx context.Context, kv jetstream.KeyValue, op *events.Operation, owner string, lease time.Duration,
	lookFirst bool, prepare func() (map[string]string, error)) (*claim, error) {
	key := RecordKey(op.Key)
	for range 8 {
		now := time.Now().UTC()
		var entry jetstream.KeyValueEntry
		var err error = jetstream.ErrKeyNotFound
		looked := lookFirst
		if lookFirst {
			entry, err = kv.Get(ctx, key)
		}
		lookFirst = true // after a conflict, always read
		if isNotFound(err) {
			plan, err := prepare()
			if err != nil {
				if !looked {
					continue // a record may answer without the plan: read it before failing
				}
				return nil, err
			}
			c := &claim{rec: Record{Key: op.Key, State: StateInFlight, Operation: recorded(*op), Plan: plan, Owner: owner,
				LeaseUntil: now.Add(lease), Created: now, Updated: now}}
			b, _ := json.Marshal(&c.rec)
			rev, err := kv.Create(ctx, key, b)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue
			}
			if err != nil {
				return nil, events.AsTransient(fmt.Errorf("create record: %w", err), 0)
			}
			c.rev = rev
			return c, nil
		}
		if err != nil {
			return nil, events.AsTransient(fmt.Errorf("read record: %w", err), 0)
		}
		c := &claim{rev: entry.Revision(), prior: true}
		rec := &c.rec
		if err := json.Unmarshal(entry.Value(), rec); err != nil {
			return nil, events.AsTransient(fmt.Errorf("record %s is unreadable: %w", key, err), 0)
		}
		if rec.State == StateDone {
			return c, nil
		}
		if rec.State == StateInFlight && rec.Owner != owner && now.Before(rec.LeaseUntil) {
			// Come back when the lease is over: sooner would only use up a
			// delivery (a killed worker's lease outlives short redelivery
			// delays; see Worker.claim for the last delivery).
			return nil, events.AsTransient(fmt.Errorf("%w (%s, lease until %s)", ErrBusy, rec.Owner, rec.LeaseUntil.Format(time.RFC3339Nano)),
				time.Until(rec.LeaseUntil)+busyMargin)
		}
		rec.State, rec.Owner, rec.LeaseUntil, rec.Updated = StateInFlight, owner, now.Add(lease), now
		rec.Operation = recorded(*op)
		b, _ := json.Marshal(rec)
		rev, err := kv.Update(ctx, key, b, entry.Revision())
		if err != nil {
			if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
				continue
			}
			return nil, events.AsTransient(fmt.Errorf("update record: %w", err), 0)
		}
		c.rev = rev
		return c, nil
	}
	return nil, events.AsTransient(fmt.Errorf("record %s keeps changing under us", key), time.Second)
}

// recorded is the part of an operation its record keeps: what it is and
// whom it is for (the ops page, the dead-letter tools and the request-reply
// answers read these). The client's contact data, the configurable options
// and the catalog settings stay in the event: every attempt gets them from
// the event it runs for, and a record is written twice per operation, so
// copying them would only make each write bigger.
func recorded(op events.Operation) events.Operation {
	op.Client, op.ConfigOpts, op.Settings, op.Plan = nil, nil, nil, nil
	return op
}

// saveRecord writes rec over revision rev. A lost race (someone took the
// operation over after our lease ran out) is reported; the effect itself is
// safe because the next owner looks it up before acting.
func saveRecord(ctx context.Context, kv jetstream.KeyValue, rec Record, rev uint64) (uint64, error) {
	rec.Updated = time.Now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return rev, err
	}
	return kv.Update(ctx, RecordKey(rec.Key), b, rev)
}

// LoadRecord returns the record of an operation key.
func LoadRecord(ctx context.Context, kv jetstream.KeyValue, opKey string) (Record, error) {
	entry, err := kv.Get(ctx, RecordKey(opKey))
	if err != nil {
		return Record{}, err
	}
	var rec Record
	err = json.Unmarshal(entry.Value(), &rec)
	return rec, err
}
