package providers

import (
	"bytes"
	"encoding/json"
	"html"
	"net/url"
	"strings"

	"github.com/hookworker/hookworker/events"
)

// Redacted is what Secrets.Scrub puts where a secret was.
const Redacted = "[REDACTED]"

// MinSecretLen is the shortest value Secrets scrubs: shorter values would
// scrub ordinary text, and no provider accepts a password or key that short.
const MinSecretLen = 4

// Secrets are the secret values one request carried (admin password, API
// key, a customer's password). Scrub removes every one of them from text a
// reply brought back, in every form a server may echo it: as sent, URL
// query- or path-encoded, JSON-escaped (with or without HTML escaping) and
// HTML-escaped; and when the text is JSON whose decoded strings still hold
// a secret (an escape no form above covers, such as "\u0041"), the JSON is
// re-encoded with those strings scrubbed. The zero value scrubs nothing.
type Secrets struct {
	forms []string // every encoded form of every secret, longest first
	raw   []string
}

// NewSecrets returns Secrets for values; values shorter than MinSecretLen
// are ignored.
func NewSecrets(values ...string) Secrets {
	var s Secrets
	for _, v := range values {
		s = s.With(v)
	}
	return s
}

// With returns s plus value (ignored when shorter than MinSecretLen).
func (s Secrets) With(value string) Secrets {
	if len(value) < MinSecretLen {
		return s
	}
	out := Secrets{raw: append(append([]string(nil), s.raw...), value), forms: append([]string(nil), s.forms...)}
	add := func(f string) {
		if len(f) < MinSecretLen {
			return
		}
		for _, have := range out.forms {
			if have == f {
				return
			}
		}
		out.forms = append(out.forms, f)
	}
	add(value)
	add(url.QueryEscape(value))
	add(url.PathEscape(value))
	add(html.EscapeString(value))
	add(jsonEscaped(value, true))
	add(jsonEscaped(value, false))
	// Longest first, so that a form containing another is replaced whole.
	for i := 1; i < len(out.forms); i++ {
		for j := i; j > 0 && len(out.forms[j]) > len(out.forms[j-1]); j-- {
			out.forms[j], out.forms[j-1] = out.forms[j-1], out.forms[j]
		}
	}
	return out
}

// Empty reports whether s scrubs nothing.
func (s Secrets) Empty() bool { return len(s.raw) == 0 }

func jsonEscaped(v string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(v)
	out := strings.TrimSpace(b.String())
	return strings.TrimSuffix(strings.TrimPrefix(out, `"`), `"`)
}

// Scrub returns text without any of the secrets.
func (s Secrets) Scrub(text string) string {
	if s.Empty() || text == "" {
		return text
	}
	for _, f := range s.forms {
		text = strings.ReplaceAll(text, f, Redacted)
	}
	if !s.inJSON(text) {
		return text
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return text
	}
	b, err := json.Marshal(s.scrubValue(v))
	if err != nil {
		return Redacted
	}
	return string(b)
}

// ScrubBytes is Scrub for a reply body.
func (s Secrets) ScrubBytes(body []byte) []byte {
	if s.Empty() || len(body) == 0 {
		return body
	}
	out := s.Scrub(string(body))
	if out == string(body) {
		return body
	}
	return []byte(out)
}

// inJSON reports whether text is JSON one of whose decoded strings (or
// object keys) still holds a secret.
func (s Secrets) inJSON(text string) bool {
	t := strings.TrimSpace(text)
	if t == "" || !strings.ContainsAny(t[:1], `{["`) || !strings.Contains(t, `\`) || !json.Valid([]byte(t)) {
		return false
	}
	var v any
	if json.Unmarshal([]byte(t), &v) != nil {
		return false
	}
	found := false
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			found = found || s.holds(x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for k, e := range x {
				found = found || s.holds(k)
				walk(e)
			}
		}
	}
	walk(v)
	return found
}

func (s Secrets) holds(x string) bool {
	for _, r := range s.raw {
		if strings.Contains(x, r) {
			return true
		}
	}
	return false
}

func (s Secrets) scrubValue(v any) any {
	switch x := v.(type) {
	case string:
		for _, r := range s.raw {
			x = strings.ReplaceAll(x, r, Redacted)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = s.scrubValue(e)
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[s.scrubValue(k).(string)] = s.scrubValue(e)
		}
		return out
	}
	return v
}

// ScrubError returns err, or, when its text holds a secret, a copy with the
// same class and Retry-After whose text is scrubbed. The reply attached
// with events.WithReply is scrubbed too.
func (s Secrets) ScrubError(err error) error {
	if err == nil || s.Empty() {
		return err
	}
	return scrubbedError(s, err)
}

// scrubbed is an error whose text has had secrets removed; it keeps the
// original for errors.Is and errors.As.
type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

func scrubbedError(s Secrets, err error) error {
	msg, reply := err.Error(), events.ReplyOf(err)
	smsg, sreply := s.Scrub(msg), s.Scrub(reply)
	if smsg == msg && sreply == reply {
		return err
	}
	return &events.ClassifiedError{Class: events.ClassOf(err), RetryAfter: events.RetryAfterOf(err), Reply: sreply,
		Err: &scrubbed{msg: smsg, err: err}}
}
