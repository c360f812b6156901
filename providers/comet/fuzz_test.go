package comet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
)

// The secrets a fuzzed reply may echo: the configured admin password (in
// every request) and the service password (add-user, reset-user-password).
const (
	fuzzAdminPassword   = "Adm1n-Pa55word-xyz"
	fuzzServicePassword = `Svc<pa"ss>-2026&`
)

// cannedReply is a server that answers every request with one reply.
type cannedReply struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (c *cannedReply) set(status int, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.body = status, body
}

func (c *cannedReply) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	status, body := c.status, c.body
	c.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func secretForms(secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		j, _ := json.Marshal(s)
		out = append(out, s, strings.Trim(string(j), `"`), url.QueryEscape(s))
	}
	return out
}

// expand puts the secrets into a fuzzed body where it has placeholders.
func expand(body []byte) []byte {
	j, _ := json.Marshal(fuzzServicePassword)
	r := strings.NewReplacer("{{admin}}", fuzzAdminPassword, "{{svc}}", fuzzServicePassword,
		"{{svcjson}}", strings.Trim(string(j), `"`), "{{svcq}}", url.QueryEscape(fuzzServicePassword))
	return []byte(r.Replace(string(body)))
}

// FuzzReplyParsing answers every call of a signup, a suspension, a password
// change and Test Connection with one arbitrary reply: nothing may panic,
// and no error may hold the configured admin password, in its text or
// attached reply (issue 10). Seeds: testdata/fuzz and below.
func FuzzReplyParsing(f *testing.F) {
	for _, seed := range []struct {
		status uint16
		body   string
	}{
		{200, `{"Status":200,"Message":"OK"}`},
		{200, `{"Status":500,"Message":"User not found"}`},
		{200, `{"Status":400,"Message":"bad password {{svcjson}}"}`},
		{403, `{"Status":403,"Message":"Invalid password {{admin}}"}`},
		{500, `<html>Username=admin&Password={{admin}}&TargetPassword={{svcq}}</html>`},
		{200, `{"Username":"hwabc","AccountName":"{{svc}}","IsSuspended":false,"Destinations":{}}`},
		{200, `{"Status":200,"Message":"OK","ProfileHash":"h1","Profile":{"Username":"hwabc","Destinations":{"d":{"StorageLimitBytes":1}}}}`},
		{200, `["hwabc","{{admin}}"]`},
		{200, `{"Version":"25.9.6"}`},
		{200, `{"Status":"x","Message":["{{svc}}"]}`},
		{429, ``},
		{200, `null`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	canned := &cannedReply{}
	hs := httptest.NewServer(canned)
	f.Cleanup(hs.Close)
	p, err := comet.New(comet.Config{Settings: providers.Settings{URL: hs.URL, Timeout: 2 * time.Second}, Username: "admin",
		Password: fuzzAdminPassword}, fixedPasswords(fuzzServicePassword), nil)
	if err != nil {
		f.Fatal(err)
	}
	// The configured secret (the admin password) must be absent from every
	// error. The service password is a secret of the requests that carry
	// it (add-user, reset-user-password): TestEchoedServicePasswordRedacted
	// covers its echoes; a reply to another call holding it (a look-up
	// that never sent it) cannot be recognised as an echo.
	forms := secretForms(fuzzAdminPassword)
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		canned.set(200+int(status)%400, expand(body))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		run := func(o events.Operation) {
			plan, err := p.Prepare(ctx, o)
			if err == nil {
				o.Plan = plan
				if _, _, err = p.Lookup(ctx, o); err == nil {
					_, err = p.Apply(ctx, o)
				}
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		signup := op(events.SignupCustomer, 1, map[string]string{comet.SettingPolicyGroupID: "p1", comet.SettingCreatePolicyGroup: "yes"},
			map[string]string{"number_of_devices": "2"})
		signup.Client = &events.Client{ID: 7, Email: "ada@example.com"}
		run(signup)
		suspend := op(events.Suspend, 1, nil, nil)
		suspend.Username = "ada@example.com"
		run(suspend)
		pw := op(events.ChangePassword, 1, nil, nil)
		pw.Username = "ada@example.com"
		run(pw)
		if err := p.Check(ctx); err != nil {
			errs = append(errs, err)
		}
		// An Apply that fetched the service password (signup, password
		// change) scrubs it from every later reply and its error: after
		// the look-ups, a change_password error must not hold it.
		if _, err := p.Apply(ctx, pw); err != nil {
			text := err.Error() + fmt.Sprintf("%+v", err) + events.ReplyOf(err)
			for _, s := range secretForms(fuzzServicePassword) {
				if strings.Contains(text, s) && strings.Contains(fmt.Sprint(err), "reset-user-password") {
					t.Fatalf("the service password (%q) is in a password change's error: %q", s, text)
				}
			}
			errs = append(errs, err)
		}
		for _, err := range errs {
			_ = events.ClassOf(err)
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err)} {
				for _, s := range forms {
					if strings.Contains(text, s) {
						t.Fatalf("a secret (%q) is in an error: %q", s, text)
					}
				}
			}
		}
	})
}
