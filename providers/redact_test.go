package providers_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

func TestSecretsScrubEveryForm(t *testing.T) {
	const pw = `pa"ss<wo>rd&1/ü`
	s := providers.NewSecrets(pw, "k3y-Api-9876", "abc") // "abc" is too short to scrub
	for _, text := range []string{
		"plain " + pw,
		`{"Message":"bad pa\"ss\u003cwo\u003erd\u00261/ü"}`, // Go's encoding/json
		`{"Message":"bad pa\"ss<wo>rd&1/ü"}`,                // no HTML escaping
		`{"Message":"bad \u0070a\"ss<wo>rd&1/\u00fc"}`,      // any other escape
		"query=pa%22ss%3Cwo%3Erd%261%2F%C3%BC",
		"html pa&#34;ss&lt;wo&gt;rd&amp;1/ü",
		"key k3y-Api-9876 twice k3y-Api-9876",
	} {
		got := s.Scrub(text)
		if strings.Contains(got, "k3y-Api-9876") || strings.Contains(got, "wo>rd") || strings.Contains(got, `wo\u003erd`) ||
			strings.Contains(got, "%3Cwo%3E") || strings.Contains(got, "wo&gt;rd") {
			t.Errorf("Scrub(%q) = %q still holds a secret", text, got)
		}
		if !strings.Contains(got, providers.Redacted) {
			t.Errorf("Scrub(%q) = %q: nothing redacted", text, got)
		}
	}
	if got := s.Scrub("abc stays"); got != "abc stays" {
		t.Errorf("a too-short value was scrubbed: %q", got)
	}
}

func TestScrubErrorKeepsClassAndChain(t *testing.T) {
	sentinel := errors.New("sentinel")
	s := providers.NewSecrets("S3cr3t-value")
	err := events.WithReply(events.AsTransient(errors.Join(sentinel, errors.New("echo S3cr3t-value")), 7), `{"x":"S3cr3t-value"}`)
	got := s.ScrubError(err)
	if strings.Contains(got.Error(), "S3cr3t") || strings.Contains(events.ReplyOf(got), "S3cr3t") {
		t.Fatalf("not scrubbed: %v / %s", got, events.ReplyOf(got))
	}
	if events.ClassOf(got) != events.Transient || events.RetryAfterOf(got) != 7 || !errors.Is(got, sentinel) {
		t.Fatalf("class, retry-after or chain lost: %v", got)
	}
	clean := errors.New("nothing secret")
	if s.ScrubError(clean) != clean {
		t.Fatal("an error without a secret was rewrapped")
	}
}
