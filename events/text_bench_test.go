package events

import (
	"encoding/json"
	"testing"
)

// The UTF-8 check Decode makes on every message, against Decode itself: a
// clean message costs one utf8.Valid scan and two byte searches.
func benchOrder(b *testing.B) []byte {
	b.Helper()
	env, err := Sample(OrderAccepted, "main")
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(env)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkDecodeOrder(b *testing.B) {
	raw := benchOrder(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInvalidTextClean(b *testing.B) {
	raw := benchOrder(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, bad := invalidText(raw); bad {
			b.Fatal("clean message flagged")
		}
	}
}
