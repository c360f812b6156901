package whmcs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

// usernameProviders are the providers whose Reference is an account name,
// written to the service's username. Every other provider (codeguard: the
// Reference is a ResellerClub order id) gets its Reference appended to the
// service's admin notes instead.
var usernameProviders = map[string]bool{"comet": true, "storegrid": true, "sandbox": true}

// Writer applies result events to WHMCS (see the package documentation for
// the rules). It records its progress per result event in a JetStream
// key-value bucket so that a replayed or redelivered result adds no second
// note or log line. It is safe for concurrent use.
type Writer struct {
	c       *Client
	kv      jetstream.KeyValue
	log     *zap.Logger
	metrics *Metrics
	now     func() time.Time
}

// NewWriter returns a writer that calls WHMCS through c and keeps its
// idempotency records in kv (keys "writeback.<sha256 of the result event
// id>"; the bucket may be shared with other records). c and kv must not be
// nil. log may be nil. Metrics are off until WithMetrics.
func NewWriter(c *Client, kv jetstream.KeyValue, log *zap.Logger) *Writer {
	if c == nil || kv == nil {
		panic("whmcs.NewWriter: nil client or key-value bucket")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Writer{c: c, kv: kv, log: log.Named("whmcs"), metrics: newMetrics(), now: time.Now}
}

// WithMetrics makes w count its work in m and returns w.
func (w *Writer) WithMetrics(m *Metrics) *Writer {
	if m != nil {
		w.metrics = m
	}
	return w
}

// step is one WHMCS change a result asks for.
type step struct {
	name string // record name: "product", "fields", "note", "log"
	api  string // the WHMCS action, for metrics
	// once marks a step that is not idempotent (AddClientNote,
	// LogActivity): it is recorded as started before the call.
	once bool
	run  func(ctx context.Context) error
	// verify, for a once step, tells whether an earlier attempt that ended
	// in doubt took effect. nil: WHMCS offers no way to tell.
	verify func(ctx context.Context) (bool, error)
}

// record is the write-back progress of one result event in the KV bucket.
type record struct {
	V       int         `json:"v"`
	Type    events.Type `json:"type"`
	Done    []string    `json:"done,omitempty"`
	Started string      `json:"started,omitempty"`
	// StartedAt is when Started was marked: a mark younger than
	// inDoubtAfter belongs to a call still in flight at another worker.
	StartedAt time.Time `json:"started_at,omitempty"`
	Skipped   []string  `json:"skipped,omitempty"`
	Complete  bool      `json:"complete,omitempty"`
	Updated   time.Time `json:"updated"`
}

func (r *record) has(name string) bool {
	return slices.Contains(r.Done, name) || slices.Contains(r.Skipped, name)
}

// Apply writes one result event back to WHMCS. It returns nil when the
// result is applied, was applied before, or needs nothing. Errors are
// classified (events.ClassOf): transient ones may be retried with the same
// envelope, permanent ones will fail again. Nothing Apply logs or returns
// holds a WriteBack value (the Pass Key).
func (w *Writer) Apply(ctx context.Context, result events.Envelope) error {
	typ := string(result.Type)
	if result.Type != events.ProvisioningSucceeded && result.Type != events.ProvisioningFailed &&
		result.Type != events.ProvisioningDeadLettered {
		w.metrics.result(typ, "permanent_error")
		return events.Permanentf("whmcs write-back: %q is not a result event type", result.Type)
	}
	if strings.TrimSpace(result.ID) == "" {
		w.metrics.result(typ, "permanent_error")
		return events.Permanentf("whmcs write-back: result event without an id")
	}
	p, err := result.Payload()
	if err != nil {
		w.metrics.result(typ, "permanent_error")
		return events.AsPermanent(fmt.Errorf("whmcs write-back of %s: %w", result.ID, err))
	}
	d := p.(*events.ResultData)
	log := w.log.With(zap.String("result_id", result.ID), zap.String("type", typ),
		zap.String("action", string(d.Action)), zap.String("provider", d.Provider),
		zap.Int("service_id", d.ServiceID), zap.Int("client_id", d.ClientID))

	steps := w.plan(result, d, log)
	if len(steps) == 0 {
		w.metrics.result(typ, "nothing_to_do")
		log.Debug("result needs no write-back")
		return nil
	}
	err = w.applySteps(ctx, result, steps, log)
	switch {
	case err == nil:
	case errors.Is(err, errDuplicate):
		w.metrics.result(typ, "duplicate")
		log.Debug("result already written back")
		return nil
	case events.ClassOf(err) == events.Permanent:
		w.metrics.result(typ, "permanent_error")
		return err
	default:
		w.metrics.result(typ, "transient_error")
		return err
	}
	w.metrics.result(typ, "applied")
	log.Info("result written back to WHMCS")
	return nil
}

var errDuplicate = errors.New("already written back")

// inDoubtAfter is how old a "started" mark must be before a retry treats the
// call as lost (its worker crashed or timed out) rather than still in flight
// at another worker. It is longer than any WHMCS call may take.
const inDoubtAfter = time.Minute

func (w *Writer) applySteps(ctx context.Context, result events.Envelope, steps []step, log *zap.Logger) error {
	key := RecordKey(result.ID)
	rec, rev, err := w.load(ctx, key)
	if err != nil {
		return err
	}
	if rec.Complete {
		return errDuplicate
	}
	rec.V, rec.Type = 1, result.Type
	for i, st := range steps {
		last := i == len(steps)-1
		if rec.has(st.name) {
			if last && !rec.Complete {
				rec.Complete = true
				if rev, err = w.save(ctx, key, rec, rev); err != nil {
					return err
				}
			}
			continue
		}
		if st.once && rec.Started == st.name {
			if age := w.now().Sub(rec.StartedAt); age < inDoubtAfter {
				// Another worker is making this call right now.
				return events.AsTransient(fmt.Errorf("whmcs write-back: %s in progress at another worker", st.api), inDoubtAfter-age)
			}
			// An earlier attempt sent this call and did not learn (or did
			// not record) its outcome.
			done, canTell := false, st.verify != nil
			if canTell {
				found, err := st.verify(ctx)
				w.metrics.call("GetActivityLog", err)
				switch {
				case err == nil:
					done = found
				case events.ClassOf(err) == events.Permanent && !errors.Is(err, ErrAuth):
					// e.g. the API role may not call GetActivityLog.
					log.Warn("cannot look the earlier call up", zap.String("call", st.api), zap.Error(err))
					canTell = false
				default:
					return err
				}
			}
			if !canTell {
				// No WHMCS API lists client notes: never add a second one.
				w.metrics.Calls.WithLabelValues(st.api, "skipped_in_doubt").Inc()
				log.Warn("an earlier attempt sent this WHMCS call without learning its outcome; not repeating it (at most once)",
					zap.String("call", st.api))
				rec.Skipped = append(rec.Skipped, st.name)
				rec.Started = ""
				rec.Complete = last
				if rev, err = w.save(ctx, key, rec, rev); err != nil {
					return err
				}
				continue
			}
			if done {
				rec.Done = append(rec.Done, st.name)
				rec.Started = ""
				rec.Complete = last
				if rev, err = w.save(ctx, key, rec, rev); err != nil {
					return err
				}
				continue
			}
		}
		if st.once {
			// Claim the call (compare-and-set): of several workers only one
			// goes on to make it.
			rec.Started, rec.StartedAt = st.name, w.now().UTC()
			if rev, err = w.save(ctx, key, rec, rev); err != nil {
				return err
			}
		}
		if err := st.run(ctx); err != nil {
			if st.once && errors.Is(err, ErrOutcomeUnknown) {
				// The call is over and its outcome unknown: a retry must
				// treat it as in doubt now, not as in flight elsewhere.
				rec.StartedAt = time.Time{}
				if r, serr := w.save(ctx, key, rec, rev); serr == nil {
					rev = r
				}
			}
			if st.once && !errors.Is(err, ErrOutcomeUnknown) {
				// WHMCS answered (and refused), or the request never left:
				// the call did not take effect and may be made again.
				rec.Started = ""
				if r, serr := w.save(ctx, key, rec, rev); serr == nil {
					rev = r
				} else {
					log.Debug("could not clear the started mark", zap.Error(serr))
				}
			}
			return err
		}
		rec.Done = append(rec.Done, st.name)
		rec.Started = ""
		rec.Complete = last
		if rev, err = w.save(ctx, key, rec, rev); err != nil {
			return err
		}
	}
	return nil
}

// RecordKey is the key-value key of a result event's write-back record.
func RecordKey(resultID string) string {
	sum := sha256.Sum256([]byte(resultID))
	return "writeback." + hex.EncodeToString(sum[:])
}

// marker is a short tag, unique per result event, put in the activity log
// line so that a retry can find out whether the line was written.
func marker(resultID string) string {
	sum := sha256.Sum256([]byte("hookworker-writeback:" + resultID))
	return "[hw:" + hex.EncodeToString(sum[:6]) + "]"
}

func (w *Writer) load(ctx context.Context, key string) (record, uint64, error) {
	var rec record
	e, err := w.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		return rec, 0, nil
	case err != nil:
		return rec, 0, events.AsTransient(fmt.Errorf("whmcs write-back: read record: %w", err), 0)
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		// A record we cannot read: start over rather than block forever.
		w.log.Warn("unreadable write-back record; starting over", zap.String("key", key), zap.Error(err))
		return record{}, e.Revision(), nil
	}
	return rec, e.Revision(), nil
}

// save writes rec with compare-and-set on rev (0: the key must not exist),
// so that two workers handling the same result do not both proceed.
func (w *Writer) save(ctx context.Context, key string, rec record, rev uint64) (uint64, error) {
	rec.Updated = w.now().UTC()
	b, err := json.Marshal(rec)
	if err != nil {
		return rev, events.AsPermanent(err)
	}
	var n uint64
	if rev == 0 {
		n, err = w.kv.Create(ctx, key, b)
	} else {
		n, err = w.kv.Update(ctx, key, b, rev)
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return rev, events.AsTransient(errors.New("whmcs write-back: another worker is writing back the same result"), time.Second)
	case err != nil:
		return rev, events.AsTransient(fmt.Errorf("whmcs write-back: write record: %w", err), 0)
	}
	return n, nil
}

// plan lists the WHMCS changes result d asks for, in order.
func (w *Writer) plan(env events.Envelope, d *events.ResultData, log *zap.Logger) []step {
	mk := marker(env.ID)
	var steps []step
	logStep := func(line string) step {
		line = line + " " + mk
		return step{name: "log", api: "LogActivity", once: true,
			run: func(ctx context.Context) error {
				err := w.c.LogActivity(ctx, d.ClientID, line)
				w.metrics.call("LogActivity", err)
				return err
			},
			verify: func(ctx context.Context) (bool, error) { return w.c.activityContains(ctx, mk) },
		}
	}
	noteStep := func(note string) step {
		return step{name: "note", api: "AddClientNote", once: true,
			run: func(ctx context.Context) error {
				err := w.c.AddClientNote(ctx, d.ClientID, note, true)
				w.metrics.call("AddClientNote", err)
				return err
			},
		}
	}

	switch {
	case env.Type == events.ProvisioningSucceeded:
		if d.ServiceID > 0 && d.Action.IsSignup() {
			steps = append(steps, w.productStep(d, log))
		}
		var unstored []string
		if len(d.WriteBack) > 0 {
			fields, missing := w.fieldIDs(d.WriteBack)
			unstored = missing
			if len(fields) > 0 && d.ClientID > 0 {
				steps = append(steps, step{name: "fields", api: "UpdateClient",
					run: func(ctx context.Context) error {
						err := w.c.UpdateClientCustomFields(ctx, d.ClientID, fields)
						w.metrics.call("UpdateClient", err)
						return err
					}})
			} else if len(fields) > 0 {
				unstored = append(unstored, namesOf(d.WriteBack)...)
			}
			if len(unstored) > 0 {
				sort.Strings(unstored)
				unstored = slices.Compact(unstored)
				log.Warn("provider returned client custom field values that cannot be stored in WHMCS (values not logged)",
					zap.Strings("fields", unstored))
				if d.ClientID > 0 {
					steps = append(steps, noteStep(unstoredNote(d, unstored)))
				}
			}
		}
		line := fmt.Sprintf("hookworker: %s succeeded", subject(d))
		if d.Reference != "" {
			line += ": " + d.Reference
		}
		line += " (" + scope(d) + ")"
		if d.AlreadyDone {
			line += " (already in place)"
		}
		if len(unstored) > 0 {
			line += fmt.Sprintf(" (not stored: %s)", quoteAll(unstored))
		}
		steps = append(steps, logStep(line))

	case env.Type == events.ProvisioningDeadLettered,
		env.Type == events.ProvisioningFailed && (!d.WillRetry || d.ErrorClass == events.Permanent):
		verb := "failed permanently"
		if env.Type == events.ProvisioningDeadLettered {
			verb = "was dead-lettered"
		}
		if d.ClientID > 0 {
			steps = append(steps, noteStep(failureNote(env.Type, d)))
		}
		steps = append(steps, logStep(fmt.Sprintf("hookworker: %s %s: %s (%s)", subject(d), verb, clip(errText(d), 300), scope(d))))

	case env.Type == events.ProvisioningFailed && d.Attempt <= 1:
		// A transient failure that will be retried: one activity line for
		// the first attempt only; the final outcome gets its own result.
		steps = append(steps, logStep(fmt.Sprintf("hookworker: %s failed, will retry: %s (%s)", subject(d), clip(errText(d), 300), scope(d))))
	}
	return steps
}

// productStep activates the service of a successful signup and records the
// provider's reference on it.
func (w *Writer) productStep(d *events.ResultData, log *zap.Logger) step {
	return step{name: "product", api: "UpdateClientProduct", run: func(ctx context.Context) error {
		info, err := w.c.Service(ctx, d.ServiceID)
		w.metrics.call("GetClientsProducts", err)
		if err != nil {
			return err
		}
		fields := url.Values{}
		switch info.Status {
		case "Pending", "":
			fields.Set("status", "Active")
		case "Active":
		default:
			// Suspended, Terminated, Cancelled, Fraud, Completed: the
			// service moved on since the signup; a late result must not
			// bring it back to Active.
			log.Info("service is no longer pending; its status is left as it is", zap.String("whmcs_status", info.Status))
		}
		if d.Reference != "" {
			if usernameProviders[d.Provider] {
				if info.Username != d.Reference {
					fields.Set("serviceusername", d.Reference)
				}
			} else {
				line := fmt.Sprintf("%s reference: %s", d.Provider, d.Reference)
				if !strings.Contains(info.Notes, line) {
					notes := strings.TrimRight(info.Notes, "\r\n ")
					if notes != "" {
						notes += "\n"
					}
					fields.Set("notes", notes+line)
				}
			}
		}
		if len(fields) == 0 {
			return nil
		}
		err = w.c.UpdateClientProduct(ctx, d.ServiceID, fields)
		w.metrics.call("UpdateClientProduct", err)
		return err
	}}
}

// fieldIDs maps WriteBack field names to configured client custom field
// ids; names without an id are returned in missing.
func (w *Writer) fieldIDs(wb map[string]string) (fields map[string]string, missing []string) {
	fields = map[string]string{}
	for name, v := range wb {
		id := 0
		if strings.EqualFold(strings.TrimSpace(name), PassKeyField) {
			id = w.c.cfg.PassKeyFieldID
		}
		if id <= 0 {
			missing = append(missing, name)
			continue
		}
		fields[strconv.Itoa(id)] = v
	}
	return fields, missing
}

func namesOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// subject names what was done: "<action> at <provider>", or the source
// event when the result names no operation (a malformed event).
func subject(d *events.ResultData) string {
	if d.Action == "" {
		t := string(d.SourceEventType)
		if t == "" {
			t = "event"
		}
		return fmt.Sprintf("%s %s", t, d.SourceEventID)
	}
	p := d.Provider
	if p == "" {
		p = "an unknown provider"
	}
	return fmt.Sprintf("%s at %s", d.Action, p)
}

func scope(d *events.ResultData) string {
	switch {
	case d.ServiceID > 0:
		return fmt.Sprintf("service #%d", d.ServiceID)
	case d.ClientID > 0:
		return fmt.Sprintf("client #%d", d.ClientID)
	}
	return "no service"
}

func errText(d *events.ResultData) string {
	if strings.TrimSpace(d.Error) == "" {
		return "no error message"
	}
	return strings.Join(strings.Fields(d.Error), " ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

func failureNote(t events.Type, d *events.ResultData) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hookworker: %s failed for %s: %s", subject(d), scope(d), clip(errText(d), 1500))
	if d.ErrorClass != "" {
		fmt.Fprintf(&b, " (%s error)", d.ErrorClass)
	}
	fmt.Fprintf(&b, ".\nSource event: %s", d.SourceEventID)
	if d.SourceEventType != "" {
		fmt.Fprintf(&b, " (%s)", d.SourceEventType)
	}
	if d.Attempt > 0 {
		fmt.Fprintf(&b, ", attempt %d", d.Attempt)
	}
	b.WriteString(".\n")
	if t == events.ProvisioningDeadLettered {
		b.WriteString("The event is in the hookworker dead-letter stream: fix the cause, then replay it.")
	} else {
		b.WriteString("hookworker will not retry it: fix the cause, then replay the event.")
	}
	return strings.TrimSpace(b.String())
}

func unstoredNote(d *events.ResultData, names []string) string {
	return fmt.Sprintf("hookworker: %s succeeded for %s and returned a value for the client custom field(s) %s, "+
		"which was not stored because no field id is configured (%s_PASSKEY_FIELD_ID). "+
		"Retrieve it from %s and enter it on the client's profile.",
		subject(d), scope(d), quoteAll(names), EnvPrefix, d.Provider)
}
