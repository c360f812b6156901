package whmcs

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/whmcs/whmcstest"
)

func TestCall(t *testing.T) {
	tests := []struct {
		name string
		// setup prepares the fake and may change the client config.
		setup     func(f *whmcstest.Server, cfg *Config)
		action    string
		params    url.Values
		wantErr   bool
		wantClass events.ErrorClass
		wantIs    []error
		wantNotIs []error
		wantInErr string
		wantCalls int // requests the fake saw, -1: don't check
	}{
		{name: "success", action: "LogActivity", params: url.Values{"description": {"hello"}}, wantCalls: 1},
		{name: "wrong secret is an auth failure", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { c.Secret = "wrong-secret-value-123" },
			wantErr: true, wantClass: events.Permanent, wantIs: []error{ErrAuth}, wantInErr: "Authentication Failed", wantCalls: 1},
		{name: "missing access key is an auth failure", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.SetAccessKey("the-access-key-42") },
			wantErr: true, wantClass: events.Permanent, wantIs: []error{ErrAuth}, wantInErr: "Invalid IP", wantCalls: 1},
		{name: "access key sent", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup: func(f *whmcstest.Server, c *Config) {
				f.SetAccessKey("the-access-key-42")
				c.AccessKey = "the-access-key-42"
			}, wantCalls: 1},
		{name: "403 is permanent", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.FailNext(1, http.StatusForbidden) },
			wantErr: true, wantClass: events.Permanent, wantIs: []error{ErrAuth}, wantCalls: 1},
		{name: "result error on HTTP 200 is permanent", action: "UpdateClientProduct", params: url.Values{"serviceid": {"5"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.SetStrict(true) },
			wantErr: true, wantClass: events.Permanent, wantInErr: "Service ID Not Found", wantCalls: 1},
		{name: "injected result error on 200", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.FailNext(1, http.StatusOK) },
			wantErr: true, wantClass: events.Permanent, wantInErr: "injected failure", wantNotIs: []error{ErrAuth}, wantCalls: 1},
		{name: "500 is transient", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.FailNext(1, http.StatusInternalServerError) },
			wantErr: true, wantClass: events.Transient, wantInErr: "HTTP 500", wantNotIs: []error{ErrOutcomeUnknown}, wantCalls: 1},
		{name: "503 is transient", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.FailNext(1, http.StatusServiceUnavailable) },
			wantErr: true, wantClass: events.Transient, wantCalls: 1},
		{name: "429 is transient", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.FailNext(1, http.StatusTooManyRequests) },
			wantErr: true, wantClass: events.Transient, wantCalls: 1},
		{name: "404 is permanent", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.FailNext(1, http.StatusNotFound) },
			wantErr: true, wantClass: events.Permanent, wantCalls: 1},
		{name: "dropped connection is transient, outcome unknown", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.FailNext(1, 0) },
			wantErr: true, wantClass: events.Transient, wantIs: []error{ErrOutcomeUnknown}, wantCalls: 1},
		{name: "lost reply is transient, outcome unknown", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup:   func(f *whmcstest.Server, c *Config) { f.LoseNextReply(1) },
			wantErr: true, wantClass: events.Transient, wantIs: []error{ErrOutcomeUnknown}, wantCalls: 1},
		{name: "timeout is transient, outcome unknown", action: "LogActivity", params: url.Values{"description": {"x"}},
			setup: func(f *whmcstest.Server, c *Config) {
				f.Delay(2 * time.Second)
				c.Timeout = 100 * time.Millisecond
			},
			wantErr: true, wantClass: events.Transient, wantIs: []error{ErrOutcomeUnknown}, wantCalls: -1},
		{name: "Module actions are refused without a call", action: "ModuleCreate", params: url.Values{"serviceid": {"1"}},
			wantErr: true, wantClass: events.Permanent, wantIs: []error{ErrForbiddenAction}, wantCalls: 0},
		{name: "reserved parameter is refused", action: "LogActivity", params: url.Values{"secret": {"x"}},
			wantErr: true, wantClass: events.Permanent, wantCalls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			cfg := fakeConfig(f)
			if tt.setup != nil {
				tt.setup(f, &cfg)
			}
			c := newClient(t, cfg)
			reply, err := c.Call(context.Background(), tt.action, tt.params)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Call error = %v, want error %t", err, tt.wantErr)
			}
			if tt.wantCalls >= 0 {
				if n := len(f.Calls()); n != tt.wantCalls {
					t.Errorf("fake saw %d calls, want %d", n, tt.wantCalls)
				}
			}
			if !tt.wantErr {
				if reply["result"] != "success" {
					t.Errorf("reply = %v", reply)
				}
				return
			}
			if got := events.ClassOf(err); got != tt.wantClass {
				t.Errorf("class = %s, want %s (%v)", got, tt.wantClass, err)
			}
			for _, target := range tt.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("error %q does not match %q", err, target)
				}
			}
			for _, target := range tt.wantNotIs {
				if errors.Is(err, target) {
					t.Errorf("error %q matches %q", err, target)
				}
			}
			if !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantInErr)
			}
			for _, s := range []string{f.Secret, cfg.Secret, cfg.AccessKey, "the-access-key-42"} {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		})
	}
}

func TestCallRequest(t *testing.T) {
	f := newFake(t)
	c := newClient(t, fakeConfig(f))
	if err := c.AddClientNote(context.Background(), 3, "a note", true); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %v", calls)
	}
	p := calls[0].Params
	if p.Get("responsetype") != "json" || p.Get("userid") != "3" || p.Get("sticky") != "1" || p.Get("notes") != "a note" {
		t.Errorf("params = %v", p)
	}
	if n := f.Notes(3); len(n) != 1 || !n[0].Sticky {
		t.Errorf("notes = %+v", n)
	}
	if err := c.AddClientNote(context.Background(), 3, "not sticky", false); err != nil {
		t.Fatal(err)
	}
	if n := f.Notes(3); len(n) != 2 || n[1].Sticky {
		t.Errorf("notes = %+v", n)
	}
}

func TestCallConnectionRefused(t *testing.T) {
	f := whmcstest.NewServer()
	cfg := fakeConfig(f)
	f.Close()
	c := newClient(t, cfg)
	err := c.LogActivity(context.Background(), 1, "x")
	if err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("a request that never left must not be in doubt: %v", err)
	}
	if strings.Contains(err.Error(), cfg.Secret) {
		t.Errorf("error contains the secret: %v", err)
	}
}

func TestCallOddReplies(t *testing.T) {
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantClass events.ErrorClass
		wantIs    error
	}{
		{"HTML on 200", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>maintenance</html>")) },
			events.Transient, ErrOutcomeUnknown},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/includes/api.php", http.StatusPermanentRedirect)
		}, events.Permanent, nil},
		{"echoes the secret", func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			_, _ = w.Write([]byte(`{"result":"error","message":"bad secret ` + r.PostForm.Get("secret") + `"}`))
		}, events.Permanent, nil},
		{"BOM before JSON", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("\xef\xbb\xbf{\"result\":\"success\"}"))
		}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			t.Cleanup(srv.Close)
			cfg := Config{APIURL: srv.URL + "/includes/api.php", Identifier: "id", Secret: "s3cr3t-value-xyz", Timeout: time.Second}
			c := newClient(t, cfg)
			_, err := c.Call(context.Background(), "LogActivity", url.Values{"description": {"x"}})
			if tt.wantClass == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if got := events.ClassOf(err); got != tt.wantClass {
				t.Errorf("class = %s, want %s (%v)", got, tt.wantClass, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err %v does not match %v", err, tt.wantIs)
			}
			if strings.Contains(err.Error(), cfg.Secret) {
				t.Errorf("error contains the secret: %v", err)
			}
		})
	}
}

func TestServicePassword(t *testing.T) {
	f := newFake(t)
	f.AddProduct(whmcstest.Product{ServiceID: 10, ClientID: 2, Status: "Pending", Password: "S3rv1ce-pw"})
	f.AddProduct(whmcstest.Product{ServiceID: 11, ClientID: 2, Status: "Pending"})
	c := newClient(t, fakeConfig(f))
	ctx := context.Background()

	pw, err := c.ServicePassword(ctx, events.Operation{ServiceID: 10, ClientID: 2})
	if err != nil || pw != "S3rv1ce-pw" {
		t.Fatalf("ServicePassword = %q, %v", pw, err)
	}
	if _, err := c.ServicePassword(ctx, events.Operation{ClientID: 2, Action: events.SignupReseller}); !errors.Is(err, ErrNoService) ||
		events.ClassOf(err) != events.Permanent {
		t.Errorf("no service: err = %v", err)
	}
	if _, err := c.ServicePassword(ctx, events.Operation{ServiceID: 11, ClientID: 2}); !errors.Is(err, ErrNoPassword) {
		t.Errorf("empty password: err = %v", err)
	}
	// Canned services have a password.
	if pw, err := c.ServicePassword(ctx, events.Operation{ServiceID: 99, ClientID: 4}); err != nil || pw == "" {
		t.Errorf("canned service: %q, %v", pw, err)
	}
	f.SetStrict(true)
	_, err = c.ServicePassword(ctx, events.Operation{ServiceID: 500, ClientID: 4})
	if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown service: err = %v", err)
	}
	f.FailNext(1, http.StatusBadGateway)
	if _, err := c.ServicePassword(ctx, events.Operation{ServiceID: 10, ClientID: 2}); events.ClassOf(err) != events.Transient {
		t.Errorf("502: err = %v", err)
	}
}

func TestUpdateClientCustomFields(t *testing.T) {
	f := newFake(t)
	c := newClient(t, fakeConfig(f))
	ctx := context.Background()
	if err := c.UpdateClientCustomFields(ctx, 8, map[string]string{"7": "pk-ü-1", "12": `quo"te;}`}); err != nil {
		t.Fatal(err)
	}
	got := f.CustomFields(8)
	if got[7] != "pk-ü-1" || got[12] != `quo"te;}` || len(got) != 2 {
		t.Errorf("custom fields = %v", got)
	}
	call := f.CallsTo("UpdateClient")[0]
	if call.Params.Get("skipvalidation") != "1" || call.Params.Get("clientid") != "8" {
		t.Errorf("params = %v", call.Params)
	}
	err := c.UpdateClientCustomFields(ctx, 8, map[string]string{"Pass Key": "secret-value"})
	if err == nil || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("named key: err = %v", err)
	}
}

// Issue 8 point 6: the activity line is related to the client on WHMCS
// 7.x (LogActivity reads userid) as on 8.x (clientid).
func TestLogActivityOnWHMCS7And8(t *testing.T) {
	for _, v7 := range []bool{false, true} {
		f := newFake(t)
		f.SetWHMCS7(v7)
		c := newClient(t, fakeConfig(f))
		if err := c.LogActivity(context.Background(), 8, "hookworker: provisioned"); err != nil {
			t.Fatal(err)
		}
		a := f.Activity()
		if len(a) != 1 || a[0].ClientID != 8 {
			t.Errorf("WHMCS 7.x = %v: activity %+v, want one line for client 8", v7, a)
		}
	}
}

func TestPHPSerialize(t *testing.T) {
	tests := []struct {
		in   map[string]string
		want string
	}{
		{map[string]string{}, `a:0:{}`},
		{map[string]string{"12": "abc"}, `a:1:{i:12;s:3:"abc";}`},
		{map[string]string{"7": "é", "3": ""}, `a:2:{i:3;s:0:"";i:7;s:2:"é";}`},
		{map[string]string{"012": "x", "-4": "y", "name": "z"}, `a:3:{i:-4;s:1:"y";s:3:"012";s:1:"x";s:4:"name";s:1:"z";}`},
	}
	for _, tt := range tests {
		got := phpSerializeStringMap(tt.in)
		if got != tt.want {
			t.Errorf("serialize(%v) = %s, want %s", tt.in, got, tt.want)
		}
		back, err := whmcstest.Unserialize(got)
		if err != nil {
			t.Errorf("unserialize(%s): %v", got, err)
			continue
		}
		for k, v := range tt.in {
			if back[k] != v {
				t.Errorf("round trip of %q: %q, want %q", k, back[k], v)
			}
		}
	}
}

func TestConfig(t *testing.T) {
	good := Config{APIURL: "https://billing.example.com/includes/api.php", Identifier: "id", Secret: "TopSecretValue",
		AccessKey: "AccessKeyValue", Timeout: time.Second, WritebackConsumer: "hookworker-writeback"}
	tests := []struct {
		name    string
		mod     func(c *Config)
		wantVar string // "" = valid
	}{
		{"valid", func(c *Config) {}, ""},
		{"disabled is valid", func(c *Config) { *c = Config{} }, ""},
		{"not a URL", func(c *Config) { c.APIURL = "billing.example.com" }, "HOOKWORKER_WHMCS_API_URL"},
		{"not api.php", func(c *Config) { c.APIURL = "https://billing.example.com/" }, "HOOKWORKER_WHMCS_API_URL"},
		{"credentials in URL", func(c *Config) { c.APIURL = "https://u:TopSecretValue@billing.example.com/includes/api.php" }, "HOOKWORKER_WHMCS_API_URL"},
		{"no identifier", func(c *Config) { c.Identifier = "" }, "HOOKWORKER_WHMCS_IDENTIFIER"},
		{"no secret", func(c *Config) { c.Secret = "" }, "HOOKWORKER_WHMCS_SECRET"},
		{"bad timeout", func(c *Config) { c.Timeout = 0 }, "HOOKWORKER_WHMCS_TIMEOUT"},
		{"bad field id", func(c *Config) { c.PassKeyFieldID = -1 }, "HOOKWORKER_WHMCS_PASSKEY_FIELD_ID"},
		{"bad consumer", func(c *Config) { c.WritebackConsumer = "a.b" }, "HOOKWORKER_WHMCS_WRITEBACK_CONSUMER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.mod(&c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantVar) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tt.wantVar)
			}
			if strings.Contains(err.Error(), "TopSecretValue") || strings.Contains(err.Error(), "AccessKeyValue") {
				t.Errorf("error echoes a secret: %v", err)
			}
		})
	}
	for _, s := range []string{good.String(), good.GoString()} {
		if strings.Contains(s, "TopSecretValue") || strings.Contains(s, "AccessKeyValue") {
			t.Errorf("String() shows a secret: %s", s)
		}
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Setenv("HOOKWORKER_WHMCS_API_URL", "https://billing.example.com/includes/api.php")
	t.Setenv("HOOKWORKER_WHMCS_IDENTIFIER", "ident")
	t.Setenv("HOOKWORKER_WHMCS_SECRET", "sec")
	t.Setenv("HOOKWORKER_WHMCS_PASSKEY_FIELD_ID", "7")
	var c Config
	if err := envconfig.Process(EnvPrefix, &c); err != nil {
		t.Fatal(err)
	}
	if !c.Enabled() || c.Timeout != 15*time.Second || c.WritebackConsumer != "hookworker-writeback" || c.PassKeyFieldID != 7 || c.TLSInsecure {
		t.Errorf("config = %s", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if _, err := NewClient(Config{}); err == nil {
		t.Error("NewClient accepted a disabled config")
	}
}

type fixedPassword string

func (p fixedPassword) ServicePassword(context.Context, events.Operation) (string, error) {
	return string(p), nil
}

func TestFallbackPasswords(t *testing.T) {
	f := newFake(t)
	f.AddProduct(whmcstest.Product{ServiceID: 10, ClientID: 2, Password: "from-whmcs"})
	f.AddProduct(whmcstest.Product{ServiceID: 11, ClientID: 2})
	src := FallbackPasswords(newClient(t, fakeConfig(f)), fixedPassword("derived"))
	ctx := context.Background()
	tests := []struct {
		name string
		op   events.Operation
		want string
	}{
		{"WHMCS password", events.Operation{ServiceID: 10, ClientID: 2}, "from-whmcs"},
		{"no service: derived", events.Operation{ClientID: 2, Action: events.SignupReseller}, "derived"},
		{"empty password: derived", events.Operation{ServiceID: 11, ClientID: 2}, "derived"},
	}
	for _, tt := range tests {
		pw, err := src.ServicePassword(ctx, tt.op)
		if err != nil || pw != tt.want {
			t.Errorf("%s: %q, %v", tt.name, pw, err)
		}
	}
	f.FailNext(1, http.StatusServiceUnavailable)
	if _, err := src.ServicePassword(ctx, events.Operation{ServiceID: 10, ClientID: 2}); events.ClassOf(err) != events.Transient {
		t.Errorf("WHMCS down must not fall back: %v", err)
	}
}
