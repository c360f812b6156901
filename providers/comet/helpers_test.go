package comet_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
)

const passwordSecret = "a test secret of at least 16 bytes"

// env is a provider wired to a fresh fake, with its logs observed.
type env struct {
	srv  *comettest.Server
	p    *comet.Provider
	logs *observer.ObservedLogs
	pw   *providers.DerivedPasswords
}

// newEnv starts a fake and a provider talking to it; mod may change the
// config (e.g. credentials) before New.
func newEnv(t *testing.T, mod ...func(*comet.Config)) *env {
	t.Helper()
	srv := comettest.NewServer()
	t.Cleanup(srv.Close)
	return newEnvAt(t, srv, srv.URL, mod...)
}

// newEnvAt builds a provider for url (which may be a wrapper in front of srv).
func newEnvAt(t *testing.T, srv *comettest.Server, url string, mod ...func(*comet.Config)) *env {
	t.Helper()
	cfg := comet.Config{Settings: providers.Settings{URL: url, Timeout: 5 * time.Second}, Username: srv.Username, Password: srv.Password}
	for _, m := range mod {
		m(&cfg)
	}
	pw, err := providers.NewDerivedPasswords(passwordSecret)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	p, err := comet.New(cfg, pw, zap.New(core))
	if err != nil {
		t.Fatalf("comet.New: %v", err)
	}
	return &env{srv: srv, p: p, logs: logs, pw: pw}
}

// wrapped starts a server that runs intercept before handing a request to
// srv; intercept returns true when it answered the request itself.
func wrapped(t *testing.T, srv *comettest.Server, intercept func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if intercept(w, r) {
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// op builds an operation for service serviceID, as the worker would.
func op(a events.Action, serviceID int, settings, opts map[string]string) events.Operation {
	o := events.Operation{
		EventID: "whmcs:test:event:1", EventType: events.OrderAccepted, Source: "test", Action: a,
		Provider: comet.Name, ProductID: 1, ServiceID: serviceID, ClientID: 7,
		Settings: settings, ConfigOpts: opts,
	}
	if a.IsSignup() {
		o.Key = events.ServiceKey("test", serviceID, a)
	} else {
		o.Key = events.EventKey(o.EventID, a, serviceID)
	}
	return o
}

// prepared runs Prepare and stores the plan in o.
func (e *env) prepared(t *testing.T, o events.Operation) events.Operation {
	t.Helper()
	plan, err := e.p.Prepare(testCtx(t), o)
	if err != nil {
		t.Fatalf("Prepare(%s): %v", o.Action, err)
	}
	o.Plan = plan
	return o
}

func (e *env) apply(t *testing.T, o events.Operation) events.Outcome {
	t.Helper()
	out, err := e.p.Apply(testCtx(t), o)
	if err != nil {
		t.Fatalf("Apply(%s): %v", o.Action, err)
	}
	return out
}

// servicePassword is the password the provider sends for o.
func (e *env) servicePassword(t *testing.T, o events.Operation) string {
	t.Helper()
	pw, err := e.pw.ServicePassword(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

func (e *env) user(t *testing.T, name string) comettest.User {
	t.Helper()
	u, ok := e.srv.User(name)
	if !ok {
		t.Fatalf("fake holds no user %q (users: %v)", name, e.srv.Users())
	}
	return u
}

// fixedPasswords is a PasswordSource that always answers pw.
type fixedPasswords string

func (f fixedPasswords) ServicePassword(context.Context, events.Operation) (string, error) {
	return string(f), nil
}

var configured = map[string]string{
	comet.SettingPolicyGroupID:         "hookworker-test-policy",
	comet.SettingCreatePolicyGroup:     "yes",
	comet.SettingStorageVaultTemplate:  comettest.StorageTemplate,
	comet.SettingRequirePasswordChange: "yes",
}

var configuredOpts = map[string]string{
	"number_of_devices":       "3",
	"storage_vault_quota_gb":  "100",
	"protected_item_quota_tb": "1",
}

func srvSettings(srv *comettest.Server) providers.Settings {
	return providers.Settings{URL: srv.URL, Timeout: 5 * time.Second}
}
