package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// SpecVersion is the envelope version this package reads and writes. A
// decoder accepts every version whose major part matches.
const SpecVersion = "1.0"

// Type names an event. Inbound types come from WHMCS hooks; result types are
// published by the worker.
type Type string

// Inbound event types, one per WHMCS hook point hookworker listens on.
const (
	ClientAdded            Type = "client.added"             // ClientAdd
	OrderAccepted          Type = "order.accepted"           // AcceptOrder
	InvoicePaid            Type = "invoice.paid"             // InvoicePaid
	ServiceRenewalPaid     Type = "service.renewal_paid"     // InvoicePaid, one per renewal item
	ServiceSuspended       Type = "service.suspended"        // AfterModuleSuspend
	ServiceUnsuspended     Type = "service.unsuspended"      // AfterModuleUnsuspend
	ServiceTerminated      Type = "service.terminated"       // AfterModuleTerminate
	ServicePasswordChanged Type = "service.password_changed" // AfterModuleChangePassword
	ServicePackageChanged  Type = "service.package_changed"  // AfterModuleChangePackage
)

// Result event types, published by the worker for every outcome.
const (
	ProvisioningSucceeded    Type = "provisioning.succeeded"
	ProvisioningFailed       Type = "provisioning.failed"
	ProvisioningDeadLettered Type = "provisioning.dead_lettered"
)

// InboundTypes lists every type a WHMCS hook may publish, in a stable order.
func InboundTypes() []Type {
	return []Type{ClientAdded, OrderAccepted, InvoicePaid, ServiceRenewalPaid,
		ServiceSuspended, ServiceUnsuspended, ServiceTerminated,
		ServicePasswordChanged, ServicePackageChanged}
}

// IsInbound reports whether t is a type a WHMCS hook publishes.
func (t Type) IsInbound() bool {
	for _, k := range InboundTypes() {
		if t == k {
			return true
		}
	}
	return false
}

// Envelope is the one JSON document every event travels in. ID is the
// idempotency key: deterministic from WHMCS identifiers, so a hook that fires
// twice publishes the same ID and JetStream drops the second copy.
type Envelope struct {
	ID          string          `json:"id"`
	Type        Type            `json:"type"`
	SpecVersion string          `json:"spec_version"`
	OccurredAt  time.Time       `json:"occurred_at"`
	Source      string          `json:"source"`
	Data        json.RawMessage `json:"data"`
}

// ErrMalformed is matched (errors.Is) by every error Decode returns: the
// message can never be processed, so it is a permanent failure.
var ErrMalformed = errors.New("malformed event")

// FieldError says which field of an event is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

// Error says which field is wrong and why.
func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Reason) }

// Is makes every FieldError match ErrMalformed.
func (e *FieldError) Is(target error) bool { return target == ErrMalformed }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// NewEnvelope builds a valid envelope around data. It fails only if data
// cannot be encoded or the result does not validate.
func NewEnvelope(id string, t Type, source string, occurred time.Time, data any) (Envelope, error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s data: %w", t, err)
	}
	e := Envelope{ID: id, Type: t, SpecVersion: SpecVersion, OccurredAt: occurred.UTC(), Source: source, Data: raw}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// Validate checks the envelope fields and, for a known type, its data. The
// error names the first wrong field and matches ErrMalformed.
func (e Envelope) Validate() error {
	_, err := e.validate()
	return err
}

// validate is Validate returning the decoded payload (what Payload returns).
func (e Envelope) validate() (any, error) {
	switch {
	case strings.TrimSpace(e.ID) == "":
		return nil, fieldErr("id", "is required")
	case len(e.ID) > 512:
		return nil, fieldErr("id", "is longer than 512 bytes")
	case e.Type == "":
		return nil, fieldErr("type", "is required")
	case e.SpecVersion == "":
		return nil, fieldErr("spec_version", "is required")
	case majorOf(e.SpecVersion) != majorOf(SpecVersion):
		return nil, fieldErr("spec_version", "%q is not supported (this worker reads %s)", Clip(e.SpecVersion), SpecVersion)
	case e.OccurredAt.IsZero():
		return nil, fieldErr("occurred_at", "is required (RFC 3339 time)")
	case strings.TrimSpace(e.Source) == "":
		return nil, fieldErr("source", "is required (the WHMCS instance name)")
	case len(e.Source) > MaxSourceLen:
		return nil, fieldErr("source", "%q is longer than %d bytes", Clip(e.Source), MaxSourceLen)
	case !validToken(e.Source):
		return nil, fieldErr("source", "%q may hold only letters, digits, '-' and '_'", Clip(e.Source))
	case len(e.Data) == 0 || bytes.Equal(bytes.TrimSpace(e.Data), []byte("null")):
		return nil, fieldErr("data", "is required")
	}
	if !e.Type.IsInbound() && !e.Type.isResult() {
		return nil, fieldErr("type", "unknown event type %q", Clip(string(e.Type)))
	}
	return e.Payload()
}

func (t Type) isResult() bool {
	return t == ProvisioningSucceeded || t == ProvisioningFailed || t == ProvisioningDeadLettered
}

func majorOf(v string) string {
	major, _, _ := strings.Cut(v, ".")
	return major
}

// validToken reports whether s is safe as one NATS subject token.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		ok := r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Decode parses and validates one event. Unknown JSON fields are ignored so
// that newer hooks can add fields; missing or wrong fields are not. Every error
// matches ErrMalformed and names the field at fault.
func Decode(b []byte) (Envelope, error) {
	e, _, err := DecodeWithPayload(b)
	return e, err
}

// DecodeWithPayload is Decode also returning the event's validated data,
// as Payload would return it, so that a caller needing both decodes the
// data once. The payload is nil when err is not.
func DecodeWithPayload(b []byte) (Envelope, any, error) {
	var e Envelope
	if len(bytes.TrimSpace(b)) == 0 {
		return e, nil, fmt.Errorf("%w: empty message", ErrMalformed)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return e, nil, fieldErr(te.Field, "has JSON type %s, want %s", te.Value, te.Type)
		}
		var pe *time.ParseError
		if errors.As(err, &pe) {
			return e, nil, fieldErr("occurred_at", "is not an RFC 3339 time: %v", pe)
		}
		return e, nil, fmt.Errorf("%w: not a JSON event envelope: %v", ErrMalformed, err)
	}
	if field, bad := invalidText(b); bad {
		return e, nil, fieldErr(field, "is not valid UTF-8 text (invalid bytes or a lone surrogate escape): refusing to replace them with U+FFFD")
	}
	p, err := e.validate()
	if err != nil {
		return e, nil, err
	}
	return e, p, nil
}

// Payload decodes Data into the struct for the envelope's type and validates
// it: *ClientAddedData, *OrderAcceptedData, *InvoicePaidData,
// *RenewalPaidData, *ServiceEventData or *ResultData.
func (e Envelope) Payload() (any, error) {
	var p interface{ validate() error }
	switch e.Type {
	case ClientAdded:
		p = new(ClientAddedData)
	case OrderAccepted:
		p = new(OrderAcceptedData)
	case InvoicePaid:
		p = new(InvoicePaidData)
	case ServiceRenewalPaid:
		p = new(RenewalPaidData)
	case ServiceSuspended, ServiceUnsuspended, ServiceTerminated, ServicePasswordChanged, ServicePackageChanged:
		p = new(ServiceEventData)
	case ProvisioningSucceeded, ProvisioningFailed, ProvisioningDeadLettered:
		p = new(ResultData)
	default:
		return nil, fieldErr("type", "unknown event type %q", Clip(string(e.Type)))
	}
	if err := json.Unmarshal(e.Data, p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fieldErr("data."+te.Field, "has JSON type %s, want %s", te.Value, te.Type)
		}
		return nil, fieldErr("data", "is not a JSON object for %s: %v", e.Type, err)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// maxClip is how much of an input value an error message quotes.
const maxClip = 64

// Clip returns s whole when it is at most 64 bytes, else its first 64
// bytes (cut on a character boundary) and how long it was, so that an error
// quoting an input value stays short whatever the input.
func Clip(s string) string {
	if len(s) <= maxClip {
		return s
	}
	n := maxClip
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// invalidText reports the first string (key or value) of the JSON document
// b that encoding/json would silently change into U+FFFD: one holding bytes
// that are not UTF-8, or a \u escape of a lone surrogate. field is its path
// as FieldError names it ("source", "data.services[0].domain"). The walk
// runs only when a quick look finds something suspicious, so a clean
// message costs one UTF-8 scan.
func invalidText(b []byte) (field string, bad bool) {
	if utf8.Valid(b) && !bytes.Contains(b, []byte(`\ud`)) && !bytes.Contains(b, []byte(`\uD`)) {
		return "", false
	}
	type frame struct {
		obj     bool
		key     string
		idx     int
		wantKey bool
	}
	var stack []*frame
	path := func() string {
		var sb strings.Builder
		for _, f := range stack {
			if f.obj {
				if sb.Len() > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(Clip(f.key))
			} else {
				sb.WriteString("[" + strconv.Itoa(f.idx) + "]")
			}
		}
		if sb.Len() == 0 {
			return "(document)"
		}
		return sb.String()
	}
	changed := func(seg []byte, tok any) bool {
		if !utf8.Valid(seg) {
			return true
		}
		s, ok := tok.(string)
		if !ok || !strings.ContainsRune(s, utf8.RuneError) {
			return false
		}
		// A U+FFFD the sender wrote is fine; one the decoder made is not.
		return !bytes.Contains(seg, []byte("\uFFFD")) && !bytes.Contains(bytes.ToLower(seg), []byte(`\ufffd`))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	var prev int64
	for {
		tok, err := dec.Token()
		if err != nil {
			// The document did not decode (reported elsewhere) or ended; any
			// invalid bytes past the last token are outside every string.
			return "", false
		}
		end := dec.InputOffset()
		seg := b[prev:end]
		prev = end
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if top != nil && !top.obj {
					top.idx++
				}
				stack = append(stack, &frame{obj: d == '{', idx: -1, wantKey: d == '{'})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 && stack[len(stack)-1].obj {
					stack[len(stack)-1].wantKey = true
				}
			}
			continue
		}
		if top != nil && top.obj && top.wantKey {
			top.key, _ = tok.(string)
			top.wantKey = false
			if changed(seg, tok) {
				return path(), true
			}
			continue
		}
		if top != nil && !top.obj {
			top.idx++
		}
		if changed(seg, tok) {
			return path(), true
		}
		if top != nil && top.obj {
			top.wantKey = true
		}
	}
}
