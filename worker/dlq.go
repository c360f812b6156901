package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
)

// DeadLetters reads and acts on the dead-letter stream.
type DeadLetters struct {
	js     jetstream.JetStream
	stream jetstream.Stream
}

// Entry is one dead-letter entry and its sequence in the dead-letter stream.
type Entry struct {
	Seq uint64 `json:"seq"`
	events.DeadLetter
}

// Filter selects dead-letter entries; zero fields match everything.
type Filter struct {
	Type    events.Type
	Source  string
	Class   events.ErrorClass
	EventID string
	Limit   int // 0 = no limit
}

func (f Filter) match(e Entry) bool {
	return (f.Type == "" || e.EventType == f.Type) && (f.Source == "" || e.Source == f.Source) &&
		(f.Class == "" || e.ErrorClass == f.Class) && (f.EventID == "" || e.EventID == f.EventID)
}

// OpenDeadLetters opens the dead-letter stream (created by Setup).
func OpenDeadLetters(ctx context.Context, js jetstream.JetStream) (*DeadLetters, error) {
	s, err := js.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s: %w", DeadLetterStream, err)
	}
	return &DeadLetters{js: js, stream: s}, nil
}

// List returns the entries that match f, oldest first.
func (d *DeadLetters) List(ctx context.Context, f Filter) ([]Entry, error) {
	info, err := d.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream info: %w", err)
	}
	var out []Entry
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		e, err := d.Get(ctx, seq)
		if isNotFound(err) {
			continue // discarded or replayed
		}
		if err != nil {
			return out, err
		}
		if f.match(e) {
			out = append(out, e)
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
		}
	}
	return out, nil
}

// ErrNoSuchEntry is returned (wrapped) for a sequence number that is not
// in the dead-letter stream (never was, replayed or discarded).
var ErrNoSuchEntry = errors.New("no such entry")

// noEntry is a sequence number without an entry; it matches both
// ErrNoSuchEntry and the JetStream error behind it.
type noEntry struct {
	seq uint64
	err error
}

func (e noEntry) Error() string {
	return fmt.Sprintf("dead letter %d: no such entry (`hookworker dlq list` shows the entries)", e.seq)
}

func (e noEntry) Unwrap() []error { return []error{ErrNoSuchEntry, e.err} }

// Get returns the entry at seq.
func (d *DeadLetters) Get(ctx context.Context, seq uint64) (Entry, error) {
	m, err := d.stream.GetMsg(ctx, seq)
	if isNotFound(err) {
		return Entry{}, noEntry{seq, err}
	}
	if err != nil {
		return Entry{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	e := Entry{Seq: seq}
	if err := json.Unmarshal(m.Data, &e.DeadLetter); err != nil {
		return Entry{}, fmt.Errorf("dead letter %d is unreadable: %w", seq, err)
	}
	return e, nil
}

// Replay publishes the entry's original event, unchanged, to its original
// subject and removes the entry. The event keeps its id, so operations that
// had succeeded are not repeated and the failed ones are looked up at the
// provider before they are tried again (a CodeGuard renewal is planned again
// from the order's current expiry unless its note shows it went through:
// see providers/codeguard/ledger.go). A second replay of the same entry
// within the duplicate window is dropped by JetStream.
func (d *DeadLetters) Replay(ctx context.Context, seq uint64) (uint64, error) {
	e, err := d.Get(ctx, seq)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(e.Subject, events.InboundPrefix+".") {
		return 0, fmt.Errorf("dead letter %d: subject %q is not an inbound subject", seq, e.Subject)
	}
	id := e.MsgID
	if id == "" {
		id = e.EventID
	}
	if id == "" {
		id = "stream:" + strconv.FormatUint(e.StreamSequence, 10)
	}
	msg := nats.NewMsg(e.Subject)
	msg.Data = e.Original()
	if e.Truncated {
		// The entry keeps only a prefix: take the whole original from the
		// events stream, where it stays until it ages out.
		if msg.Data, err = d.original(ctx, e); err != nil {
			return 0, err
		}
	}
	msg.Header.Set(jetstream.MsgIDHeader, id+":replay:"+strconv.FormatUint(seq, 10))
	msg.Header.Set("Hookworker-Replay-Of", strconv.FormatUint(seq, 10))
	ack, err := d.js.PublishMsg(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("replay dead letter %d: %w", seq, err)
	}
	if err := d.stream.DeleteMsg(ctx, seq); err != nil && !isNotFound(err) {
		return ack.Sequence, fmt.Errorf("replayed dead letter %d as event %d but could not remove it: %w", seq, ack.Sequence, err)
	}
	return ack.Sequence, nil
}

// Discard removes the entry without replaying it.
func (d *DeadLetters) Discard(ctx context.Context, seq uint64) error {
	if err := d.stream.DeleteMsg(ctx, seq); err != nil {
		if isNotFound(err) || errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
			return noEntry{seq, err}
		}
		return fmt.Errorf("discard dead letter %d: %w", seq, err)
	}
	return nil
}

// original reads the message a truncated entry describes from the events
// stream and checks it is the one (size and SHA-256).
func (d *DeadLetters) original(ctx context.Context, e Entry) ([]byte, error) {
	s, err := d.js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d keeps only %d of %d bytes, and the events stream cannot be read: %w", e.Seq, len(e.Raw), e.OriginalSize, err)
	}
	m, err := s.GetMsg(ctx, e.StreamSequence)
	if err != nil {
		return nil, fmt.Errorf("dead letter %d keeps only %d of %d bytes, and event %d is no longer in the events stream: %w", e.Seq, len(e.Raw), e.OriginalSize, e.StreamSequence, err)
	}
	sum := sha256.Sum256(m.Data)
	if len(m.Data) != e.OriginalSize || hex.EncodeToString(sum[:]) != e.OriginalSHA256 || m.Subject != e.Subject {
		return nil, fmt.Errorf("dead letter %d keeps only %d of %d bytes, and event %d of the events stream is another message", e.Seq, len(e.Raw), e.OriginalSize, e.StreamSequence)
	}
	return m.Data, nil
}
