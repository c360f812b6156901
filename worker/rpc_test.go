package worker_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

const rpcCatalog = `
products:
  - id: 1
    name: Comet from the catalog
    provider: comet
  - id: 2
    name: Always fails
    provider: sandbox
    settings: {fail: permanent}
  - id: 3
    name: Slow
    provider: sandbox
    settings: {delay: 1500ms}
`

// rpcEnv is a running worker with the Comet fake and the sandbox, answering
// requests on its own connection, and a client connection to ask it.
type rpcEnv struct {
	nc      *nats.Conn
	cometd  *comettest.Server
	results *workertest.Results
	reg     *prometheus.Registry
}

// requests is hookworker_rpc_requests_total{request, outcome}.
func (e *rpcEnv) requests(t *testing.T, request, outcome string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hookworker_rpc_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["request"] == request && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func newRPCEnv(t *testing.T) *rpcEnv {
	t.Helper()
	ns := workertest.Server(t)
	cs := comettest.NewServer()
	t.Cleanup(cs.Close)
	pw, err := providers.NewDerivedPasswords("a test secret of at least 16 bytes")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := comet.New(comet.Config{Settings: providers.Settings{URL: cs.URL, Timeout: 5 * time.Second}, Username: cs.Username, Password: cs.Password}, pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	validators := map[string]catalog.Validator{sandbox.Name: nil, comet.Name: comet.ValidateSettings, "codeguard": nil}
	cat, err := catalog.Parse([]byte(rpcCatalog), "test", validators)
	if err != nil {
		t.Fatal(err)
	}
	wnc, wjs := workertest.Connect(t, ns.ClientURL())
	w, err := worker.New(wjs, cat, map[string]worker.Provider{sandbox.Name: sandbox.New(), comet.Name: cp}, workertest.Options(), zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Setup(workertest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rpc, err := w.StartRPC(workertest.Context(t, time.Hour), wnc, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rpc.Stop)
	workertest.Run(t, w)
	nc, js := workertest.Connect(t, ns.ClientURL())
	return &rpcEnv{nc: nc, cometd: cs, results: workertest.CollectResults(t, js), reg: reg}
}

// ask sends a request and decodes the reply into out.
func (e *rpcEnv) ask(t *testing.T, subject string, req events.RPCRequest, out any) {
	t.Helper()
	b, _ := json.Marshal(req)
	m, err := e.nc.Request(subject, b, 5*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if err := json.Unmarshal(m.Data, out); err != nil {
		t.Fatalf("reply to %s is not JSON: %v: %s", subject, err, m.Data)
	}
}

func (e *rpcEnv) publish(t *testing.T, env events.Envelope) {
	t.Helper()
	b, _ := json.Marshal(env)
	m, err := e.nc.Request(events.InboundSubject(env.Source, env.Type), b, 5*time.Second)
	if err != nil {
		t.Fatalf("publish %s: %v", env.ID, err)
	}
	if strings.Contains(string(m.Data), "error") {
		t.Fatalf("publish %s: %s", env.ID, m.Data)
	}
}

func TestRPCStatusAndProvidersCheck(t *testing.T) {
	e := newRPCEnv(t)
	var st events.StatusReply
	workertest.Eventually(t, 10*time.Second, "a ready status", func() bool {
		e.ask(t, events.RPCStatus, events.RPCRequest{}, &st)
		return st.Error == "" && st.Ready
	})
	if st.Worker == "" || st.Consumer == "" {
		t.Errorf("status names no worker or consumer: %+v", st)
	}
	for _, p := range []string{comet.Name, sandbox.Name} {
		if _, ok := st.Providers[p]; !ok {
			t.Errorf("status lists no health for %s: %v", p, st.Providers)
		}
	}

	tests := []struct {
		name     string
		provider string
		fail     bool
		wantOK   map[string]bool
		wantErr  string
	}{
		{name: "one provider", provider: comet.Name, wantOK: map[string]bool{comet.Name: true}},
		{name: "every provider", wantOK: map[string]bool{comet.Name: true, sandbox.Name: true}},
		{name: "provider down", provider: comet.Name, fail: true, wantOK: map[string]bool{comet.Name: false}},
		{name: "not configured", provider: "codeguard", wantErr: `provider "codeguard" is not configured`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fail {
				e.cometd.FailNext(1, 503)
			}
			var rep events.ProvidersCheckReply
			e.ask(t, events.RPCProvidersCheck, events.RPCRequest{Provider: tc.provider}, &rep)
			if tc.wantErr != "" {
				if !strings.Contains(rep.Error, tc.wantErr) {
					t.Fatalf("error = %q, want %q", rep.Error, tc.wantErr)
				}
				return
			}
			if rep.Error != "" || len(rep.Providers) != len(tc.wantOK) {
				t.Fatalf("reply = %+v, want checks of %v", rep, tc.wantOK)
			}
			for _, c := range rep.Providers {
				if want, ok := tc.wantOK[c.Provider]; !ok || c.OK != want {
					t.Errorf("check %+v, want ok=%v", c, want)
				}
				if !c.OK && (c.Error == "" || c.ErrorClass != events.Transient) {
					t.Errorf("failed check without a transient error: %+v", c)
				}
			}
		})
	}
}

func TestRPCServiceResultRetryAndCometSSO(t *testing.T) {
	e := newRPCEnv(t)
	client := events.Client{ID: 7, Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"}
	mk := func(id string, s events.OrderedService) events.Envelope {
		t.Helper()
		env, err := events.NewEnvelope(id, events.OrderAccepted, "main", time.Now(),
			events.OrderAcceptedData{OrderID: s.ServiceID, Client: client, Services: []events.OrderedService{s}})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	// Service 41: product 9 is in no catalog; its module settings route it to Comet.
	e.publish(t, mk("whmcs:main:ModuleCreate:41", events.OrderedService{ServiceID: 41, ProductID: 9, BillingCycle: "Monthly",
		Module: &events.ModuleSettings{Provider: comet.Name, Signup: events.SignupCustomer}}))
	// Service 42: the catalog's failing product: dead-lettered.
	e.publish(t, mk("whmcs:main:AcceptOrder:42", events.OrderedService{ServiceID: 42, ProductID: 2}))
	// Service 43: module settings naming a provider this worker lacks.
	e.publish(t, mk("whmcs:main:ModuleCreate:43", events.OrderedService{ServiceID: 43, ProductID: 9,
		Module: &events.ModuleSettings{Provider: "codeguard"}}))
	ok := e.results.WaitFor(t, events.ProvisioningSucceeded, 1, 15*time.Second)
	if ok[0].Data.ServiceID != 41 || ok[0].Data.Provider != comet.Name || ok[0].Data.Reference == "" {
		t.Fatalf("module-routed signup result = %+v", ok[0].Data)
	}
	user := ok[0].Data.Reference
	if _, found := e.cometd.User(user); !found {
		t.Fatalf("Comet fake has no user %q", user)
	}
	e.results.WaitFor(t, events.ProvisioningDeadLettered, 2, 15*time.Second)

	t.Run("last result", func(t *testing.T) {
		var rep events.ServiceResultReply
		workertest.Eventually(t, 10*time.Second, "service 41's result in the index", func() bool {
			rep = events.ServiceResultReply{}
			e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: 41}, &rep)
			return rep.Found
		})
		if rep.Error != "" || rep.Last.Type != events.ProvisioningSucceeded || rep.Last.Reference != user ||
			rep.Last.Action != events.SignupCustomer || rep.Last.Attempt < 1 || len(rep.DeadLetters) != 0 {
			t.Fatalf("service 41: %+v last=%+v", rep, rep.Last)
		}
		var dl events.ServiceResultReply
		workertest.Eventually(t, 10*time.Second, "service 42's dead letter", func() bool {
			dl = events.ServiceResultReply{}
			e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: 42}, &dl)
			return dl.Found && len(dl.DeadLetters) == 1
		})
		if dl.Last.Type != events.ProvisioningDeadLettered || dl.Last.Error == "" || dl.DeadLetters[0].Reason == "" {
			t.Fatalf("service 42: %+v last=%+v", dl, dl.Last)
		}
		var unk events.ServiceResultReply
		e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: 43}, &unk)
		if len(unk.DeadLetters) != 1 || !strings.Contains(unk.DeadLetters[0].Reason, `provider "codeguard", which this worker has not configured`) {
			t.Fatalf("service 43 (unconfigured provider): %+v", unk)
		}
		var none events.ServiceResultReply
		e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "other", ServiceID: 41}, &none)
		if none.Found || none.Error != "" {
			t.Fatalf("another instance's service 41: %+v", none)
		}
		var bad events.ServiceResultReply
		e.ask(t, events.RPCServiceResult, events.RPCRequest{ServiceID: 41}, &bad)
		if !strings.Contains(bad.Error, `"source"`) {
			t.Fatalf("request without source: %+v", bad)
		}
	})

	t.Run("queued until finished", func(t *testing.T) {
		slow := mk("whmcs:main:AcceptOrder:44", events.OrderedService{ServiceID: 44, ProductID: 3})
		e.publish(t, slow)
		var rep events.ServiceResultReply
		e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: 44}, &rep)
		if rep.Error != "" || len(rep.Queued) != 1 || rep.Queued[0].EventID != slow.ID || rep.Queued[0].Type != events.OrderAccepted {
			t.Fatalf("service 44 while its signup runs: %+v", rep)
		}
		var other events.ServiceResultReply
		e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: 41}, &other)
		if len(other.Queued) != 0 {
			t.Fatalf("service 41 has nothing queued: %+v", other.Queued)
		}
		workertest.Eventually(t, 15*time.Second, "service 44 done", func() bool {
			rep = events.ServiceResultReply{} // a reply without "queued" leaves the field alone
			e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: 44}, &rep)
			return len(rep.Queued) == 0 && rep.Found && rep.Last.Type == events.ProvisioningSucceeded
		})
	})

	t.Run("retry now", func(t *testing.T) {
		var rep events.ServiceRetryReply
		e.ask(t, events.RPCServiceRetry, events.RPCRequest{Source: "main", ServiceID: 42}, &rep)
		if rep.Error != "" || len(rep.Replayed) != 1 || rep.Replayed[0].EventSeq == 0 {
			t.Fatalf("retry service 42: %+v", rep)
		}
		// The replayed event fails again (the product always fails) and is dead-lettered anew.
		e.results.WaitFor(t, events.ProvisioningDeadLettered, 3, 15*time.Second)
		var again events.ServiceResultReply
		workertest.Eventually(t, 10*time.Second, "the new dead letter", func() bool {
			again = events.ServiceResultReply{}
			e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: 42}, &again)
			return len(again.DeadLetters) == 1 && again.DeadLetters[0].Seq != rep.Replayed[0].Seq
		})
		var nothing events.ServiceRetryReply
		e.ask(t, events.RPCServiceRetry, events.RPCRequest{Source: "main", ServiceID: 41}, &nothing)
		if nothing.Error != "" || len(nothing.Replayed) != 0 {
			t.Fatalf("retry a service without dead letters: %+v", nothing)
		}
	})

	t.Run("comet sso", func(t *testing.T) {
		var rep events.SSOReply
		e.ask(t, events.RPCCometSSO, events.RPCRequest{Source: "main", ServiceID: 41, Username: "someone-else"}, &rep)
		if rep.Error != "" || rep.URL != e.cometd.URL+"/" || rep.Username != user || rep.SessionKey == "" {
			t.Fatalf("sso reply = %+v", rep)
		}
		if got, ok := e.cometd.SessionUser(rep.SessionKey); !ok || got != user {
			t.Fatalf("the session key logs in as %q (%v), want the service's user %q", got, ok, user)
		}
		var other events.SSOReply
		e.ask(t, events.RPCCometSSO, events.RPCRequest{Source: "main", ServiceID: 42}, &other)
		if other.SessionKey != "" || !strings.Contains(other.Error, "no Comet account") {
			t.Fatalf("sso for a service at another provider = %+v", other)
		}
		var missing events.SSOReply
		e.ask(t, events.RPCCometSSO, events.RPCRequest{Source: "main", ServiceID: 99, Username: "nosuchuser"}, &missing)
		if missing.SessionKey != "" || !strings.Contains(missing.Error, "User not found") {
			t.Fatalf("sso for an unknown user = %+v", missing)
		}
		if ok, bad := e.requests(t, "sso_comet", "ok"), e.requests(t, "sso_comet", "error"); ok != 1 || bad != 2 {
			t.Errorf("hookworker_rpc_requests_total{request=sso_comet}: ok %v, error %v; want 1 and 2", ok, bad)
		}
	})
}

// The last result is read from the results stream on request, by the
// service's result subjects: the newest of any outcome, of that instance
// and service only, and a failure that names no account keeps the
// reference of the service's success at the same provider.
func TestRPCServiceResultReadsTheNewestOfTheService(t *testing.T) {
	e := newRPCEnv(t)
	put := func(id string, typ events.Type, source string, d events.ResultData) {
		t.Helper()
		env, err := events.NewEnvelope(id, typ, source, time.Now(), d)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		outcome := strings.TrimPrefix(string(typ), "provisioning.")
		if _, err := e.nc.Request(events.ResultSubject(outcome, source, d.ServiceID), b, 5*time.Second); err != nil {
			t.Fatalf("store result %s: %v", id, err)
		}
	}
	ok := func(svc int, provider, ref string) events.ResultData {
		return events.ResultData{SourceEventID: "e", OperationKey: "k", Action: events.SignupCustomer, Provider: provider, ServiceID: svc, Attempt: 1, Reference: ref}
	}
	fail := func(svc int, provider string) events.ResultData {
		return events.ResultData{SourceEventID: "e", OperationKey: "k", Action: events.Renew, Provider: provider, ServiceID: svc, Attempt: 2,
			WillRetry: true, ErrorClass: events.Transient, Error: "timeout"}
	}
	put("r1", events.ProvisioningSucceeded, "main", ok(501, "comet", "user-501"))
	put("r2", events.ProvisioningFailed, "main", fail(501, "comet"))
	put("r3", events.ProvisioningSucceeded, "main", ok(502, "comet", "user-502"))
	put("r4", events.ProvisioningDeadLettered, "main", fail(502, "codeguard"))
	put("r5", events.ProvisioningSucceeded, "other", ok(503, "comet", "other-503"))
	put("r6", events.ProvisioningSucceeded, "main", ok(5030, "comet", "user-5030"))
	put("r7", events.ProvisioningSucceeded, "main", ok(504, "comet", "user-504-old"))
	put("r8", events.ProvisioningSucceeded, "main", ok(504, "comet", "user-504"))

	for _, tc := range []struct {
		name      string
		source    string
		service   int
		found     bool
		id        string
		reference string
	}{
		{"failure after success keeps the account", "main", 501, true, "r2", "user-501"},
		{"failure at another provider names none", "main", 502, true, "r4", ""},
		{"another instance's service", "main", 503, false, "", ""},
		{"same service id at another instance", "other", 503, true, "r5", "other-503"},
		{"newest success", "main", 504, true, "r8", "user-504"},
		{"no result", "main", 505, false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep events.ServiceResultReply
			e.ask(t, events.RPCServiceResult, events.RPCRequest{Source: tc.source, ServiceID: tc.service}, &rep)
			if rep.Error != "" || rep.Found != tc.found || rep.Partial {
				t.Fatalf("reply = %+v", rep)
			}
			if !tc.found {
				return
			}
			if rep.Last.EventID != tc.id || rep.Last.Reference != tc.reference {
				t.Fatalf("last = %+v, want result %s with reference %q", rep.Last, tc.id, tc.reference)
			}
		})
	}
}
