package comet_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap/zapcore"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
)

func TestLifecycle(t *testing.T) {
	t.Run("missing user", func(t *testing.T) {
		e := newEnv(t)
		for _, a := range []events.Action{events.Suspend, events.Unsuspend, events.Renew, events.ChangePackage, events.ChangePassword} {
			_, err := e.p.Apply(testCtx(t), e.prepared(t, op(a, 9, nil, nil)))
			if !errors.Is(err, comet.ErrUserNotFound) || events.ClassOf(err) != events.Permanent {
				t.Errorf("%s of a missing user: %v (%s), want permanent ErrUserNotFound", a, err, events.ClassOf(err))
			}
		}
		out := e.apply(t, e.prepared(t, op(events.Terminate, 9, nil, nil)))
		if !out.AlreadyDone {
			t.Errorf("terminate of a missing user: %+v, want AlreadyDone", out)
		}
		if n := e.srv.Count("delete-user"); n != 0 {
			t.Errorf("delete-user called %d times for a missing user", n)
		}
	})
	t.Run("suspend, unsuspend and terminate report AlreadyDone", func(t *testing.T) {
		e := newEnv(t)
		name := e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, nil, nil))).Reference
		for _, step := range []struct {
			a           events.Action
			alreadyDone bool
		}{{events.Unsuspend, true}, {events.Suspend, false}, {events.Suspend, true}, {events.Unsuspend, false},
			{events.Terminate, false}, {events.Terminate, true}} {
			out := e.apply(t, e.prepared(t, op(step.a, 1, nil, nil)))
			if out.AlreadyDone != step.alreadyDone || out.Reference != name {
				t.Fatalf("%s: %+v, want AlreadyDone %v, reference %q", step.a, out, step.alreadyDone, name)
			}
		}
		if _, ok := e.srv.User(name); ok {
			t.Fatal("user still there after terminate")
		}
	})
	t.Run("change password", func(t *testing.T) {
		e := newEnv(t)
		o := op(events.ChangePassword, 1, nil, nil)
		o.Username = "whmcs-user"
		if err := e.srv.AddUser("whmcs-user", "the-old-password"); err != nil {
			t.Fatal(err)
		}
		e.apply(t, e.prepared(t, o))
		if !e.srv.CheckPassword("whmcs-user", e.servicePassword(t, o)) {
			t.Fatal("password not changed to the service password")
		}
		for _, r := range e.srv.Requests() {
			if r.Op == "reset-user-password" && (r.Form.Get("TargetUser") != "whmcs-user" || r.Form.Get("NewPassword") != "REDACTED" || r.Form.Has("OldPassword")) {
				t.Fatalf("reset-user-password form %v", r.Form)
			}
		}
	})
	t.Run("renew unsuspends", func(t *testing.T) {
		e := newEnv(t)
		name := e.apply(t, e.prepared(t, op(events.SignupCustomer, 1, nil, nil))).Reference
		writes := e.srv.Count("set-user-profile-hash")
		e.apply(t, e.prepared(t, op(events.Renew, 1, nil, nil)))
		if n := e.srv.Count("set-user-profile-hash"); n != writes {
			t.Fatal("renew of an active user wrote something")
		}
		e.apply(t, e.prepared(t, op(events.Suspend, 1, nil, nil)))
		out := e.apply(t, e.prepared(t, op(events.Renew, 1, nil, nil)))
		if e.user(t, name).Suspended() {
			t.Fatal("renew left the user suspended")
		}
		if !strings.Contains(out.Details["renewal"], "unsuspended") {
			t.Fatalf("renew details %v", out.Details)
		}
	})
	t.Run("reseller signup unsupported", func(t *testing.T) {
		e := newEnv(t)
		o := op(events.SignupReseller, 0, nil, nil)
		if _, err := e.p.Prepare(testCtx(t), o); err == nil || events.ClassOf(err) != events.Permanent {
			t.Fatalf("Prepare: %v, want permanent", err)
		}
		if _, err := e.p.Apply(testCtx(t), o); err == nil || events.ClassOf(err) != events.Permanent {
			t.Fatalf("Apply: %v, want permanent", err)
		}
	})
	t.Run("lifecycle names match the signup", func(t *testing.T) {
		e := newEnv(t)
		plan := e.prepared(t, op(events.SignupCustomer, 5, nil, nil)).Plan
		for _, a := range []events.Action{events.Suspend, events.Terminate, events.Renew, events.ChangePassword} {
			if got := e.prepared(t, op(a, 5, nil, nil)).Plan; got[comet.PlanUsername] != plan[comet.PlanUsername] {
				t.Fatalf("%s names %q, signup %q", a, got[comet.PlanUsername], plan[comet.PlanUsername])
			}
		}
	})
}

func TestLookup(t *testing.T) {
	settings := map[string]string{comet.SettingStorageVaultTemplate: comettest.StorageTemplate}
	opts := map[string]string{"number_of_devices": "2"}
	e := newEnv(t)
	lookup := func(a events.Action, s, o map[string]string) bool {
		t.Helper()
		out, found, err := e.p.Lookup(testCtx(t), e.prepared(t, op(a, 1, s, o)))
		if err != nil {
			t.Fatalf("Lookup(%s): %v", a, err)
		}
		if found && (!out.AlreadyDone || out.Reference == "") {
			t.Fatalf("Lookup(%s) found with outcome %+v", a, out)
		}
		return found
	}
	type want map[events.Action]bool
	check := func(stage string, w want) {
		t.Helper()
		for a, wf := range w {
			if got := lookup(a, settings, opts); got != wf {
				t.Errorf("%s: Lookup(%s) found = %v, want %v", stage, a, got, wf)
			}
		}
	}
	check("before signup", want{events.SignupCustomer: false, events.Suspend: false, events.Unsuspend: false,
		events.Terminate: true, events.Renew: false, events.ChangePassword: false, events.ChangePackage: false})

	// A user that exists without its vault and quotas is not "found": Apply
	// still has work to do.
	// (It is the user an earlier attempt of this signup created: the plan
	// was made while the name was free.)
	signupOp := e.prepared(t, op(events.SignupCustomer, 1, settings, opts))
	name := signupOp.Plan[comet.PlanUsername]
	if err := e.srv.AddUser(name, "some-password"); err != nil {
		t.Fatal(err)
	}
	check("half configured", want{events.SignupCustomer: false, events.ChangePackage: false, events.Unsuspend: true, events.Renew: true})
	e.apply(t, signupOp)
	check("after signup", want{events.SignupCustomer: true, events.ChangePackage: true, events.Suspend: false,
		events.Unsuspend: true, events.Terminate: false, events.Renew: true, events.ChangePassword: false})
	if lookup(events.ChangePackage, settings, map[string]string{"number_of_devices": "3"}) {
		t.Error("Lookup(change_package) found although the device limit differs")
	}
	if lookup(events.SignupCustomer, map[string]string{comet.SettingPolicyGroupID: "p1", comet.SettingCreatePolicyGroup: "yes"}, opts) {
		t.Error("Lookup(signup) found although the policy does not exist")
	}
	e.apply(t, e.prepared(t, op(events.Suspend, 1, nil, nil)))
	check("suspended", want{events.Suspend: true, events.Unsuspend: false, events.Renew: false})
	if n := e.srv.Count("add-user") + e.srv.Count("set-user-profile-hash"); n != 2 {
		t.Errorf("Lookup wrote something: %d writes, want 2 (signup quotas, suspend)", n)
	}
}

func TestMissingUserReplies(t *testing.T) {
	// Comet's reply for a missing user is not public. Whatever it is, an
	// ambiguous Comet error is settled with list-users.
	for _, tc := range []struct {
		name   string
		status int
		body   string
		// wantSignup: the signup proceeds (user settled as absent).
		wantSignup bool
	}{
		{"body, other message", 200, `{"Status":500,"Message":"Internal error"}`, true},
		{"body, 400", 200, `{"Status":400,"Message":"Invalid TargetUser"}`, true},
		{"HTTP 404, Comet not found", 404, `{"Status":404,"Message":"No such user"}`, true},
		{"HTTP 404, not Comet", 404, `404 page not found`, false},
		{"HTTP 400, Comet other", 400, `{"Status":400,"Message":"Bad request"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := comettest.NewServer()
			t.Cleanup(srv.Close)
			url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/get-user-profile") {
					if _, ok := srv.User(r.PostForm.Get("TargetUser")); !ok {
						w.WriteHeader(tc.status)
						_, _ = w.Write([]byte(tc.body))
						return true
					}
				}
				return false
			})
			e := newEnvAt(t, srv, url)
			o := op(events.SignupCustomer, 1, nil, nil)
			plan, err := e.p.Prepare(testCtx(t), o)
			if err == nil {
				o.Plan = plan
				_, err = e.p.Apply(testCtx(t), o)
			}
			if tc.wantSignup {
				// one list-users per probe: Prepare's and Apply's
				if err != nil || srv.Created() != 1 || srv.Count("list-users") != 2 {
					t.Fatalf("err %v, created %d, list-users %d; want a signup after one list-users per probe", err, srv.Created(), srv.Count("list-users"))
				}
				return
			}
			if err == nil || srv.Created() != 0 {
				t.Fatalf("err %v, created %d; want an error and no user", err, srv.Created())
			}
		})
	}
	t.Run("ambiguous error but listed", func(t *testing.T) {
		srv := comettest.NewServer()
		t.Cleanup(srv.Close)
		url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/get-user-profile") {
				_, _ = w.Write([]byte(`{"Status":500,"Message":"Database busy"}`))
				return true
			}
			return false
		})
		e := newEnvAt(t, srv, url)
		o := op(events.SignupCustomer, 1, nil, nil)
		o.CustomUsername = "existing-user"
		if err := srv.AddUser(o.CustomUsername, "password-1"); err != nil {
			t.Fatal(err)
		}
		_, err := e.p.Prepare(testCtx(t), o)
		if err == nil || events.ClassOf(err) != events.Transient || !strings.Contains(err.Error(), "Database busy") {
			t.Fatalf("err %v, want the transient 'Database busy' error", err)
		}
	})
	t.Run("add-user refused because the user appeared", func(t *testing.T) {
		srv := comettest.NewServer()
		t.Cleanup(srv.Close)
		var lie atomic.Bool
		url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "/get-user-profile") && lie.CompareAndSwap(true, false) {
				_, _ = w.Write([]byte(`{"Status":500,"Message":"User not found"}`))
				return true
			}
			return false
		})
		e := newEnvAt(t, srv, url)
		o := e.prepared(t, op(events.SignupCustomer, 1, nil, nil))
		o.Plan[comet.PlanUsername] = "existing-user"
		// Created (unmarked) after the signup chose the free name: as if an
		// earlier attempt created it.
		if err := srv.AddUser("existing-user", "password-1"); err != nil {
			t.Fatal(err)
		}
		lie.Store(true)
		out := e.apply(t, o)
		if srv.Created() != 1 || srv.Count("add-user") != 1 || out.Reference != "existing-user" {
			t.Fatalf("created %d, add-user %d, outcome %+v", srv.Created(), srv.Count("add-user"), out)
		}
	})
}

func TestCheck(t *testing.T) {
	t.Run("good credentials", func(t *testing.T) {
		if err := newEnv(t).p.Check(testCtx(t)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("bad credentials", func(t *testing.T) {
		e := newEnv(t, func(c *comet.Config) { c.Password = "wrong-password" })
		err := e.p.Check(testCtx(t))
		if err == nil || events.ClassOf(err) != events.Permanent || !errors.Is(err, comet.ErrUnauthorized) {
			t.Fatalf("err %v, want a permanent ErrUnauthorized", err)
		}
		for _, s := range []string{"HOOKWORKER_COMET_USERNAME", "HOOKWORKER_COMET_PASSWORD", "Invalid username or password"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("error %q does not mention %s", err, s)
			}
		}
		if strings.Contains(err.Error(), "wrong-password") {
			t.Errorf("error holds the password: %v", err)
		}
	})
	t.Run("not a Comet server", func(t *testing.T) {
		srv := comettest.NewServer()
		t.Cleanup(srv.Close)
		url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool { _, _ = w.Write([]byte(`{}`)); return true })
		err := newEnvAt(t, srv, url).p.Check(testCtx(t))
		if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "no Version") {
			t.Fatalf("err %v, want a permanent 'no Version' error", err)
		}
	})
	t.Run("redirect not followed", func(t *testing.T) {
		srv := comettest.NewServer()
		t.Cleanup(srv.Close)
		url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, "https://elsewhere.example/api/v1/admin/meta/version", http.StatusMovedPermanently)
			return true
		})
		err := newEnvAt(t, srv, url).p.Check(testCtx(t))
		if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "redirected to") {
			t.Fatalf("err %v, want a permanent redirect error", err)
		}
	})
	t.Run("slow server", func(t *testing.T) {
		e := newEnv(t, func(c *comet.Config) { c.Timeout = 50 * time.Millisecond })
		e.srv.Delay(2 * time.Second)
		err := e.p.Check(testCtx(t))
		if err == nil || events.ClassOf(err) != events.Transient {
			t.Fatalf("err %v, want a transient timeout", err)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		e := newEnv(t)
		e.srv.Close()
		if err := e.p.Check(testCtx(t)); err == nil || events.ClassOf(err) != events.Transient {
			t.Fatalf("err %v, want a transient connection error", err)
		}
	})
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t, func(c *comet.Config) { c.MaxConcurrent = 2; c.RatePerSecond = 0 })
	e.srv.Delay(30 * time.Millisecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := e.p.Check(testCtx(t)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := e.srv.MaxInFlight(); n > 2 {
		t.Fatalf("%d calls in flight at once, limit 2", n)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	const adminPassword = comettest.DefaultPassword
	srv := comettest.NewServer()
	t.Cleanup(srv.Close)
	echo := false
	var mu sync.Mutex
	url := wrapped(t, srv, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if !echo {
			return false
		}
		// A misbehaving server that echoes the request in its error.
		w.WriteHeader(500)
		_, _ = fmt.Fprintf(w, `{"Status":500,"Message":"bad request %s"}`, r.PostForm.Encode())
		return true
	})
	e := newEnvAt(t, srv, url)
	setEcho := func(v bool) { mu.Lock(); echo = v; mu.Unlock() }

	var errs []error
	try := func(o events.Operation) {
		plan, err := e.p.Prepare(testCtx(t), o)
		if err == nil {
			o.Plan = plan
			_, err = e.p.Apply(testCtx(t), o)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	signup := op(events.SignupCustomer, 1, configured, configuredOpts)
	servicePW := e.servicePassword(t, signup)
	try(signup)
	try(op(events.ChangePassword, 1, nil, nil))
	srv.FailNext(1, 500)
	try(op(events.Suspend, 1, nil, nil))
	srv.FailNextBody(1, 400)
	try(op(events.ChangePassword, 1, nil, nil))
	srv.DropAfterEffect()
	try(op(events.ChangePassword, 1, nil, nil))
	setEcho(true)
	try(op(events.SignupCustomer, 2, nil, nil))
	try(op(events.ChangePassword, 1, nil, nil))
	setEcho(false)
	bad := newEnvAt(t, srv, srv.URL, func(c *comet.Config) { c.Password = "wrong-" + adminPassword })
	errs = append(errs, bad.p.Check(testCtx(t)))
	if len(errs) < 5 {
		t.Fatalf("only %d errors provoked", len(errs))
	}

	secrets := []string{adminPassword, servicePW, e.servicePassword(t, op(events.SignupCustomer, 2, nil, nil))}
	var texts []string
	for _, err := range errs {
		texts = append(texts, err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err))
	}
	for _, logs := range []*env{e, bad} {
		for _, entry := range logs.logs.All() {
			texts = append(texts, entry.Message, fmt.Sprint(entry.ContextMap()))
		}
	}
	if e.logs.FilterLevelExact(zapcore.DebugLevel).Len() == 0 || e.logs.FilterField(providersField).Len() == 0 {
		t.Fatal("no debug logs or no provider field: the log check proves nothing")
	}
	for _, s := range secrets {
		for _, text := range texts {
			if strings.Contains(text, s) {
				t.Fatalf("a secret leaked into %q", text)
			}
		}
	}
	if !strings.Contains(strings.Join(texts, "\n"), "REDACTED") {
		t.Error("the echoing server's reply was not scrubbed (or not provoked)")
	}
	cfg := comet.Config{Settings: providers.Settings{URL: srv.URL}, Username: "admin", Password: adminPassword}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(f, cfg); strings.Contains(s, adminPassword) {
			t.Errorf("Config formatted with %s shows the password: %s", f, s)
		}
	}
}

var providersField = zapcoreField("provider", comet.Name)

func zapcoreField(k, v string) zapcore.Field {
	return zapcore.Field{Key: k, Type: zapcore.StringType, String: v}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     comet.Config
		wantErr string
	}{
		{"disabled", comet.Config{}, ""},
		{"ok", comet.Config{Settings: providers.Settings{URL: "https://comet.example", Timeout: time.Second, MaxConcurrent: 1}, Username: "a", Password: "b"}, ""},
		{"no username", comet.Config{Settings: providers.Settings{URL: "https://comet.example", Timeout: time.Second, MaxConcurrent: 1}, Password: "b"},
			"HOOKWORKER_COMET_USERNAME: required when HOOKWORKER_COMET_URL is set"},
		{"no password", comet.Config{Settings: providers.Settings{URL: "https://comet.example", Timeout: time.Second, MaxConcurrent: 1}, Username: "a"},
			"HOOKWORKER_COMET_PASSWORD: required when HOOKWORKER_COMET_URL is set"},
		{"bad url", comet.Config{Settings: providers.Settings{URL: "ftp://x", Timeout: time.Second, MaxConcurrent: 1}, Username: "a", Password: "b"},
			"HOOKWORKER_COMET_URL"},
		{"credentials in url", comet.Config{Settings: providers.Settings{URL: "https://u:secret@comet.example", Timeout: time.Second, MaxConcurrent: 1}, Username: "a", Password: "b"},
			"HOOKWORKER_COMET_URL: must not carry credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Fatalf("error shows a secret: %v", err)
			}
		})
	}
	t.Run("envconfig", func(t *testing.T) {
		t.Setenv("HOOKWORKER_COMET_URL", "https://comet.example:8060")
		t.Setenv("HOOKWORKER_COMET_USERNAME", "whmcs")
		t.Setenv("HOOKWORKER_COMET_PASSWORD", "pw")
		t.Setenv("HOOKWORKER_COMET_TIMEOUT", "7s")
		var cfg comet.Config
		if err := envconfig.Process("HOOKWORKER_COMET", &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.URL != "https://comet.example:8060" || cfg.Username != "whmcs" || cfg.Password != "pw" || cfg.Timeout != 7*time.Second || cfg.MaxConcurrent != 4 {
			t.Fatalf("envconfig read %v", cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("New", func(t *testing.T) {
		if _, err := comet.New(comet.Config{}, fixedPasswords("x"), nil); err == nil || !strings.Contains(err.Error(), "HOOKWORKER_COMET_URL") {
			t.Fatalf("New without URL: %v", err)
		}
		if _, err := comet.New(comet.Config{Settings: providers.Settings{URL: "http://x"}, Username: "a", Password: "b"}, nil, nil); err == nil {
			t.Fatal("New without a PasswordSource succeeded")
		}
	})
}
