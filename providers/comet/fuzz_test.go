package comet_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/providertest"
)

// The secrets a fuzzed reply may echo: the configured admin password (in
// every request) and the service password (add-user, reset-user-password).
const (
	fuzzAdminPassword   = "Adm1n-Pa55word-xyz"
	fuzzServicePassword = `Svc<pa"ss>-2026&`
)

// FuzzReplyParsing answers every call of a signup, a suspension, a password
// change and Test Connection with one arbitrary reply: nothing may panic,
// and no error may hold the configured admin password, in its text or
// attached reply (issue 10). Seeds: testdata/fuzz and below.
func FuzzReplyParsing(f *testing.F) {
	providertest.FuzzReplies(f, providertest.ReplyFuzz{
		Seeds: []providertest.FuzzReply{
			{Status: 200, Body: `{"Status":200,"Message":"OK"}`},
			{Status: 200, Body: `{"Status":500,"Message":"User not found"}`},
			{Status: 200, Body: `{"Status":400,"Message":"bad password {{svcjson}}"}`},
			{Status: 403, Body: `{"Status":403,"Message":"Invalid password {{admin}}"}`},
			{Status: 500, Body: `<html>Username=admin&Password={{admin}}&TargetPassword={{svcq}}</html>`},
			{Status: 200, Body: `{"Username":"hwabc","AccountName":"{{svc}}","IsSuspended":false,"Destinations":{}}`},
			{Status: 200, Body: `{"Status":200,"Message":"OK","ProfileHash":"h1","Profile":{"Username":"hwabc","Destinations":{"d":{"StorageLimitBytes":1}}}}`},
			{Status: 200, Body: `["hwabc","{{admin}}"]`},
			{Status: 200, Body: `{"Version":"25.9.6"}`},
			{Status: 200, Body: `{"Status":"x","Message":["{{svc}}"]}`},
			{Status: 429, Body: ``},
			{Status: 200, Body: `null`},
		},
		Echoes: map[string]string{"admin": fuzzAdminPassword, "svc": fuzzServicePassword},
		// The configured secret (the admin password) must be absent from
		// every error. The service password is a secret of the requests
		// that carry it (add-user, reset-user-password):
		// TestEchoedServicePasswordRedacted covers its echoes; a reply to
		// another call holding it (a look-up that never sent it) cannot be
		// recognised as an echo.
		Secrets: []string{fuzzAdminPassword},
		Timeout: 10 * time.Second,
		Start:   startCometFuzz,
	})
}

// startCometFuzz builds a Comet provider against the fuzzed server at url
// and returns FuzzReplyParsing's calls.
func startCometFuzz(f *testing.F, url string) func(context.Context, func(error, ...string)) {
	p, err := comet.New(comet.Config{Settings: providers.Settings{URL: url, Timeout: 2 * time.Second}, Username: "admin",
		Password: fuzzAdminPassword}, fixedPasswords(fuzzServicePassword), nil)
	if err != nil {
		f.Fatal(err)
	}
	return func(ctx context.Context, check func(error, ...string)) {
		run := func(o events.Operation) { check(providertest.Attempt(ctx, p, o)) }
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
		check(p.Check(ctx))
		// An Apply that fetched the service password (signup, password
		// change) scrubs it from every later reply and its error: after
		// the look-ups, a change_password error must not hold it.
		if _, err := p.Apply(ctx, pw); err != nil {
			if strings.Contains(fmt.Sprint(err), "reset-user-password") {
				check(err, fuzzServicePassword)
			}
			check(err)
		}
	}
}
