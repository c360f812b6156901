package comet_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
)

// Issue 10 point 5: a service password a server echoes is scrubbed from
// errors and attached replies in every form: as sent, and JSON-escaped as
// Go's encoder writes it (Comet Server is written in Go: "<" → "\u003c").
func TestEchoedServicePasswordRedacted(t *testing.T) {
	const pw = `pa<ss>w&rd"12`
	for _, tc := range []struct {
		name, op string
		status   int
		encode   func(msg string) string
	}{
		{"JSON-escaped, HTTP 200 body error", "add-user", 200, func(m string) string {
			b, _ := json.Marshal(map[string]any{"Status": 400, "Message": m})
			return string(b)
		}},
		{"JSON-escaped, HTTP 500", "add-user", 500, func(m string) string {
			b, _ := json.Marshal(map[string]any{"Status": 500, "Message": m})
			return string(b)
		}},
		{"raw, not JSON", "add-user", 502, func(m string) string { return "<html>" + m + "</html>" }},
		{"reset-user-password echo", "reset-user-password", 200, func(m string) string {
			b, _ := json.Marshal(map[string]any{"Status": 400, "Message": m})
			return string(b)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := comettest.NewServer()
			t.Cleanup(srv.Close)
			url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, "/"+tc.op) {
					return false
				}
				echo := r.PostForm.Get("TargetPassword") + r.PostForm.Get("NewPassword")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.encode("rejected " + echo + " for " + r.PostForm.Get("TargetUser"))))
				return true
			})
			p, err := comet.New(comet.Config{Settings: providers.Settings{URL: url}, Username: srv.Username, Password: srv.Password},
				fixedPasswords(pw), nil)
			if err != nil {
				t.Fatal(err)
			}
			o := op(events.SignupCustomer, 1, nil, nil)
			if tc.op == "reset-user-password" {
				o = op(events.ChangePassword, 1, nil, nil)
				o.Username = "existing-user"
				if err := srv.AddUser(o.Username, "long-enough-1"); err != nil {
					t.Fatal(err)
				}
			}
			plan, err := p.Prepare(testCtx(t), o)
			if err == nil {
				o.Plan = plan
				_, err = p.Apply(testCtx(t), o)
			}
			if err == nil {
				t.Fatal("no error")
			}
			escaped, _ := json.Marshal(pw)
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err)} {
				if strings.Contains(s, pw) || strings.Contains(s, strings.Trim(string(escaped), `"`)) {
					t.Errorf("the service password leaked: %q", s)
				}
			}
			if !strings.Contains(events.ReplyOf(err)+err.Error(), providers.Redacted) {
				t.Errorf("nothing redacted (echo not provoked?): %v / %s", err, events.ReplyOf(err))
			}
		})
	}
}

// Once an operation has fetched its service password, every later reply of
// that operation is scrubbed of it too, not only the reply to the request
// that carried it.
func TestServicePasswordScrubbedFromLaterReplies(t *testing.T) {
	const pw = `later<echo>&pw1`
	srv := comettest.NewServer()
	t.Cleanup(srv.Close)
	var created atomic.Bool
	url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, "/add-user") {
			created.Store(true)
			return false
		}
		if created.Load() && strings.HasSuffix(r.URL.Path, "/get-user-profile-and-hash") {
			b, _ := json.Marshal(map[string]any{"Status": 500, "Message": "internal error near " + pw})
			_, _ = w.Write(b)
			return true
		}
		return false
	})
	p, err := comet.New(comet.Config{Settings: providers.Settings{URL: url}, Username: srv.Username, Password: srv.Password},
		fixedPasswords(pw), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := op(events.SignupCustomer, 1, nil, nil)
	plan, err := p.Prepare(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	o.Plan = plan
	_, err = p.Apply(testCtx(t), o)
	if err == nil || !created.Load() {
		t.Fatalf("err %v (created %v): the echo was not provoked", err, created.Load())
	}
	escaped, _ := json.Marshal(pw)
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err)} {
		if strings.Contains(s, pw) || strings.Contains(s, strings.Trim(string(escaped), `"`)) {
			t.Errorf("the service password leaked from a later reply: %q", s)
		}
	}
}
