package whmcs_test

// Tests of the WHMCS server module (modules/servers/hookworker/hookworker.php)
// through the WHMCS stand-in (tests/run_module.php), against a real
// JetStream server and, for the synchronous calls, a real worker answering
// request-reply with the Comet fake behind it.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

// modCall is one module function call's outcome.
type modCall struct {
	Fn      string          `json:"fn"`
	Seconds float64         `json:"seconds"`
	Return  json.RawMessage `json:"return"`
	Last    *struct {
		Published int     `json:"published"`
		Spooled   int     `json:"spooled"`
		Error     *string `json:"error"`
	} `json:"last"`
}

// str is the call's return as a string (lifecycle functions, RetryNow).
func (c modCall) str(t *testing.T) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(c.Return, &s); err != nil {
		t.Fatalf("%s returned %s, not a string", c.Fn, c.Return)
	}
	return s
}

// obj is the call's return as an object (TestConnection, SSO, tab fields, ClientArea).
func (c modCall) obj(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(c.Return, &m); err != nil {
		t.Fatalf("%s returned %s, not an object", c.Fn, c.Return)
	}
	return m
}

// module calls hookworker_<fn>(params) pairs in one PHP process.
func (h *hw) module(pairs ...any) []modCall {
	h.t.Helper()
	var args []string
	for i := 0; i < len(pairs); i += 2 {
		b, err := json.Marshal(pairs[i+1])
		if err != nil {
			h.t.Fatal(err)
		}
		args = append(args, pairs[i].(string), string(b))
	}
	c := exec.Command(h.php, append([]string{filepath.Join(h.dir, "tests", "run_module.php")}, args...)...)
	c.Env = h.cmd().Env
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		h.t.Fatalf("php: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	var r struct {
		Calls  []modCall `json:"calls"`
		Errors []string  `json:"errors"`
		Output string    `json:"output"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		h.t.Fatalf("php output is not JSON: %v\n%s\nstderr: %s", err, out, stderr.String())
	}
	if len(r.Errors) > 0 {
		h.t.Errorf("PHP raised errors: %v", r.Errors)
	}
	if r.Output != "" {
		h.t.Errorf("module leaked output: %q", r.Output)
	}
	return r.Calls
}

// hwParams are module params of service 110 (product 8, module hookworker)
// as WHMCS passes them, secrets included; Module Settings: Comet.
func hwParams(extra map[string]any) map[string]any {
	p := moduleParams(110, 8)
	p["moduletype"] = "hookworker"
	p["domain"], p["username"] = "m110.example.com", "ada110"
	p["configoption1"], p["configoption2"], p["configoption3"], p["configoption4"] = "comet", "signup_customer", "WHMCS_backup", "on"
	p["configoption9"] = "# other settings, key=value\nstorage_vault_template=" + comettest.StorageTemplate
	p["configoption10"] = "3"
	p["configoptions"] = map[string]any{"number_of_devices": "3", "storage_vault_quota_gb": "100"}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

var lifecycle = []struct {
	fn, typ, idPrefix string
}{
	{"CreateAccount", "order.accepted", "whmcs:test:ModuleCreate:110"},
	{"SuspendAccount", "service.suspended", "whmcs:test:ModuleSuspendAccount:110:"},
	{"UnsuspendAccount", "service.unsuspended", "whmcs:test:ModuleUnsuspendAccount:110:"},
	{"TerminateAccount", "service.terminated", "whmcs:test:ModuleTerminateAccount:110:"},
	{"ChangePassword", "service.password_changed", "whmcs:test:ModuleChangePassword:110:"},
	{"ChangePackage", "service.package_changed", "whmcs:test:ModuleChangePackage:110:"},
	{"Renew", "service.renewal_paid", "whmcs:test:ModuleRenew:610:110"}, // 620 is unpaid: the latest paid invoice
}

func TestModuleLifecyclePublishesWithModuleSettings(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, n.url)
	var pairs []any
	for _, l := range lifecycle {
		pairs = append(pairs, l.fn, hwParams(map[string]any{"suspendreason": "Overdue"}))
	}
	for _, c := range h.module(pairs...) {
		if got := c.str(t); got != "success" {
			t.Errorf("%s returned %q", c.Fn, got)
		}
		if c.Last == nil || c.Last.Published != 1 {
			t.Errorf("%s: publish stats %+v", c.Fn, c.Last)
		}
	}
	msgs := n.messages(t) // decoded, subject and Nats-Msg-Id checked, no secret
	if len(msgs) != len(lifecycle) {
		t.Fatalf("%d events, want %d: %v", len(msgs), len(lifecycle), ids(msgs))
	}
	validators := map[string]catalog.Validator{comet.Name: comet.ValidateSettings}
	empty, err := catalog.Parse([]byte("products: []\n"), "empty", validators)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lifecycle {
		m := msgs[i]
		if string(m.Env.Type) != l.typ || !strings.HasPrefix(m.Env.ID, l.idPrefix) {
			t.Errorf("%s published %s %s, want %s %s…", l.fn, m.Env.Type, m.Env.ID, l.typ, l.idPrefix)
		}
		// The module settings route it, with no catalog entry for product 8.
		ops, err := worker.Route(m.Env, empty)
		if err != nil || len(ops) != 1 {
			t.Fatalf("%s: route: %v %+v", l.fn, err, ops)
		}
		op := ops[0]
		if op.Provider != comet.Name || op.ServiceID != 110 || op.Settings["policy_group_id"] != "WHMCS_backup" ||
			op.Settings["create_policy_group"] != "yes" || op.Settings["storage_vault_template"] != comettest.StorageTemplate {
			t.Errorf("%s: operation %+v", l.fn, op)
		}
		switch l.fn {
		case "CreateAccount":
			if op.Action != events.SignupCustomer || op.ConfigOpts["number_of_devices"] != "3" || op.OrderID != 60 || op.Client == nil || op.Client.Email != "ada@example.com" {
				t.Errorf("signup operation %+v", op)
			}
		case "Renew":
			if op.Action != events.Renew || op.InvoiceID != 610 || op.Months != 1 {
				t.Errorf("renew operation %+v", op)
			}
		case "SuspendAccount":
			if op.Action != events.Suspend || op.Reason != "Overdue" {
				t.Errorf("suspend operation %+v", op)
			}
		case "ChangePackage":
			if op.Action != events.ChangePackage || op.ConfigOpts["storage_vault_quota_gb"] != "100" || op.BillingCycle != "Monthly" {
				t.Errorf("change-package operation %+v", op)
			}
		}
	}
	// A second Create of the same service (a double click, a later request) is the same event.
	again := h.module("CreateAccount", hwParams(nil))
	if again[0].str(t) != "success" || len(n.messages(t)) != len(lifecycle) {
		t.Fatalf("second CreateAccount: %s, %d events", again[0].Return, len(n.messages(t)))
	}
}

func TestModuleSettingsErrorsPublishNothing(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, n.url)
	for _, tc := range []struct {
		extra map[string]any
		want  string
	}{
		{map[string]any{"configoption1": ""}, "Provider must be comet, storegrid or codeguard"},
		{map[string]any{"configoption2": "signup_everyone"}, "Signup must be"},
		{map[string]any{"configoption1": "storegrid", "configoption7": "ten"}, "StoreGrid storage GB"},
		{map[string]any{"configoption9": "no equals sign"}, "More settings line 1"},
	} {
		got := h.module("CreateAccount", hwParams(tc.extra))[0].str(t)
		if !strings.Contains(got, tc.want) {
			t.Errorf("CreateAccount with %v returned %q, want %q", tc.extra, got, tc.want)
		}
	}
	if m := n.messages(t); len(m) != 0 {
		t.Fatalf("published %v", ids(m))
	}
}

func TestModuleNATSDown(t *testing.T) {
	h := newHW(t, closedPort(t))
	var pairs []any
	for _, l := range lifecycle {
		pairs = append(pairs, l.fn, hwParams(nil))
	}
	pairs = append(pairs, "TestConnection", hwParams(nil), "ServiceSingleSignOn", hwParams(nil),
		"AdminServicesTabFields", hwParams(nil), "ClientArea", hwParams(nil), "RetryNow", hwParams(nil))
	calls := h.module(pairs...)
	for _, c := range calls[:len(lifecycle)] {
		if got := c.str(t); got != "success" {
			t.Errorf("%s with NATS down returned %q, want success", c.Fn, got)
		}
		if c.Last != nil && c.Last.Spooled != 1 {
			t.Errorf("%s: not spooled: %+v", c.Fn, c.Last)
		}
	}
	if got := len(h.spoolFiles()); got != len(lifecycle) {
		t.Fatalf("%d spool entries, want %d", got, len(lifecycle))
	}
	for _, c := range calls[len(lifecycle):] {
		if c.Seconds > 3.5 {
			t.Errorf("%s took %.1fs with NATS down", c.Fn, c.Seconds)
		}
		if !strings.Contains(string(c.Return), "NATS unreachable") && c.Fn != "ClientArea" {
			t.Errorf("%s with NATS down returned %s, want a clear NATS error", c.Fn, c.Return)
		}
	}
	tc := calls[len(lifecycle)].obj(t)
	if tc["success"] != false {
		t.Errorf("TestConnection: %v", tc)
	}
	if ca := calls[len(calls)-2].obj(t); ca["vars"].(map[string]any)["hookworker_state"] != "unknown" {
		t.Errorf("ClientArea with NATS down: %v", ca)
	}
	// NATS back: the cron flush sends the spooled events.
	n := startNATS(t, nil)
	h.env["HW_SERVERS"] = n.url
	h.cron()
	if got := len(n.messages(t)); got != len(lifecycle) {
		t.Fatalf("after the flush %d events, want %d", got, len(lifecycle))
	}
}

// One source of truth per action: the hooks publish nothing the module does.
func TestHooksLeaveModuleProductsToTheModule(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, n.url)
	h.run(
		"AfterModuleSuspend", withParams(110, 8, map[string]any{"moduletype": "hookworker"}),
		"AfterModuleChangePassword", map[string]any{"serviceid": 110, "oldpassword": "S3cr3t-a", "newpassword": "S3cr3t-b"},
		"AfterModuleTerminate", withParams(101, 5, nil), // another module: still published
		"AcceptOrder", map[string]any{"orderid": 60},
		"InvoicePaid", map[string]any{"invoiceid": 610},
	)
	msgs := n.messages(t)
	var types []string
	for _, m := range msgs {
		types = append(types, string(m.Env.Type))
	}
	if strings.Join(types, ",") != "service.terminated,order.accepted,invoice.paid" {
		t.Fatalf("published %v (%v)", types, ids(msgs))
	}
	oa, _ := msgs[1].Env.Payload()
	if s := oa.(*events.OrderAcceptedData).Services; len(s) != 1 || s[0].ServiceID != 102 {
		t.Errorf("AcceptOrder services %+v, want only 102 (110 is the module's)", s)
	}
	ip, _ := msgs[2].Env.Payload()
	items := ip.(*events.InvoicePaidData).Items
	if len(items) != 1 || items[0].Module != events.ModuleManaged || !items[0].Renewal {
		t.Errorf("InvoicePaid items %+v, want 110's renewal marked as the module's", items)
	}
}

// rpcWorker runs a worker with the Comet fake answering request-reply on n.
func rpcWorker(t *testing.T, n *natsEnv, opts ...nats.Option) (*comettest.Server, *workertest.Results) {
	t.Helper()
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
	cat, err := catalog.Parse([]byte("products: []\n"), "empty", map[string]catalog.Validator{comet.Name: comet.ValidateSettings, "storegrid": nil})
	if err != nil {
		t.Fatal(err)
	}
	connect := func() (*nats.Conn, jetstream.JetStream) {
		nc, err := nats.Connect(n.url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	nc, js := connect()
	o := workertest.Options()
	o.DuplicateWindow = 5 * time.Minute // as the test stream was created
	w, err := worker.New(js, cat, map[string]worker.Provider{comet.Name: cp}, o, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Setup(workertest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	rpc, err := w.StartRPC(workertest.Context(t, time.Hour), nc, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rpc.Stop)
	workertest.Run(t, w)
	_, cjs := connect()
	return cs, workertest.CollectResults(t, cjs)
}

func TestModuleSyncCallsAskTheWorker(t *testing.T) {
	n := startNATS(t, nil)
	cs, results := rpcWorker(t, n)
	h := newHW(t, n.url)

	if got := h.module("CreateAccount", hwParams(nil))[0].str(t); got != "success" {
		t.Fatalf("CreateAccount: %q", got)
	}
	ok := results.WaitFor(t, events.ProvisioningSucceeded, 1, 20*time.Second)
	user := ok[0].Data.Reference
	if ok[0].Data.ServiceID != 110 || user == "" {
		t.Fatalf("signup result %+v", ok[0].Data)
	}

	t.Run("check tool", func(t *testing.T) {
		c := exec.Command(h.php, filepath.Join(h.dir, "hookworker_check.php"))
		c.Env = h.cmd().Env
		out, err := c.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ok worker: ") || !strings.Contains(string(out), " answers (ready") {
			t.Errorf("hookworker_check.php with a worker: %v\n%s", err, out)
		}
	})

	t.Run("test connection", func(t *testing.T) {
		c := h.module("TestConnection", hwParams(nil), "TestConnection", map[string]any{})
		for _, x := range c {
			if r := x.obj(t); r["success"] != true {
				t.Errorf("TestConnection: %v", r)
			}
		}
		cs.FailNext(1, 503)
		r := h.module("TestConnection", hwParams(nil))[0]
		if m := r.obj(t); m["success"] != false || !strings.Contains(m["error"].(string), "comet") {
			t.Errorf("TestConnection with Comet failing: %v", m)
		}
		r = h.module("TestConnection", hwParams(map[string]any{"configoption1": "codeguard"}))[0]
		if m := r.obj(t); m["success"] != false || !strings.Contains(m["error"].(string), `provider "codeguard" is not configured`) {
			t.Errorf("TestConnection for a provider the worker lacks: %v", m)
		}
		// The Servers page: a hookworker server entry names its provider as Username.
		r = h.module("TestConnection", map[string]any{"serverusername": "storegrid", "serverpassword": "S3cr3t-server-pass"})[0]
		if m := r.obj(t); m["success"] != false || !strings.Contains(m["error"].(string), `provider "storegrid" is not configured`) {
			t.Errorf("TestConnection of a server entry naming storegrid: %v", m)
		}
	})

	t.Run("single sign-on", func(t *testing.T) {
		r := h.module("ServiceSingleSignOn", hwParams(nil))[0].obj(t)
		to, _ := r["redirectTo"].(string)
		page, frag, found := strings.Cut(to, "#")
		if r["success"] != true || !found || page != "modules/servers/hookworker/sso.html" {
			t.Fatalf("SSO: %v", r)
		}
		raw, err := base64.RawURLEncoding.DecodeString(frag)
		if err != nil {
			t.Fatal(err)
		}
		var login struct{ Server, Username, Sessionkey string }
		if err := json.Unmarshal(raw, &login); err != nil {
			t.Fatal(err)
		}
		if login.Server != cs.URL+"/" || login.Username != user {
			t.Fatalf("SSO login %+v, want user %s at %s", login, user, cs.URL)
		}
		if got, ok := cs.SessionUser(login.Sessionkey); !ok || got != user {
			t.Fatalf("the session key logs in as %q (%v), want %q", got, ok, user)
		}
		web := h.module("ServiceSingleSignOn", hwParams(map[string]any{"configoption11": "https://backup.example.com"}))[0].obj(t)
		_, wfrag, _ := strings.Cut(web["redirectTo"].(string), "#")
		if raw, _ := base64.RawURLEncoding.DecodeString(wfrag); !strings.Contains(string(raw), `"server":"https://backup.example.com/"`) {
			t.Errorf("SSO with a Comet web address: %v %s", web, raw)
		}
		cg := h.module("ServiceSingleSignOn", hwParams(map[string]any{"configoption1": "codeguard"}))[0].obj(t)
		if cg["success"] != false || !strings.Contains(cg["errorMsg"].(string), "CodeGuard has no public single sign-on") {
			t.Errorf("CodeGuard SSO: %v", cg)
		}
	})

	t.Run("services tab, client area, retry now", func(t *testing.T) {
		c := h.module("AdminServicesTabFields", hwParams(nil), "ClientArea", hwParams(nil), "RetryNow", hwParams(nil))
		tab := c[0].obj(t)
		if !strings.Contains(tab["hookworker status"].(string), "provisioned") || tab["Provider reference"] != user ||
			!strings.Contains(tab["Last result"].(string), "provisioning.succeeded") {
			t.Errorf("services tab after the signup: %v", tab)
		}
		if v := c[1].obj(t)["vars"].(map[string]any); v["hookworker_state"] != "ok" || v["hookworker_account"] != user {
			t.Errorf("client area after the signup: %v", v)
		}
		if got := c[2].str(t); !strings.Contains(got, "no dead letter") {
			t.Errorf("RetryNow without a dead letter: %q", got)
		}

		// While an action is queued or running the service is "provisioning pending".
		cs.Delay(time.Second)
		// (the write-back has set the service username to the signup's account name)
		if got := h.module("SuspendAccount", hwParams(map[string]any{"username": user}))[0].str(t); got != "success" {
			t.Fatalf("SuspendAccount: %q", got)
		}
		pending := h.module("AdminServicesTabFields", hwParams(nil))[0].obj(t)
		cs.Delay(0)
		if !strings.Contains(pending["hookworker status"].(string), "provisioning pending") ||
			!strings.Contains(fmt.Sprint(pending["Queued at the worker"]), "service.suspended whmcs:test:ModuleSuspendAccount:110:") {
			t.Errorf("services tab while the suspend runs: %v", pending)
		}
		results.WaitFor(t, events.ProvisioningSucceeded, 2, 20*time.Second)

		// A package change routed to a provider this worker lacks is dead-lettered.
		if got := h.module("ChangePackage", hwParams(map[string]any{"configoption1": "storegrid", "configoption7": "10"}))[0].str(t); got != "success" {
			t.Fatalf("ChangePackage: %q", got)
		}
		results.WaitFor(t, events.ProvisioningDeadLettered, 1, 20*time.Second)
		var tab2 map[string]any
		workertest.Eventually(t, 10*time.Second, "the dead letter on the services tab", func() bool {
			tab2 = h.module("AdminServicesTabFields", hwParams(nil))[0].obj(t)
			return tab2["Dead letters"] != nil
		})
		if !strings.Contains(tab2["hookworker status"].(string), "failed") || !strings.Contains(tab2["Dead letters"].(string), "storegrid") {
			t.Errorf("services tab with a dead letter: %v", tab2)
		}
		if v := h.module("ClientArea", hwParams(nil))[0].obj(t)["vars"].(map[string]any); v["hookworker_state"] != "failed" ||
			strings.Contains(v["hookworker_message"].(string), "storegrid") {
			t.Errorf("client area with a dead letter (no internal error text): %v", v)
		}
		if got := h.module("RetryNow", hwParams(nil))[0].str(t); got != "success" {
			t.Fatalf("RetryNow: %q", got)
		}
		results.WaitFor(t, events.ProvisioningDeadLettered, 2, 20*time.Second) // replayed, fails again the same way
	})
}

func TestModuleWorkerNotAnswering(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, n.url)
	fns := []any{"TestConnection", hwParams(nil), "ServiceSingleSignOn", hwParams(nil), "AdminServicesTabFields", hwParams(nil), "RetryNow", hwParams(nil)}

	check := exec.Command(h.php, filepath.Join(h.dir, "hookworker_check.php"))
	check.Env = h.cmd().Env
	if out, err := check.CombinedOutput(); err != nil || !strings.Contains(string(out), "\n  worker: no hookworker worker is running") {
		t.Errorf("hookworker_check.php without a worker (informational, not a failure): %v\n%s", err, out)
	}

	// No worker at all: no responders, answered at once.
	for _, c := range h.module(fns...) {
		if !strings.Contains(string(c.Return), "no hookworker worker is running") || c.Seconds > 1 {
			t.Errorf("%s without a worker (%.2fs): %s", c.Fn, c.Seconds, c.Return)
		}
	}

	// A worker that takes requests and never answers: bounded by the timeout.
	nc, err := nats.Connect(n.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := nc.QueueSubscribe(events.RPCPrefix+".>", events.RPCQueue, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// The client area waits at most 1.5 s whatever the setting.
	if ca := h.module("ClientArea", hwParams(map[string]any{"configoption10": "10"}))[0]; ca.Seconds > 2 ||
		ca.obj(t)["vars"].(map[string]any)["hookworker_state"] != "unknown" {
		t.Errorf("ClientArea with a silent worker (%.2fs): %s", ca.Seconds, ca.Return)
	}
	slow := hwParams(map[string]any{"configoption10": "1"})
	for _, c := range h.module("TestConnection", slow, "ServiceSingleSignOn", slow, "AdminServicesTabFields", slow, "RetryNow", slow) {
		if !strings.Contains(string(c.Return), "no hookworker worker answered") || c.Seconds < 0.9 || c.Seconds > 1.5 {
			t.Errorf("%s with a silent worker (%.2fs): %s", c.Fn, c.Seconds, c.Return)
		}
	}
	// The lifecycle functions never ask: still success at once.
	if got := h.module("SuspendAccount", slow)[0]; got.str(t) != "success" || got.Seconds > 1 {
		t.Errorf("SuspendAccount: %s in %.2fs", got.Return, got.Seconds)
	}
}

// The module's requests are authenticated like its publishes: the hook
// config's token.
func TestModuleRequestsUseTheHookCredentials(t *testing.T) {
	const token = "tok-S3cr3t-nats"
	n := startNATS(t, func(o *server.Options) { o.Authorization = token }, nats.Token(token))
	rpcWorker(t, n, nats.Token(token))
	h := newHW(t, n.url)
	h.env["HW_TOKEN"] = "wrong-S3cr3t-token"
	r := h.module("TestConnection", hwParams(nil))[0].obj(t)
	if r["success"] != false || !strings.Contains(r["error"].(string), "Authorization Violation") || strings.Contains(r["error"].(string), "S3cr3t") {
		t.Fatalf("TestConnection with a wrong token: %v", r)
	}
	h.env["HW_TOKEN"] = token
	if r := h.module("TestConnection", hwParams(nil))[0].obj(t); r["success"] != true {
		t.Fatalf("TestConnection with the token: %v", r)
	}
}

// MetaData, ConfigOptions (whose order is the configoptionN contract) and
// the custom button.
func TestModuleMetaDataAndSettings(t *testing.T) {
	h := newHW(t, closedPort(t))
	c := h.module("MetaData", map[string]any{}, "ConfigOptions", map[string]any{}, "AdminCustomButtonArray", map[string]any{})
	meta := c[0].obj(t)
	if meta["APIVersion"] != "1.1" || meta["RequiresServer"] != false || meta["ServiceSingleSignOnLabel"] == nil || meta["DisplayName"] == nil {
		t.Errorf("MetaData %v", meta)
	}
	// json_encode keeps the PHP array's order: decode it in order.
	dec := json.NewDecoder(bytes.NewReader(c[1].Return))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for dec.More() {
		k, _ := dec.Token()
		names = append(names, k.(string))
		var v map[string]any
		if err := dec.Decode(&v); err != nil || v["Type"] == nil {
			t.Errorf("setting %v: %v %v", k, v, err)
		}
	}
	want := []string{"Provider", "Signup", "Comet policy group", "Comet create policy group", "Comet Storage Vault template",
		"CodeGuard plan", "StoreGrid storage GB", "StoreGrid reseller", "More settings", "Request timeout", "Comet web address"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("ConfigOptions (configoption1..N) = %v, want %v", names, want)
	}
	if b := c[2].obj(t); b["Retry now"] != "RetryNow" {
		t.Errorf("AdminCustomButtonArray %v", b)
	}
}
