package events_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
)

const orderTmpl = `{"id":"whmcs:main:AcceptOrder:5","type":"order.accepted","spec_version":"1.0","occurred_at":"2026-11-22T10:00:00Z","source":"SRC","data":{"order_id":5,"client":{"id":7,"email":"a@b.c"},"services":[{"service_id":9,"product_id":1,"domain":"DOMAIN"}]}}`

func orderWith(source, domain string) []byte {
	return []byte(strings.NewReplacer("SRC", source, "DOMAIN", domain).Replace(orderTmpl))
}

// Issue 10, finding 4: invalid UTF-8 used to become U+FFFD silently, and an
// order was created for the mangled domain.
func TestDecodeRejectsTextThatIsNotUTF8(t *testing.T) {
	for _, tc := range []struct {
		name, source, domain, field string
	}{
		{"invalid byte in domain", "main", "b\xffckup.example", "data.services[0].domain"},
		{"truncated sequence in domain", "main", "caf\xc3", "data.services[0].domain"},
		{"lone surrogate escape in domain", "main", `x\ud800y`, "data.services[0].domain"},
		{"invalid byte in source", "ma\xffin", "example.com", "source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.Decode(orderWith(tc.source, tc.domain))
			var fe *events.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("error %v does not name field %q", err, tc.field)
			}
			if !errors.Is(err, events.ErrMalformed) || events.ClassOf(err) != events.Permanent {
				t.Errorf("error %v: want a permanent ErrMalformed", err)
			}
		})
	}
	for _, ok := range []string{"bücher.example", "\xef\xbf\xbd.example", `\ufffd.example`, `\ud83d\ude00.example`} {
		if _, err := events.Decode(orderWith("main", ok)); err != nil {
			t.Errorf("domain %q: %v", ok, err)
		}
	}
}

func TestDecodeBoundsTheSourceAndQuotesLittle(t *testing.T) {
	long := strings.Repeat("s", 5000)
	_, err := events.Decode(orderWith(long, "example.com"))
	var fe *events.FieldError
	if !errors.As(err, &fe) || fe.Field != "source" {
		t.Fatalf("error %v does not name the source", err)
	}
	if len(err.Error()) > 300 {
		t.Errorf("error quotes %d bytes of input", len(err.Error()))
	}
	b := []byte(strings.Replace(string(orderWith("main", "x")), `"order.accepted"`, `"`+strings.Repeat("t.", 2500)+`"`, 1))
	if _, err := events.Decode(b); err == nil || len(err.Error()) > 300 {
		t.Errorf("unknown long type: %v", err)
	}
}

func TestParseInboundSubject(t *testing.T) {
	for _, tc := range []struct {
		subj, source string
		typ          events.Type
		ok           bool
	}{
		{"whmcs.main.order.accepted", "main", events.OrderAccepted, true},
		{"whmcs.eu-2.service.renewal_paid", "eu-2", events.ServiceRenewalPaid, true},
		{"whmcs.chaos", "", "", false},
		{"whmcs.main.", "", "", false},
		{"whmcs..order.accepted", "", "", false},
		{"whmcs.main.order..accepted", "", "", false},
		{"whmcs.main.order.accepted.", "", "", false},
		{"whmcs." + strings.Repeat("m", 65) + ".order.accepted", "", "", false},
		{"hookworker.results.failed", "", "", false},
	} {
		src, typ, ok := events.ParseInboundSubject(tc.subj)
		if src != tc.source || typ != tc.typ || ok != tc.ok {
			t.Errorf("%q: got %q %q %v", tc.subj, src, typ, ok)
		}
	}
}

// Issue 10, findings 1 and 2: a ~5,000-byte type made a dead-letter subject
// longer than the NATS protocol line (the connection closed for good), and
// an empty token made one that no stream captures.
func TestDeadLetterSubjectIsBuiltFromValidTokens(t *testing.T) {
	for _, tc := range []struct {
		source string
		typ    events.Type
		want   string
	}{
		{"main", events.OrderAccepted, "hookworker.dlq.main.order.accepted"},
		{"main", "order.exploded", "hookworker.dlq.main.order.exploded"},
		{"main", events.Type(strings.Repeat("x", 5000)), "hookworker.dlq.main.unknown"},
		{strings.Repeat("s", 5000), events.OrderAccepted, "hookworker.dlq.unknown.order.accepted"},
		{"main", "order..accepted", "hookworker.dlq.main.unknown"},
		{"main", "order.accepted.", "hookworker.dlq.main.unknown"},
		{"main", ".order", "hookworker.dlq.main.unknown"},
		{"main", "order.*", "hookworker.dlq.main.unknown"},
		{"main", "order.>", "hookworker.dlq.main.unknown"},
		{"main", "a.b.c.d.e", "hookworker.dlq.main.unknown"},
		{"ma\ufffdin", "order exploded", "hookworker.dlq.unknown.unknown"},
		{"", "", "hookworker.dlq.unknown.unknown"},
	} {
		if got := events.DeadLetterSubject(tc.source, tc.typ); got != tc.want {
			t.Errorf("DeadLetterSubject(%q, %q) = %q, want %q", events.Clip(tc.source), events.Clip(string(tc.typ)), got, tc.want)
		}
	}
}

func TestClip(t *testing.T) {
	if events.Clip("short") != "short" {
		t.Fatal(events.Clip("short"))
	}
	got := events.Clip(strings.Repeat("é", 100))
	if !strings.HasSuffix(got, "…(200 bytes)") || len(got) > 64+20 {
		t.Fatalf("Clip = %q", got)
	}
	if !strings.HasPrefix(got, strings.Repeat("é", 32)) {
		t.Fatalf("Clip cut a character: %q", got)
	}
}
