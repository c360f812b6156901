package providers

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Claim is one holder's reservation under a name: Holder is an operation
// key, Value what the holder recorded when it took the claim.
type Claim struct {
	Holder string
	Value  string
}

// Reservations holds the claims every worker replica (and a restarted
// worker) must agree on before it calls a provider: a Comet username chosen
// by a signup whose user does not exist yet, the renewals of a CodeGuard
// order planned but not yet confirmed. The worker gives providers one kept
// in NATS JetStream key-value, with compare-and-set as the arbiter
// (worker.Reservations); MemoryReservations serves one process (tests, the
// library used alone).
//
// A claim is held by an operation key. It lives until its holder releases
// it, or until the implementation judges the holder gone (a lease that ran
// out without a sign of the operation; the operation recorded done), so a
// crashed holder never blocks a name for good.
type Reservations interface {
	// Reserve gives holder a claim under name and returns its value. When
	// holder holds one there already (a retry or a redelivery of the same
	// operation) its value is returned unchanged, decide is not called, and
	// the claim's lease starts again. Otherwise decide gets the live claims
	// of the other holders under name and returns the value to record; an
	// error from decide is returned as is and nothing is recorded. Reading
	// the others and recording the claim are one atomic step for every
	// process sharing the store.
	Reserve(ctx context.Context, name, holder string, decide func(others []Claim) (string, error)) (string, error)
	// Release drops holder's claim under name. Releasing a claim that is
	// not held is not an error.
	Release(ctx context.Context, name, holder string) error
}

// MemoryReservations is Reservations for one process: claims live in
// memory and end when their lease runs out (counted from the holder's last
// Reserve). Two processes, or one restarted, do not see each other's
// claims. The zero value is not usable; use NewMemoryReservations. It is
// safe for concurrent use.
type MemoryReservations struct {
	lease time.Duration
	mu    sync.Mutex
	names map[string][]memClaim
	notes map[string][]Claim // Ledger notes, kept for the process's life
}

type memClaim struct {
	Claim
	until time.Time
}

// NewMemoryReservations returns in-process reservations whose claims last
// lease after their holder's last Reserve.
func NewMemoryReservations(lease time.Duration) *MemoryReservations {
	return &MemoryReservations{lease: lease, names: map[string][]memClaim{}}
}

// Reserve implements Reservations.
func (m *MemoryReservations) Reserve(_ context.Context, name, holder string, decide func([]Claim) (string, error)) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if len(m.names) > 1024 {
		for n := range m.names {
			m.live(n, now)
		}
	}
	live := m.live(name, now)
	if i := slices.IndexFunc(live, func(c memClaim) bool { return c.Holder == holder }); i >= 0 {
		live[i].until = now.Add(m.lease)
		return live[i].Value, nil
	}
	others := make([]Claim, len(live))
	for i, c := range live {
		others[i] = c.Claim
	}
	v, err := decide(others)
	if err != nil {
		return "", err
	}
	m.names[name] = append(live, memClaim{Claim{Holder: holder, Value: v}, now.Add(m.lease)})
	return v, nil
}

// Release implements Reservations.
func (m *MemoryReservations) Release(_ context.Context, name, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	live := slices.DeleteFunc(m.live(name, time.Now()), func(c memClaim) bool { return c.Holder == holder })
	if len(live) == 0 {
		delete(m.names, name)
	} else {
		m.names[name] = live
	}
	return nil
}

// live drops name's expired claims and returns the others (m.mu held).
func (m *MemoryReservations) live(name string, now time.Time) []memClaim {
	live := slices.DeleteFunc(m.names[name], func(c memClaim) bool { return !now.Before(c.until) })
	if len(live) == 0 {
		delete(m.names, name)
		return nil
	}
	m.names[name] = live
	return live
}

// Ledger keeps notes that must outlive claims: what a provider did under a
// name, readable by every replica long after the operation ended (the
// CodeGuard renewals of an order that were sent, and those confirmed with
// the end times they moved, so that a renewal replayed from the dead-letter
// stream can tell its own effect from a later renewal's). A holder has at
// most one note under a name. Notes are never judged gone like claims;
// an implementation keeps at least the newest LedgerNotes of a name.
// worker.Reservations and MemoryReservations implement it.
type Ledger interface {
	// Notes returns the notes under name, oldest first.
	Notes(ctx context.Context, name string) ([]Claim, error)
	// Note sets holder's note under name to what decide returns given all
	// notes under name (holder's own included): "" removes it. Reading and
	// writing are one atomic step for every process sharing the store; an
	// error from decide is returned as is and nothing changes.
	Note(ctx context.Context, name, holder string, decide func(notes []Claim) (string, error)) (string, error)
}

// LedgerNotes is how many notes under one name a Ledger keeps at least
// (the oldest beyond it may be dropped).
const LedgerNotes = 64

// Notes implements Ledger.
func (m *MemoryReservations) Notes(_ context.Context, name string) ([]Claim, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.notes[name]), nil
}

// Note implements Ledger.
func (m *MemoryReservations) Note(_ context.Context, name, holder string, decide func([]Claim) (string, error)) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, err := decide(slices.Clone(m.notes[name]))
	if err != nil {
		return "", err
	}
	if m.notes == nil {
		m.notes = map[string][]Claim{}
	}
	m.notes[name] = SetNote(m.notes[name], holder, v)
	return v, nil
}

// SetNote returns notes with holder's note set to v (moved to the end as
// the newest; removed when v is ""), keeping the newest LedgerNotes.
func SetNote(notes []Claim, holder, v string) []Claim {
	notes = slices.DeleteFunc(slices.Clone(notes), func(c Claim) bool { return c.Holder == holder })
	if v != "" {
		notes = append(notes, Claim{Holder: holder, Value: v})
	}
	if n := len(notes) - LedgerNotes; n > 0 {
		notes = notes[n:]
	}
	return notes
}
