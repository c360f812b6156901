package storegrid_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/storegrid"
)

// observed returns a debug-level logger and everything it logged, as text.
func observed() (*zap.Logger, func() string) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), func() string {
		var b strings.Builder
		for _, e := range logs.AllUntimed() {
			fmt.Fprintf(&b, "%s %v\n", e.Message, e.ContextMap())
		}
		return b.String()
	}
}

func TestPassKeyWrittenBackNeverLogged(t *testing.T) {
	srv := newFake(t)
	srv.AddReseller(testReseller)
	log, logged := observed()
	p := newProvider(t, srv, log)
	op := opFor(t, p, events.SignupCustomer, 1001, customerSettings())

	if _, found, err := p.Lookup(ctxT(t), op); err != nil || found {
		t.Fatalf("Lookup before signup = %v, %v", found, err)
	}
	out := apply(t, p, op)
	acct, _ := srv.Account(out.Reference)
	if acct.PassKey == "" || out.WriteBack[storegrid.PassKeyField] != acct.PassKey || storegrid.PassKeyField != "Pass Key" {
		t.Fatalf("WriteBack %v, want {\"Pass Key\": the customer's pass key}", out.WriteBack)
	}
	if strings.Contains(fmt.Sprint(out.Details), acct.PassKey) {
		t.Fatal("pass key in Details")
	}

	// Found already made (a retry after a lost reply, or Lookup first): the
	// pass key is still delivered.
	again := apply(t, p, op)
	if !again.AlreadyDone || again.WriteBack["Pass Key"] != acct.PassKey {
		t.Fatalf("retry outcome %+v, want AlreadyDone with the pass key", again)
	}
	looked, found, err := p.Lookup(ctxT(t), op)
	if err != nil || !found || looked.WriteBack["Pass Key"] != acct.PassKey {
		t.Fatalf("Lookup = %+v, %v, %v; want found with the pass key", looked, found, err)
	}

	text := logged()
	if !strings.Contains(text, out.Reference) {
		t.Fatalf("logs do not name the account:\n%s", text)
	}
	for _, secret := range []string{acct.PassKey, srv.Password} {
		if strings.Contains(text, secret) {
			t.Fatalf("a secret reached the logs:\n%s", text)
		}
	}
	for _, e := range strings.Split(strings.TrimSpace(text), "\n") {
		if !strings.Contains(e, "provider:storegrid") {
			t.Fatalf("log entry without the provider: %s", e)
		}
	}
}

func TestPassKeyRetrievedAfterLostSignupReply(t *testing.T) {
	srv := newFake(t)
	srv.AddReseller(testReseller)
	p := newProvider(t, srv, nil)
	op := opFor(t, p, events.SignupCustomer, 1002, customerSettings())
	srv.DropAfterEffect()
	if _, err := p.Apply(ctxT(t), op); err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("dropped signup: %v, want transient", err)
	}
	out := apply(t, p, op)
	acct, _ := srv.Account(out.Reference)
	if !out.AlreadyDone || out.WriteBack["Pass Key"] != acct.PassKey || srv.Created() != 1 {
		t.Fatalf("retry %+v (created %d), want AlreadyDone with the pass key and one account", out, srv.Created())
	}
}

func TestPassKeyNotRetrievedUnlessAsked(t *testing.T) {
	srv := newFake(t)
	srv.AddReseller(testReseller)
	p := newProvider(t, srv, nil)
	s := customerSettings()
	s["retrieve_pass_key"] = "no"
	out := apply(t, p, opFor(t, p, events.SignupCustomer, 1003, s))
	if out.WriteBack != nil {
		t.Fatalf("WriteBack %v, want none", out.WriteBack)
	}
	for _, a := range actions(srv) {
		if a == "getcustomerpasskey" {
			t.Fatal("pass key requested although retrieve_pass_key is no")
		}
	}
}

// TestPassKeyNeverInErrors: whatever goes wrong with the pass key reply, the
// error (and the reply attached to it) does not carry the key.
func TestPassKeyNeverInErrors(t *testing.T) {
	const leaked = "PK-SECRET-0123456789"
	tests := []struct {
		name   string
		status int
		body   string
		class  events.ErrorClass
	}{
		{"HTTP 500 echoing the key", 500, `{"status":"ok","data":{"passKey":"` + leaked + `"}}`, events.Transient},
		{"not JSON", 200, "passKey=" + leaked, events.Permanent},
		{"unknown status", 200, `{"status":"done","data":{"passKey":"` + leaked + `"}}`, events.Permanent},
		{"no pass key", 200, `{"status":"ok","data":{"key":"` + leaked + `"}}`, events.Permanent},
		{"error reply", 200, `{"status":"error","code":"INVALID_REQUEST","message":"no key for customer"}`, events.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.AddReseller(testReseller)
			front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if err := r.ParseForm(); err == nil && r.PostForm.Get("action") == "getcustomerpasskey" {
					w.WriteHeader(tt.status)
					_, _ = w.Write([]byte(tt.body))
					return
				}
				srv.ServeHTTP(w, r)
			}))
			t.Cleanup(front.Close)
			log, logged := observed()
			cfg := config(srv)
			cfg.URL = front.URL
			p, err := storegrid.New(cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Apply(ctxT(t), opFor(t, p, events.SignupCustomer, 1004, customerSettings()))
			if err == nil || events.ClassOf(err) != tt.class {
				t.Fatalf("Apply = %v (class %s), want %s", err, events.ClassOf(err), tt.class)
			}
			for _, s := range []string{err.Error(), events.ReplyOf(err), fmt.Sprintf("%+v", err), logged()} {
				if strings.Contains(s, leaked) {
					t.Fatalf("pass key leaked: %s", s)
				}
			}
			if tt.name == "error reply" && !strings.Contains(events.ReplyOf(err), "no key for customer") {
				t.Fatalf("error reply message not attached: %q", events.ReplyOf(err))
			}
		})
	}
}
