package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
)

// Bounds on the work one page load does.
const (
	maxResultsScanned = 2000 // newest result events read for rates and failures
	maxDeadLetters    = 2000 // newest dead-letter entries read for the table and bulk actions
	maxShown          = 200  // dead-letter rows on the page
	recentFailures    = 15   // failures listed
)

// scanStream reads messages of stream from startSeq up to lastSeq (at most
// max of them) with a short-lived ephemeral consumer that acks nothing, and
// calls fn for each. The consumer is deleted afterwards (and expires on
// its own if that fails).
func scanStream(ctx context.Context, js jetstream.JetStream, stream string, startSeq, lastSeq uint64, max int,
	fn func(seq uint64, at time.Time, data []byte)) error {
	if lastSeq == 0 || startSeq > lastSeq {
		return nil
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description: "hookworker ops page: one read", DeliverPolicy: jetstream.DeliverByStartSequencePolicy,
		OptStartSeq: startSeq, AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 30 * time.Second,
		MemoryStorage: true, Replicas: 1,
	})
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = st.DeleteConsumer(dctx, cons.CachedInfo().Name)
	}()
	n := 0
	for n < max {
		batch, err := cons.FetchNoWait(min(max-n, 500))
		if err != nil {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if meta.Sequence.Stream > lastSeq {
				return nil
			}
			n++
			fn(meta.Sequence.Stream, meta.Timestamp, m.Data())
			if meta.Sequence.Stream == lastSeq || n >= max {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		if got == 0 {
			return nil
		}
	}
	return nil
}

// window is the result counts of one time window.
type window struct {
	Label        string
	Span         time.Duration
	Succeeded    int
	Failed       int // failed attempts (most will be retried)
	DeadLettered int
	Partial      bool // the scan bound was reached inside the window
}

// Total is the number of results in the window.
func (w window) Total() int { return w.Succeeded + w.Failed + w.DeadLettered }

// PerMinute is the rate of succeeded operations.
func (w window) PerMinute() float64 { return float64(w.Succeeded) / w.Span.Minutes() }

// FailurePercent is the share of results that were failures or dead letters.
func (w window) FailurePercent() float64 {
	if w.Total() == 0 {
		return 0
	}
	return 100 * float64(w.Failed+w.DeadLettered) / float64(w.Total())
}

// failure is one failed or dead-lettered result.
type failure struct {
	Seq      uint64
	At       time.Time
	Type     events.Type
	Data     events.ResultData
	ResultID string
}

// DeadLettered reports whether the failure was final.
func (f failure) DeadLettered() bool { return f.Type == events.ProvisioningDeadLettered }

// Linkable reports whether the dead-letter table can be filtered by the
// failure's event id (a message that did not decode has none).
func (f failure) Linkable() bool {
	return f.DeadLettered() && !strings.HasPrefix(f.Data.SourceEventID, "stream:")
}

// resultsView is what the results stream says.
type resultsView struct {
	Windows  []window
	Failures []failure
	Scanned  int
	Since    time.Time // time of the oldest result read
	Err      string
}

func readResults(ctx context.Context, js jetstream.JetStream, now time.Time) resultsView {
	v := resultsView{Windows: []window{{Label: "Last 5 minutes", Span: 5 * time.Minute}, {Label: "Last hour", Span: time.Hour}}}
	st, err := js.Stream(ctx, worker.ResultsStream)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	info, err := st.Info(ctx)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return v
	}
	start := first
	if last >= maxResultsScanned && last-maxResultsScanned+1 > first {
		start = last - maxResultsScanned + 1
	}
	var fails []failure
	err = scanStream(ctx, js, worker.ResultsStream, start, last, maxResultsScanned, func(seq uint64, at time.Time, data []byte) {
		v.Scanned++
		if v.Since.IsZero() || at.Before(v.Since) {
			v.Since = at
		}
		env, err := events.Decode(data)
		if err != nil {
			return
		}
		p, err := env.Payload()
		if err != nil {
			return
		}
		d := *p.(*events.ResultData)
		for i := range v.Windows {
			w := &v.Windows[i]
			if now.Sub(at) > w.Span {
				continue
			}
			switch env.Type {
			case events.ProvisioningSucceeded:
				w.Succeeded++
			case events.ProvisioningFailed:
				w.Failed++
			case events.ProvisioningDeadLettered:
				w.DeadLettered++
			}
		}
		if env.Type == events.ProvisioningFailed || env.Type == events.ProvisioningDeadLettered {
			fails = append(fails, failure{Seq: seq, At: at, Type: env.Type, Data: d, ResultID: env.ID})
		}
	})
	if err != nil {
		v.Err = err.Error()
	}
	// The scan stopped at its bound inside a window: its counts are a floor.
	if start > first {
		for i := range v.Windows {
			v.Windows[i].Partial = now.Sub(v.Since) < v.Windows[i].Span
		}
	}
	sort.SliceStable(fails, func(i, j int) bool { return fails[i].Seq > fails[j].Seq })
	if len(fails) > recentFailures {
		fails = fails[:recentFailures]
	}
	v.Failures = fails
	return v
}

// deadLetterView is the dead-letter table and its filter.
type deadLetterView struct {
	Total    uint64         // entries in the stream
	Read     int            // entries read (the newest maxDeadLetters)
	Matching []worker.Entry // newest first
	Types    []string       // distinct values seen, for the filter
	Sources  []string
	Err      string
}

// Truncated reports whether older entries were not read.
func (v deadLetterView) Truncated() bool { return uint64(v.Read) < v.Total }

// Shown returns the rows to render.
func (v deadLetterView) Shown() []worker.Entry {
	if len(v.Matching) > maxShown {
		return v.Matching[:maxShown]
	}
	return v.Matching
}

func matches(f worker.Filter, e worker.Entry) bool {
	return (f.Type == "" || e.EventType == f.Type) && (f.Source == "" || e.Source == f.Source) &&
		(f.Class == "" || e.ErrorClass == f.Class) && (f.EventID == "" || e.EventID == f.EventID)
}

func readDeadLetters(ctx context.Context, js jetstream.JetStream, f worker.Filter) deadLetterView {
	var v deadLetterView
	st, err := js.Stream(ctx, worker.DeadLetterStream)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	info, err := st.Info(ctx)
	if err != nil {
		v.Err = err.Error()
		return v
	}
	v.Total = info.State.Msgs
	if v.Total == 0 {
		return v
	}
	start := info.State.FirstSeq
	if v.Total > maxDeadLetters {
		// The newest entries: seqs are dense apart from replayed and
		// discarded ones, so this window holds at most maxDeadLetters.
		if s := info.State.LastSeq - maxDeadLetters + 1; s > start {
			start = s
		}
	}
	types, sources := map[string]bool{}, map[string]bool{}
	err = scanStream(ctx, js, worker.DeadLetterStream, start, info.State.LastSeq, maxDeadLetters, func(seq uint64, _ time.Time, data []byte) {
		v.Read++
		e := worker.Entry{Seq: seq}
		if err := json.Unmarshal(data, &e.DeadLetter); err != nil {
			e.Reason = "unreadable dead-letter entry: " + err.Error()
		}
		types[string(e.EventType)], sources[e.Source] = true, true
		if matches(f, e) {
			v.Matching = append(v.Matching, e)
		}
	})
	if err != nil {
		v.Err = err.Error()
	}
	sort.SliceStable(v.Matching, func(i, j int) bool { return v.Matching[i].Seq > v.Matching[j].Seq })
	v.Types, v.Sources = sortedKeys(types), sortedKeys(sources)
	return v
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if k != "" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// queueView is the queue's state and where it came from.
type queueView struct {
	worker.Status
	Fresh     bool   // read from JetStream for this page; false: the worker's snapshot
	StatusErr string // why JetStream could not be read
	Ready     string // "" when ready
	NoWorker  bool   // no status source: readiness unknown
	Providers []providerHealth
}

type providerHealth struct {
	Name  string
	Up    bool
	State string
}

func (s *Server) readQueue(ctx context.Context) queueView {
	var q queueView
	st, err := worker.ReadStatus(ctx, s.js, s.consumer)
	snap, haveSnap := worker.Status{}, false
	if s.status != nil {
		snap, haveSnap = s.status.Status()
	}
	switch {
	case err == nil:
		q.Status, q.Fresh = st, true
	case haveSnap:
		q.Status, q.StatusErr = snap, err.Error()
	default:
		q.Status, q.StatusErr = worker.Status{}, err.Error()
	}
	if s.status == nil {
		q.NoWorker = true
	} else if err := s.status.Ready(); err != nil {
		q.Ready = err.Error()
	}
	health := map[string]string{}
	if haveSnap {
		for k, v := range snap.Providers {
			health[k] = v
		}
	}
	if p, ok := s.status.(interface{ Providers() []string }); ok {
		for _, n := range p.Providers() {
			if _, ok := health[n]; !ok {
				health[n] = "not checked yet"
			}
		}
	}
	for _, n := range sortedKeys(boolKeys(health)) {
		q.Providers = append(q.Providers, providerHealth{Name: n, Up: health[n] == "up", State: health[n]})
	}
	return q
}

func boolKeys(m map[string]string) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}

// recordView is an operation record as the detail page shows it.
type recordView struct {
	Key      string
	Found    bool
	Err      string
	Record   worker.Record
	Plan     []kv
	Outcome  []kv
	Attempts []events.Attempt
}

type kv struct{ K, V string }

func readRecords(ctx context.Context, js jetstream.JetStream, keys []string) []recordView {
	out := make([]recordView, 0, len(keys))
	bucket, berr := js.KeyValue(ctx, worker.RecordsBucket)
	for _, k := range keys {
		rv := recordView{Key: k}
		if berr != nil {
			rv.Err = berr.Error()
			out = append(out, rv)
			continue
		}
		rec, err := worker.LoadRecord(ctx, bucket, k)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			rv.Err = "no record (expired, or the operation never started)"
		case err != nil:
			rv.Err = err.Error()
		default:
			rv.Found, rv.Record, rv.Attempts = true, rec, rec.Attempts
			rv.Plan = redactMap(rec.Plan)
			if rec.Outcome != nil {
				if rec.Outcome.Reference != "" {
					rv.Outcome = append(rv.Outcome, kv{"reference", rec.Outcome.Reference})
				}
				if rec.Outcome.AlreadyDone {
					rv.Outcome = append(rv.Outcome, kv{"already_done", "true"})
				}
				rv.Outcome = append(rv.Outcome, redactMap(rec.Outcome.Details)...)
				// Write-back values are for WHMCS only (a pass key, say).
				for _, w := range sortedKeys(boolKeys(rec.Outcome.WriteBack)) {
					rv.Outcome = append(rv.Outcome, kv{"write_back." + w, "[hidden]"})
				}
			}
		}
		out = append(out, rv)
	}
	return out
}

// sensitive reports whether a field name looks like it holds a secret.
// Events and records carry none by design; this is a second line of
// defence so that the page never shows one if that ever changes.
func sensitive(name string) bool {
	n := strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(name))
	for _, s := range []string{"password", "passwd", "secret", "token", "apikey", "authorization", "passkey", "privatekey", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func redactMap(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for _, k := range sortedKeys(boolKeys(m)) {
		v := m[k]
		if sensitive(k) {
			v = "[hidden]"
		}
		out = append(out, kv{k, v})
	}
	return out
}

// hasSensitive reports whether v has a secret-looking key anywhere.
func hasSensitive(v any) bool {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if sensitive(k) || hasSensitive(x) {
				return true
			}
		}
	case []any:
		for _, x := range t {
			if hasSensitive(x) {
				return true
			}
		}
	}
	return false
}

// redactJSON replaces the values of secret-looking keys anywhere in v.
func redactJSON(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if sensitive(k) {
				t[k] = "[hidden]"
			} else {
				t[k] = redactJSON(x)
			}
		}
	case []any:
		for i := range t {
			t[i] = redactJSON(t[i])
		}
	}
	return v
}

// prettyOriginal renders a dead letter's original message: indented JSON
// (secret-looking fields hidden), or the raw bytes as text with invalid
// UTF-8 and control characters escaped. Of a message too large for its
// entry it shows the prefix kept, and says so.
func prettyOriginal(d events.DeadLetter) (text string, isJSON bool) {
	b := d.Original()
	if d.Truncated {
		return escapeBytes(b) + fmt.Sprintf("\n… (too large for a dead-letter entry: the first %d of %d bytes, SHA-256 %s; replay takes the whole message from the events stream while it is there)",
			len(b), d.OriginalSize, d.OriginalSHA256), false
	}
	if json.Valid(b) {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil {
			if !hasSensitive(v) {
				// As received, field order kept, only indented.
				var out bytes.Buffer
				if err := json.Indent(&out, b, "", "  "); err == nil {
					return out.String(), true
				}
			}
			if out, err := json.MarshalIndent(redactJSON(v), "", "  "); err == nil {
				return string(out), true
			}
		}
	}
	return escapeBytes(b), false
}

func escapeBytes(b []byte) string {
	var sb strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&sb, `\x%02x`, b[0])
		case r == '\n' || r == '\t':
			sb.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\x%02x`, r)
		default:
			sb.WriteRune(r)
		}
		b = b[size:]
	}
	return sb.String()
}
