package ops

import (
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
)

func TestPrettyOriginalSaysWhenOnlyAPrefixIsKept(t *testing.T) {
	d := events.DeadLetter{Raw: []byte("not json \xff"), Truncated: true, OriginalSize: 819200, OriginalSHA256: "ab12"}
	text, isJSON := prettyOriginal(d)
	if isJSON || !strings.HasPrefix(text, `not json \xff`) || !strings.Contains(text, "the first 10 of 819200 bytes, SHA-256 ab12") {
		t.Fatalf("prettyOriginal = %q, %v", text, isJSON)
	}
}
