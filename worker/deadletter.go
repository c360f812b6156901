package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

// Bounds of a dead-letter entry. Whatever the input, an entry fits under
// the server's max payload, so storing it can only fail for reasons that
// heal (the server is away), never because of the message.
const (
	// maxReasonLen bounds the reason text of an entry and of its result.
	maxReasonLen = 4096
	// maxLabelLen bounds the event id, type, source and message id copied
	// from the message into an entry (the original keeps them whole).
	maxLabelLen = 512
	// maxPrefixLen bounds the prefix kept of a message too large for an
	// entry.
	maxPrefixLen = 64 << 10
	// entryHeadroom is kept free under the max payload for the headers of
	// the publish.
	entryHeadroom = 1024
	// defaultMaxPayload is NATS's default, used when the connection does
	// not say.
	defaultMaxPayload = 1 << 20
)

// deadLetterMsgID is the Nats-Msg-Id of the entry for the message at seq
// of the events stream: the same from every path (a failed last delivery,
// an unfinished one, a max-deliveries advisory), so a message dead-lettered
// twice in the dead-letter stream's duplicate window has one entry.
func deadLetterMsgID(seq uint64) string {
	return "dlq:" + EventsStream + ":" + strconv.FormatUint(seq, 10)
}

// clipText cuts s to at most n bytes on a character boundary.
func clipText(s string, n int) string {
	// Invalid bytes first become U+FFFD, as JSON encoding would make them
	// (one byte to three): clipping after that keeps the encoded label
	// within the bound too.
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// labels fills the entry's source and type from the event when they are
// valid subject tokens, else from the message's subject when that is a
// valid inbound subject, else keeps what the event said (clipped).
func labels(dl *events.DeadLetter) {
	src, typ, subjOK := events.ParseInboundSubject(dl.Subject)
	if !events.ValidSource(dl.Source) && subjOK {
		dl.Source = src
	}
	if !events.ValidSubjectType(string(dl.EventType)) && subjOK {
		dl.EventType = typ
	}
	dl.Source = clipText(dl.Source, maxLabelLen)
	dl.EventType = events.Type(clipText(string(dl.EventType), maxLabelLen))
	dl.EventID = clipText(dl.EventID, maxLabelLen)
	dl.MsgID = clipText(dl.MsgID, maxLabelLen)
}

// encodeDeadLetter encodes dl holding original, in at most limit bytes.
// The original is kept exactly: as JSON (Event) when it is compact, valid
// UTF-8 JSON, else as bytes (Raw). When the whole of it cannot fit, Raw
// holds its first bytes (at most 64 KiB) and Truncated is set. Size and
// SHA-256 of the original are always recorded.
func encodeDeadLetter(dl events.DeadLetter, original []byte, limit int) ([]byte, error) {
	sum := sha256.Sum256(original)
	dl.OriginalSize, dl.OriginalSHA256, dl.Truncated = len(original), hex.EncodeToString(sum[:]), false
	dl.Reason = clipText(dl.Reason, maxReasonLen)
	labels(&dl)
	dl.Event, dl.Raw = nil, nil
	if exactJSON(original) {
		dl.Event = json.RawMessage(original)
	} else if len(original) > 0 {
		dl.Raw = original
	}
	body, err := marshalEntry(dl)
	if err != nil || len(body) <= limit {
		return body, err
	}
	dl.Event, dl.Raw, dl.Truncated = nil, nil, true
	for {
		base, err := marshalEntry(dl)
		if err != nil {
			return nil, err
		}
		room := (limit-len(base)-16)/4*3 - 3 // base64 grows 3 bytes into 4, plus the quotes
		if room >= 0 {
			dl.Raw = original[:min(room, maxPrefixLen, len(original))]
			return marshalEntry(dl)
		}
		if !shrinkEntry(&dl) {
			return nil, fmt.Errorf("dead-letter entry does not fit in %d bytes even without the message", limit)
		}
	}
}

// shrinkEntry makes an entry that does not fit smaller by one step, giving
// up first what the original (kept as its prefix, size and hash) or the
// result also holds: the later attempts, then the reason, the failed
// operations' keys, then the longest label copied from the message. The
// bounds above are in bytes before JSON escaping, which turns a control
// character into six, so a small max payload can need all of these. It
// reports false when nothing is left to shrink.
func shrinkEntry(dl *events.DeadLetter) bool {
	switch {
	case len(dl.Attempts) > 0:
		dl.Attempts = dl.Attempts[:len(dl.Attempts)/2] // keep the first ones
	case dl.Reason != "":
		dl.Reason = halveText(dl.Reason)
	case len(dl.Operations) > 0:
		dl.Operations = dl.Operations[:len(dl.Operations)/2]
	default:
		longest := &dl.Subject
		for _, s := range []*string{&dl.EventID, (*string)(&dl.EventType), &dl.Source, &dl.MsgID} {
			if len(*s) > len(*longest) {
				longest = s
			}
		}
		if *longest == "" {
			return false
		}
		*longest = halveText(*longest)
	}
	return true
}

// halveText is s cut to about half its bytes on a character boundary, and
// empty once short.
func halveText(s string) string {
	if len(s) <= 8 {
		return ""
	}
	return clipText(s, len(s)/2)
}

// exactJSON reports whether b, re-encoded as json.RawMessage, comes out
// byte for byte the same: compact, valid UTF-8 JSON.
func exactJSON(b []byte) bool {
	if !utf8.Valid(b) || !json.Valid(b) {
		return false
	}
	var c bytes.Buffer
	if err := json.Compact(&c, b); err != nil {
		return false
	}
	return bytes.Equal(c.Bytes(), b)
}

// marshalEntry encodes without HTML escaping, which would change an
// original event holding '<', '>' or '&'.
func marshalEntry(dl events.DeadLetter) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(dl); err != nil {
		return nil, fmt.Errorf("encode dead letter: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// maxPayload is the server's max payload as the connection reports it.
func (w *Worker) maxPayload() int {
	if nc := w.js.Conn(); nc != nil {
		if mp := nc.MaxPayload(); mp > 0 {
			return int(mp)
		}
	}
	return defaultMaxPayload
}

// storeDeadLetter stores the entry for one message of the events stream
// under a subject built from validated tokens only.
func (w *Worker) storeDeadLetter(ctx context.Context, dl events.DeadLetter, original []byte) error {
	body, err := encodeDeadLetter(dl, original, w.maxPayload()-entryHeadroom)
	if err != nil {
		return err
	}
	labels(&dl)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err = w.js.Publish(pctx, events.DeadLetterSubject(dl.Source, dl.EventType), body, jetstream.WithMsgID(deadLetterMsgID(dl.StreamSequence)))
	return err
}

// resultSource is the source of the dead_lettered result of a message that
// names no valid one: the entry's (already validated against the subject),
// or "unknown".
func resultSource(dl events.DeadLetter) string {
	if events.ValidSource(dl.Source) {
		return dl.Source
	}
	return events.Unknown
}

// resultEventFor returns the envelope a dead_lettered result for a message
// without operations is built from: valid whatever the message held.
func resultEventFor(env events.Envelope, dl events.DeadLetter, opKey string) events.Envelope {
	src := env
	if strings.TrimSpace(src.ID) == "" || len(src.ID) > maxLabelLen {
		src.ID = opKey
	}
	src.Source = resultSource(dl)
	src.Type = dl.EventType
	return src
}

// deadLetter stores the event and why it failed in the dead-letter stream,
// publishes a dead_lettered result per failed operation (one for the whole
// message when it has none), and terminates the message. If the entry
// cannot be stored, the message is nak'ed instead, so nothing is lost.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, env events.Envelope, failed []failure, reason error, log *zap.Logger) {
	typ := typeLabel(env.Type)
	dl := events.DeadLetter{
		EventID: env.ID, EventType: env.Type, Source: env.Source, Subject: msg.Subject(),
		StreamSequence: meta.Sequence.Stream, MsgID: msg.Headers().Get(jetstream.MsgIDHeader),
		ErrorClass: events.ClassOf(reason), Reason: reason.Error(), Deliveries: meta.NumDelivered,
		DeadLetteredAt: time.Now().UTC(),
	}
	for _, f := range failed {
		dl.Operations = append(dl.Operations, f.op.Key)
		dl.Attempts = append(dl.Attempts, f.rec.Attempts...)
	}
	if len(failed) == 0 {
		dl.Attempts = []events.Attempt{{Number: 1, At: dl.DeadLetteredAt, ErrorClass: dl.ErrorClass, Error: clipText(dl.Reason, maxReasonLen)}}
	}
	sort.SliceStable(dl.Attempts, func(i, j int) bool { return dl.Attempts[i].At.Before(dl.Attempts[j].At) })
	if err := w.storeDeadLetter(ctx, dl, msg.Data()); err != nil {
		w.m.publishFailures.Inc()
		log.Error("could not store the dead letter; the event is nak'ed and will come back", zap.Error(err))
		_ = msg.NakWithDelay(w.opts.RetryBase)
		w.m.processed.WithLabelValues(typ, "retry").Inc()
		return
	}
	labels(&dl)
	w.abandon(ctx, failed)
	if len(failed) == 0 {
		op := events.Operation{Key: "stream:" + EventsStream + ":" + strconv.FormatUint(meta.Sequence.Stream, 10)}
		w.publishResult(events.OutcomeDeadLettered, resultEventFor(env, dl, op.Key), op,
			resultFields{attempt: 1, err: clippedError{reason}, seq: meta.Sequence.Stream})
	}
	for _, f := range failed {
		w.publishResult(events.OutcomeDeadLettered, env, f.op, resultFields{attempt: len(f.rec.Attempts), err: clippedError{f.err}, seq: meta.Sequence.Stream})
		w.m.operations.WithLabelValues(f.op.Provider, string(f.op.Action), "dead_lettered").Inc()
	}
	if err := msg.TermWithReason("dead-lettered: " + clipText(reason.Error(), 200)); err != nil {
		w.m.jetstreamErrors.WithLabelValues(jsAck).Inc()
		log.Warn("term failed; a redelivery will find the operations' records", zap.Error(err))
	}
	w.m.processed.WithLabelValues(typ, "dead_lettered").Inc()
	log.Warn("event dead-lettered", zap.String("error_class", string(dl.ErrorClass)), zap.Error(reason))
}

// clippedError is err with its text bounded for a result event; its class
// is err's.
type clippedError struct{ err error }

func (c clippedError) Error() string { return clipText(c.err.Error(), maxReasonLen) }
func (c clippedError) Unwrap() error { return c.err }

// unfinishedReason says why an event is dead-lettered on the extra
// delivery the consumer allows beyond MaxDeliver.
func unfinishedReason(maxDeliver int) error {
	return events.AsTransient(fmt.Errorf("no delivery of %d finished: the worker stopped or timed out during the last one", maxDeliver), 0)
}

// finishUnfinished handles the one delivery the consumer allows beyond
// MaxDeliver: delivery MaxDeliver never finished (its worker died or lost
// the connection), so the event is dead-lettered now, before any work,
// without relying on anyone hearing a max-deliveries advisory. Operations
// already done keep their results (re-published); the rest are
// dead-lettered with their recorded attempts.
func (w *Worker) finishUnfinished(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, env events.Envelope, ops []events.Operation, log *zap.Logger) {
	reason := unfinishedReason(w.opts.MaxDeliver)
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var failed []failure
	for _, op := range ops {
		rec, err := LoadRecord(lctx, w.kv, op.Key)
		switch {
		case isNotFound(err):
			rec = Record{Key: op.Key, Operation: op}
		case err != nil:
			w.m.jetstreamErrors.WithLabelValues(jsRecord).Inc()
			log.Warn("cannot read an operation record to dead-letter an unfinished event; nak'ed", zap.Error(err))
			_ = msg.NakWithDelay(w.opts.RetryBase)
			return
		case rec.State == StateDone:
			if err := w.republish(rec, meta.Sequence.Stream); err != nil {
				log.Warn("cannot re-publish a done operation's result; nak'ed", zap.Error(err))
				_ = msg.NakWithDelay(w.opts.RetryBase)
				return
			}
			continue
		}
		failed = append(failed, failure{op: op, err: reason, rec: rec})
	}
	if len(failed) == 0 {
		if err := w.ack(msg); err != nil {
			w.m.jetstreamErrors.WithLabelValues(jsAck).Inc()
			log.Warn("ack failed", zap.Error(err))
		}
		return
	}
	log.Warn("the last allowed delivery never finished; dead-lettering before any work", zap.Int("max_deliver", w.opts.MaxDeliver))
	w.deadLetter(ctx, msg, meta, env, failed, reason, log)
}

// errConnClosed is returned by Run when the NATS connection is closed for
// good: the process should exit (non-zero) and be restarted.
var errConnClosed = errors.New("NATS connection closed for good")

// connClosed reports whether the worker's NATS connection is closed (it
// will not reconnect).
func (w *Worker) connClosed() bool {
	nc := w.js.Conn()
	return nc != nil && nc.IsClosed()
}

// Alive returns nil while the worker's NATS connection is open or
// reconnecting, and an error once it is closed for good (the process
// should be restarted). /healthz reports it.
func (w *Worker) Alive() error {
	if w.connClosed() {
		return fmt.Errorf("%w: %v", errConnClosed, nats.ErrConnectionClosed)
	}
	return nil
}

// watchConn calls lost, once, when the NATS connection is closed for good:
// nats.go gave up on it (or an input made it close), so no pull, ack or
// reconnect can work again. Run then stops like on shutdown and returns
// an error, so the process exits non-zero and its supervisor restarts it.
func (w *Worker) watchConn(ctx context.Context, lost func()) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if w.connClosed() {
				w.log.Error("NATS connection closed for good; stopping so that the process is restarted")
				lost()
				return
			}
		}
	}
}
