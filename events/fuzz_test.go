package events_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookworker/hookworker/events"
)

// Seed corpora: testdata/fuzz/<target>/ (checked in), plus the seeds added
// here. CI runs every target for a few seconds (.ci/run).

func FuzzDecode(f *testing.F) {
	for _, typ := range events.InboundTypes() {
		env, err := events.Sample(typ, "main")
		if err != nil {
			f.Fatal(err)
		}
		b, _ := json.Marshal(env)
		f.Add(b)
	}
	f.Add([]byte(`{nope`))
	f.Add(orderWith("ma\xffin", "x"))
	f.Add(orderWith("main", `x\ud800y`))
	f.Add(orderWith(strings.Repeat("s", 100), "x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := events.Decode(b)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) || events.ClassOf(err) != events.Permanent {
				t.Fatalf("error %v: want a permanent ErrMalformed", err)
			}
			if n := len(err.Error()); n > 1024+len(b)/8 && n > 2048 {
				t.Fatalf("error of %d bytes for a %d-byte message", n, len(b))
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("decoded a message that is not UTF-8: %q", b)
		}
		subj := events.InboundSubject(env.Source, env.Type)
		src, typ, ok := events.ParseInboundSubject(subj)
		if !ok || src != env.Source || typ != env.Type {
			t.Fatalf("the subject %q of a decoded event does not parse back: %q %q %v", subj, src, typ, ok)
		}
		if len(subj) > 200 {
			t.Fatalf("subject of %d bytes", len(subj))
		}
		re, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		again, err := events.Decode(re)
		if err != nil || again.ID != env.ID || again.Type != env.Type || again.Source != env.Source {
			t.Fatalf("re-encoded event does not decode the same: %v", err)
		}
	})
}

func FuzzParseInboundSubject(f *testing.F) {
	for _, s := range []string{"whmcs.main.order.accepted", "whmcs.chaos", "whmcs.main.order..accepted", "whmcs.main.order.accepted.", "whmcs..x", "whmcs.a.b.c.d.e.f", "hookworker.results.failed"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, subj string) {
		src, typ, ok := events.ParseInboundSubject(subj)
		if !ok {
			if src != "" || typ != "" {
				t.Fatalf("not ok but returned %q %q", src, typ)
			}
			return
		}
		if events.InboundSubject(src, typ) != subj {
			t.Fatalf("%q parsed as %q %q, which is another subject", subj, src, typ)
		}
		if !events.ValidSource(src) || !events.ValidSubjectType(string(typ)) {
			t.Fatalf("%q parsed into invalid tokens %q %q", subj, src, typ)
		}
		if got, want := events.DeadLetterSubject(src, typ), events.DeadLetterPrefix+"."+src+"."+string(typ); got != want {
			t.Fatalf("dead-letter subject %q, want %q", got, want)
		}
	})
}

func FuzzDeadLetterSubject(f *testing.F) {
	f.Add("main", "order.accepted")
	f.Add("main", "order..accepted")
	f.Add("ma in", "order.accepted.")
	f.Add(strings.Repeat("s", 5000), strings.Repeat("t", 5000))
	f.Add("ma\xffin", "order.*")
	f.Fuzz(func(t *testing.T, source, typ string) {
		s := events.DeadLetterSubject(source, events.Type(typ))
		checkSubject(t, s)
		if !strings.HasPrefix(s, events.DeadLetterPrefix+".") || len(s) > 150 {
			t.Fatalf("dead-letter subject %q", s)
		}
		if events.ValidSource(source) && events.ValidSubjectType(typ) && s != events.DeadLetterPrefix+"."+source+"."+typ {
			t.Fatalf("valid tokens %q %q replaced: %q", source, typ, s)
		}
	})
}

// checkSubject fails unless s is a subject a NATS client may publish on and
// a stream may capture: non-empty tokens of letters, digits, '-' and '_'.
func checkSubject(t *testing.T, s string) {
	t.Helper()
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			t.Fatalf("subject %q has an empty token", s)
		}
		for _, r := range tok {
			if !(r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
				t.Fatalf("subject %q holds %q", s, r)
			}
		}
	}
}
