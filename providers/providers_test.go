package providers_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

func TestClassifyStatus(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		status     int
		retryAfter string
		class      events.ErrorClass
		delay      time.Duration
	}{
		{400, "", events.Permanent, 0}, {401, "", events.Permanent, 0}, {403, "", events.Permanent, 0}, {404, "", events.Permanent, 0},
		{408, "", events.Transient, 0}, {429, "7", events.Transient, 7 * time.Second}, {500, "", events.Transient, 0},
		{502, "", events.Transient, 0}, {503, now.Add(30 * time.Second).UTC().Format(http.TimeFormat), events.Transient, 30 * time.Second},
		{429, "99999", events.Transient, time.Hour},
	} {
		h := http.Header{}
		if tc.retryAfter != "" {
			h.Set("Retry-After", tc.retryAfter)
		}
		err := providers.ClassifyStatus(tc.status, h, errors.New("x"))
		if events.ClassOf(err) != tc.class {
			t.Errorf("%d: class %s, want %s", tc.status, events.ClassOf(err), tc.class)
		}
		if d := events.RetryAfterOf(err); d < tc.delay-2*time.Second || d > tc.delay {
			t.Errorf("%d: retry after %s, want %s", tc.status, d, tc.delay)
		}
	}
}

func TestSettingsValidateNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		s    providers.Settings
		want string
	}{
		{providers.Settings{URL: "ftp://x", Timeout: time.Second, MaxConcurrent: 1}, "HOOKWORKER_X_URL"},
		{providers.Settings{URL: "https://user:pw@x", Timeout: time.Second, MaxConcurrent: 1}, "HOOKWORKER_X_URL"},
		{providers.Settings{URL: "https://x", MaxConcurrent: 1}, "HOOKWORKER_X_TIMEOUT"},
		{providers.Settings{URL: "https://x", Timeout: time.Second}, "HOOKWORKER_X_MAX_CONCURRENT"},
		{providers.Settings{URL: "https://x", Timeout: time.Second, MaxConcurrent: 1, RatePerSecond: -1}, "HOOKWORKER_X_RATE"},
	} {
		err := tc.s.Validate("HOOKWORKER_X_")
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pw@") {
			t.Errorf("%+v: %v", tc.s, err)
		}
	}
}

func TestAccountNameIsStablePerService(t *testing.T) {
	signup := events.Operation{Source: "main", ServiceID: 5, Action: events.SignupCustomer}
	suspend := events.Operation{Source: "main", ServiceID: 5, Action: events.Suspend, Key: "other"}
	other := events.Operation{Source: "main", ServiceID: 6, Action: events.SignupCustomer}
	a, b, c := providers.AccountName(signup, "hw", 12), providers.AccountName(suspend, "hw", 12), providers.AccountName(other, "hw", 12)
	if a != b || a == c || len(a) != 12 || !strings.HasPrefix(a, "hw") {
		t.Fatalf("%s %s %s", a, b, c)
	}
	if n := providers.AccountName(events.Operation{Username: "fromwhmcs"}, "hw", 12); n != "fromwhmcs" {
		t.Fatal(n)
	}
}

func ExampleClassifyStatus() {
	h := http.Header{"Retry-After": []string{"30"}}
	err := providers.ClassifyStatus(http.StatusTooManyRequests, h, errors.New("comet add-user: HTTP 429"))
	fmt.Println(events.ClassOf(err), events.RetryAfterOf(err))
	err = providers.ClassifyStatus(http.StatusBadRequest, nil, errors.New("codeguard add: HTTP 400"))
	fmt.Println(events.ClassOf(err))
	// Output:
	// transient 30s
	// permanent
}
