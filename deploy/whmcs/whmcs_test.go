// Package whmcs_test drives the WHMCS hook (deploy/whmcs/hookworker.php)
// with Debian's php-cli against an embedded nats-server with JetStream: every
// published event must decode with events.Decode, carry the expected id,
// type and subject, and never contain a secret.
package whmcs_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
)

const streamName = "WHMCS_EVENTS"

// secrets are the values planted in the stub data and hook variables; none
// may ever reach NATS.
var secrets = []string{
	"S3cr3t", // every planted secret value starts with this
	`"password"`, "serverpassword", "accesshash", "oldpassword", "newpassword",
}

// ---------------------------------------------------------------------------
// harness

// phpBinary is the PHP the tests run: $HOOKWORKER_TEST_PHP when set (e.g.
// the wrapper scripts/php-root prints, to run another Debian release's PHP
// in a chroot), else php from PATH.
func phpBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOOKWORKER_TEST_PHP"); p != "" {
		return p
	}
	p, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("php not on PATH (CI must install php-cli): %v", err)
		}
		t.Skipf("php not on PATH: %v", err)
	}
	return p
}

func hookDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

type natsEnv struct {
	srv    *server.Server
	url    string
	nc     *nats.Conn
	stream jetstream.Stream
}

// startNATS starts an embedded JetStream server on a random 127.0.0.1 port
// and creates the events stream exactly as the worker does.
func startNATS(t *testing.T, mod func(*server.Options), connOpts ...nats.Option) *natsEnv {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}
	if mod != nil {
		mod(opts)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := fmt.Sprintf("nats://127.0.0.1:%d", ns.Addr().(*net.TCPAddr).Port)
	nc, err := nats.Connect(url, connOpts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       streamName,
		Subjects:   []string{events.InboundWildcard},
		Storage:    jetstream.FileStorage,
		Duplicates: 5 * time.Minute,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return &natsEnv{srv: ns, url: url, nc: nc, stream: st}
}

type storedMsg struct {
	Subject string
	MsgID   string
	Raw     []byte // header values + data, for the secret scan
	Data    []byte
	Env     events.Envelope
}

// messages returns every message in the stream, decoded and checked: it
// must validate with events.Decode, its subject must be
// whmcs.<source>.<type>, its Nats-Msg-Id its envelope id, and no secret may
// appear anywhere in it.
func (n *natsEnv) messages(t *testing.T) []storedMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := n.stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []storedMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := n.stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		var raw bytes.Buffer
		for k, vs := range m.Header {
			raw.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		raw.Write(m.Data)
		env, err := events.Decode(m.Data)
		if err != nil {
			t.Fatalf("seq %d (%s) does not decode: %v\n%s", seq, m.Subject, err, m.Data)
		}
		if want := events.InboundSubject(env.Source, env.Type); m.Subject != want {
			t.Errorf("seq %d: subject %q, want %q", seq, m.Subject, want)
		}
		if got := m.Header.Get("Nats-Msg-Id"); got != env.ID {
			t.Errorf("seq %d: Nats-Msg-Id %q, envelope id %q", seq, got, env.ID)
		}
		if env.SpecVersion != "1.0" {
			t.Errorf("seq %d: spec_version %q", seq, env.SpecVersion)
		}
		checkNoSecrets(t, fmt.Sprintf("seq %d (%s)", seq, env.ID), raw.Bytes(), m.Data)
		out = append(out, storedMsg{Subject: m.Subject, MsgID: m.Header.Get("Nats-Msg-Id"), Raw: raw.Bytes(), Data: m.Data, Env: env})
	}
	return out
}

func checkNoSecrets(t *testing.T, what string, raw, data []byte) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(s))) {
			t.Errorf("%s contains %q:\n%s", what, s, raw)
		}
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	var walk func(any, string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				lk := strings.ToLower(k)
				if strings.Contains(lk, "password") || strings.Contains(lk, "accesshash") || strings.Contains(lk, "secret") {
					t.Errorf("%s: secret-looking key %s.%s", what, path, k)
				}
				walk(c, path+"."+k)
			}
		case []any:
			for i, c := range x {
				walk(c, fmt.Sprintf("%s[%d]", path, i))
			}
		}
	}
	walk(v, "$")
}

func byID(msgs []storedMsg) map[string]storedMsg {
	m := make(map[string]storedMsg, len(msgs))
	for _, x := range msgs {
		m[x.Env.ID] = x
	}
	return m
}

func ids(msgs []storedMsg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Env.ID)
	}
	sort.Strings(out)
	return out
}

// hw runs PHP hook scripts with a configuration taken from the environment
// (tests/config_env.php).
type hw struct {
	t     *testing.T
	php   string
	dir   string
	spool string
	alog  string
	env   map[string]string
}

func newHW(t *testing.T, servers string) *hw {
	t.Helper()
	tmp := t.TempDir()
	h := &hw{t: t, php: phpBinary(t), dir: hookDir(t), spool: filepath.Join(tmp, "spool"), alog: filepath.Join(tmp, "activity.log")}
	h.env = map[string]string{
		"HOOKWORKER_CONFIG": filepath.Join(h.dir, "tests", "config_env.php"),
		"HW_SERVERS":        servers,
		"HW_SPOOL":          h.spool,
		"HW_INSTANCE":       "test",
		"HW_TIMEOUT":        "1",
		"HW_DOWN_BACKOFF":   "0",
		"HW_ACTIVITY_LOG":   h.alog,
	}
	return h
}

type call struct {
	Hook    string  `json:"hook"`
	Seconds float64 `json:"seconds"`
	Last    *struct {
		Published  int     `json:"published"`
		Duplicates int     `json:"duplicates"`
		Spooled    int     `json:"spooled"`
		Flushed    int     `json:"flushed"`
		Error      *string `json:"error"`
		Sent       int     `json:"sent"`
		Corrupt    int     `json:"corrupt"`
		Left       int     `json:"left"`
	} `json:"last"`
}

type runResult struct {
	RequestID string   `json:"request_id"`
	Calls     []call   `json:"calls"`
	Activity  []string `json:"activity"`
	Errors    []string `json:"errors"`
	Output    string   `json:"output"`
	Wall      time.Duration
}

func (h *hw) cmd(args ...string) *exec.Cmd {
	return h.script(filepath.Join("tests", "run_hook.php"), args...)
}

// script runs the PHP file at path (under the deployed directory) with h's
// environment.
func (h *hw) script(path string, args ...string) *exec.Cmd {
	c := exec.Command(h.php, append([]string{filepath.Join(h.dir, path)}, args...)...)
	c.Env = os.Environ()
	for k, v := range h.env {
		c.Env = append(c.Env, k+"="+v)
	}
	return c
}

func parseRun(t *testing.T, out []byte, err error, stderr string) runResult {
	t.Helper()
	if err != nil {
		t.Fatalf("php: %v\nstdout: %s\nstderr: %s", err, out, stderr)
	}
	var r runResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("php output is not JSON: %v\n%s\nstderr: %s", err, out, stderr)
	}
	if len(r.Errors) > 0 {
		t.Errorf("PHP raised errors: %v", r.Errors)
	}
	if r.Output != "" {
		t.Errorf("hooks leaked output: %q", r.Output)
	}
	return r
}

// run fires hook/vars pairs in one PHP process (one WHMCS request).
func (h *hw) run(pairs ...any) runResult {
	h.t.Helper()
	var args []string
	for i := 0; i < len(pairs); i += 2 {
		b, err := json.Marshal(pairs[i+1])
		if err != nil {
			h.t.Fatal(err)
		}
		args = append(args, pairs[i].(string), string(b))
	}
	c := h.cmd(args...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	start := time.Now()
	out, err := c.Output()
	r := parseRun(h.t, out, err, stderr.String())
	r.Wall = time.Since(start)
	return r
}

func (h *hw) cron() runResult { h.t.Helper(); return h.run("AfterCronJob", map[string]any{}) }

func (h *hw) spoolFiles() []string {
	h.t.Helper()
	ents, err := os.ReadDir(h.spool)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func (h *hw) activity() string {
	b, _ := os.ReadFile(h.alog)
	return string(b)
}

// closedPort returns a 127.0.0.1 URL nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "nats://" + addr
}

// ---------------------------------------------------------------------------
// hook variables as WHMCS passes them

func moduleParams(serviceID, pid int) map[string]any {
	return map[string]any{
		"accountid": serviceID, "serviceid": serviceID, "userid": 7, "pid": pid, "serverid": 3,
		"domain": "backup1.example.com", "username": "ada101", "password": "S3cr3t-svc-pass",
		"producttype": "other", "moduletype": "storegrid",
		"configoption1": "Signup Customer", "configoption2": "S3cr3t-configoption-apikey",
		"configoptions": map[string]any{"Storage GB": 200, "Region": "eu-west"},
		"customfields":  map[string]any{"Pass Key": "S3cr3t-passkey"},
		"clientsdetails": map[string]any{"userid": 7, "id": 7, "firstname": "Ada", "email": "ada@example.com",
			"password": "S3cr3t-client-pass"},
		"server": true, "serverip": "192.0.2.10", "serverhostname": "backup-1.example.net",
		"serverusername": "root", "serverpassword": "S3cr3t-server-pass", "serveraccesshash": "S3cr3t-accesshash",
		"serversecure": true, "serverport": 6061,
	}
}

func withParams(serviceID, pid int, extra map[string]any) map[string]any {
	p := moduleParams(serviceID, pid)
	for k, v := range extra {
		p[k] = v
	}
	return map[string]any{"params": p}
}

var clientAdd8 = map[string]any{ // WHMCS 8.x spelling
	"client_id": 7, "user_id": 99, "firstname": "Ada", "lastname": "Lovelace", "companyname": "Analytical Engines Ltd",
	"email": "ada@example.com", "address1": "12 St James Square", "city": "London", "state": "Greater London",
	"postcode": "SW1Y 4JH", "country": "GB", "phonenumber": "+44.2071234567", "password": "S3cr3t-client-pass",
	"customFields": map[string]any{"3": "keep-me", "4": "S3cr3t-custom-field"}, "notes": "", "groupid": 0,
}

var clientAdd7 = map[string]any{ // WHMCS 7.8 spelling
	"userid": 8, "firstname": "Grace", "lastname": "Hopper", "email": "grace@example.com", "country": "US",
	"password": "S3cr3t-client-pass", "customfields": map[string]any{"3": "also-kept"},
}

// ---------------------------------------------------------------------------
// tests

func TestPHPLint(t *testing.T) {
	php := phpBinary(t)
	var files []string
	err := filepath.WalkDir(hookDir(t), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".php") || strings.HasSuffix(p, ".php.example")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found only %d PHP files: %v", len(files), files)
	}
	for _, f := range files {
		out, err := exec.Command(php, "-l", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No syntax errors") {
			t.Errorf("php -l %s: %v\n%s", f, err, out)
		}
	}
	// No function may be called readLine (fatal with php-cli's readline).
	src, err := os.ReadFile(filepath.Join(hookDir(t), "hookworker.php"))
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?i)function\s+readline\s*\(`).Match(src) {
		t.Error("hookworker.php declares a function named readLine")
	}
}

func TestHooksPublishEvents(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, n.url)
	h.env["HW_CUSTOM_FIELDS"] = "3"

	h.run("ClientAdd", clientAdd8)
	h.run("ClientAdd", clientAdd7)
	h.run("AcceptOrder", map[string]any{"orderid": 50})
	for _, inv := range []int{500, 900, 901, 902, 903} {
		h.run("InvoicePaid", map[string]any{"invoiceid": inv})
	}
	lifecycle := map[string]runResult{
		"AfterModuleSuspend":       h.run("AfterModuleSuspend", withParams(101, 5, map[string]any{"suspendreason": "Overdue on Payment"})),
		"AfterModuleUnsuspend":     h.run("AfterModuleUnsuspend", withParams(101, 5, nil)),
		"AfterModuleTerminate":     h.run("AfterModuleTerminate", withParams(101, 5, nil)),
		"AfterModuleChangePackage": h.run("AfterModuleChangePackage", withParams(101, 6, nil)),
		// Client-area password change: Service::moduleCall fires first with
		// params + functionSuccessful, then clientarea.php fires again with
		// serviceid/oldpassword/newpassword, in the same request.
		"AfterModuleChangePassword": h.run(
			"AfterModuleChangePassword", map[string]any{"params": moduleParams(101, 5), "results": "success", "functionExists": true, "functionSuccessful": true},
			"AfterModuleChangePassword", map[string]any{"serviceid": 101, "oldpassword": "S3cr3t-old", "newpassword": "S3cr3t-new"},
		),
	}
	// A failed module call through Service::moduleCall: nothing published.
	h.run("AfterModuleSuspend", map[string]any{"params": moduleParams(102, 6), "functionExists": true, "functionSuccessful": false})

	msgs := n.messages(t)
	got := byID(msgs)
	want := []string{
		"whmcs:test:ClientAdd:7", "whmcs:test:ClientAdd:8", "whmcs:test:AcceptOrder:50",
		"whmcs:test:InvoicePaid:500", "whmcs:test:InvoicePaid:900", "whmcs:test:InvoicePaid:901",
		"whmcs:test:InvoicePaid:902", "whmcs:test:InvoicePaid:903",
		"whmcs:test:RenewalPaid:900:103", "whmcs:test:RenewalPaid:900:addon-301",
		"whmcs:test:RenewalPaid:901:104", "whmcs:test:RenewalPaid:903:106",
	}
	for hook, r := range lifecycle {
		sid := 101
		want = append(want, fmt.Sprintf("whmcs:test:%s:%d:%s", hook, sid, r.RequestID))
	}
	sort.Strings(want)
	if g := ids(msgs); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("stream ids:\n%s\nwant:\n%s", strings.Join(g, "\n"), strings.Join(want, "\n"))
	}

	// client.added, both spellings; only allow-listed custom fields.
	p, _ := got["whmcs:test:ClientAdd:7"].Env.Payload()
	ca := p.(*events.ClientAddedData)
	if ca.Client.ID != 7 || ca.Client.Email != "ada@example.com" || ca.Client.Country != "GB" || ca.Client.CompanyName == "" {
		t.Errorf("client.added 7: %+v", ca.Client)
	}
	if !strings.Contains(string(got["whmcs:test:ClientAdd:7"].Data), `"custom_fields":{"3":"keep-me"}`) {
		t.Errorf("client.added 7 custom fields: %s", got["whmcs:test:ClientAdd:7"].Data)
	}
	if got["whmcs:test:ClientAdd:7"].Env.Type != events.ClientAdded || got["whmcs:test:ClientAdd:7"].Subject != "whmcs.test.client.added" {
		t.Errorf("client.added type/subject: %s %s", got["whmcs:test:ClientAdd:7"].Env.Type, got["whmcs:test:ClientAdd:7"].Subject)
	}
	p, _ = got["whmcs:test:ClientAdd:8"].Env.Payload()
	if c := p.(*events.ClientAddedData).Client; c.ID != 8 || c.FirstName != "Grace" {
		t.Errorf("client.added 8 (7.x keys): %+v", c)
	}

	// order.accepted: one entry per service, config options by name.
	p, _ = got["whmcs:test:AcceptOrder:50"].Env.Payload()
	oa := p.(*events.OrderAcceptedData)
	if oa.OrderID != 50 || oa.InvoiceID != 500 || oa.Client.ID != 7 || oa.Client.Email != "ada@example.com" || len(oa.Services) != 2 {
		t.Fatalf("order.accepted: %+v", oa)
	}
	// WHMCS's own split of the phone (issue 8.5): phonecc + national number.
	if oa.Client.PhoneCC != "44" || oa.Client.PhoneNumber != "2071234567" {
		t.Errorf("order.accepted client phone = %q / %q, want phonecc 44 and phonenumber 2071234567", oa.Client.PhoneCC, oa.Client.PhoneNumber)
	}
	s0, s1 := oa.Services[0], oa.Services[1]
	if s0.ServiceID != 101 || s0.ProductID != 5 || s0.Domain != "backup1.example.com" || s0.BillingCycle != "Monthly" ||
		s0.Username != "ada101" || s0.CustomUsername != "ada-backup" {
		t.Errorf("order.accepted service 0: %+v", s0)
	}
	// Pipe-named options (`key|Label`), keyed by the key half as module
	// params are, whatever GetClientsProducts returned (labels): issue 8.1.
	wantOpts := map[string]string{"number_of_devices": "5", "storage_vault_quota_gb": "100", "protected_item_quota_gb": "50",
		"region": "eu-west", "Storage GB": "100"}
	if !maps.Equal(s0.ConfigOptions, wantOpts) {
		t.Errorf("order.accepted service 0 config options = %v, want %v", s0.ConfigOptions, wantOpts)
	}
	if s1.ServiceID != 102 || s1.ProductID != 6 || s1.BillingCycle != "Annually" || s1.Username != "" || len(s1.ConfigOptions) != 0 {
		t.Errorf("order.accepted service 1: %+v", s1)
	}

	// invoice.paid: renewal flags, WHMCS's rule.
	renewal := func(inv int) map[int]bool {
		p, err := got[fmt.Sprintf("whmcs:test:InvoicePaid:%d", inv)].Env.Payload()
		if err != nil {
			t.Fatal(err)
		}
		d := p.(*events.InvoicePaidData)
		if d.InvoiceID != inv || d.ClientID != 7 || d.Client == nil || d.Client.ID != 7 {
			t.Errorf("invoice.paid %d: %+v", inv, d)
		}
		m := map[int]bool{}
		for _, it := range d.Items {
			m[it.RelID] = it.Renewal
			if (it.Type == "Hosting" || it.Type == "Addon") && it.ProductID == 0 {
				t.Errorf("invoice %d item %d: no product_id", inv, it.ID)
			}
			if it.Type == "Hosting" && it.BillingCycle == "" {
				t.Errorf("invoice %d item %d: no billing_cycle (a signup on first payment needs the term)", inv, it.ID)
			}
		}
		return m
	}
	if r := renewal(500); r[101] || r[102] || r[5001] { // the order's own invoice: first payment
		t.Errorf("invoice 500 (first payment) renewal flags: %v", r)
	}
	// The first-payment item carries what the AcceptOrder signup carries
	// (issue 8.2); renewal items carry no options.
	for _, inv := range []int{500, 900} {
		p, _ := got[fmt.Sprintf("whmcs:test:InvoicePaid:%d", inv)].Env.Payload()
		for _, it := range p.(*events.InvoicePaidData).Items {
			switch {
			case it.RelID == 101:
				if !maps.Equal(it.ConfigOptions, s0.ConfigOptions) || it.Username != s0.Username || it.CustomUsername != s0.CustomUsername {
					t.Errorf("invoice %d item for service 101 = %+v, want the order's options %v, username %q, custom username %q",
						inv, it, s0.ConfigOptions, s0.Username, s0.CustomUsername)
				}
			case it.Renewal && (len(it.ConfigOptions) > 0 || it.CustomUsername != ""):
				t.Errorf("invoice %d renewal item %d carries signup fields: %+v", inv, it.ID, it)
			}
		}
	}
	if r := renewal(900); !r[103] || !r[301] || !r[5002] { // order invoice 400 != 900
		t.Errorf("invoice 900 (renewals) flags: %v", r)
	}
	if r := renewal(901); !r[104] { // no order invoice, older item on invoice 700
		t.Errorf("invoice 901 (older item) flags: %v", r)
	}
	if r := renewal(902); r[105] { // no order invoice, no older item, due date == regdate
		t.Errorf("invoice 902 (first payment, no order invoice) flags: %v", r)
	}
	if r := renewal(903); !r[106] { // no order invoice, no older item, due date != regdate
		t.Errorf("invoice 903 (due date fallback) flags: %v", r)
	}

	// service.renewal_paid: months from the billing cycle.
	for id, w := range map[string]events.RenewalPaidData{
		"whmcs:test:RenewalPaid:900:103":       {ServiceID: 103, ProductID: 5, ClientID: 7, InvoiceID: 900, Months: 3, Domain: "old.example.com", BillingCycle: "Quarterly", ItemType: "Hosting"},
		"whmcs:test:RenewalPaid:900:addon-301": {ServiceID: 301, ProductID: 9, ClientID: 7, InvoiceID: 900, Months: 12, BillingCycle: "Annually", ItemType: "Addon", ParentServiceID: 101},
		"whmcs:test:RenewalPaid:901:104":       {ServiceID: 104, ProductID: 5, ClientID: 7, InvoiceID: 901, Months: 6, Domain: "b104.example.com", BillingCycle: "Semi-Annually", ItemType: "Hosting"},
		"whmcs:test:RenewalPaid:903:106":       {ServiceID: 106, ProductID: 6, ClientID: 7, InvoiceID: 903, Months: 12, Domain: "b106.example.com", BillingCycle: "Annually", ItemType: "Hosting"},
	} {
		m := got[id]
		if m.Env.Type != events.ServiceRenewalPaid || m.Subject != "whmcs.test.service.renewal_paid" {
			t.Errorf("%s: type %s subject %s", id, m.Env.Type, m.Subject)
		}
		p, _ := m.Env.Payload()
		if d := *p.(*events.RenewalPaidData); d != w {
			t.Errorf("%s: %+v, want %+v", id, d, w)
		}
	}
	if !strings.Contains(string(got["whmcs:test:RenewalPaid:900:addon-301"].Data), `"item_type":"Addon","parent_service_id":101`) {
		t.Errorf("addon renewal: %s", got["whmcs:test:RenewalPaid:900:addon-301"].Data)
	}

	// lifecycle events.
	wantType := map[string]events.Type{
		"AfterModuleSuspend": events.ServiceSuspended, "AfterModuleUnsuspend": events.ServiceUnsuspended,
		"AfterModuleTerminate": events.ServiceTerminated, "AfterModuleChangePassword": events.ServicePasswordChanged,
		"AfterModuleChangePackage": events.ServicePackageChanged,
	}
	for hook, r := range lifecycle {
		id := fmt.Sprintf("whmcs:test:%s:101:%s", hook, r.RequestID)
		m := got[id]
		if m.Env.Type != wantType[hook] || m.Subject != events.InboundSubject("test", wantType[hook]) {
			t.Errorf("%s: type %s subject %s", id, m.Env.Type, m.Subject)
		}
		p, _ := m.Env.Payload()
		d := p.(*events.ServiceEventData)
		if d.ServiceID != 101 || d.ClientID != 7 || d.Domain != "backup1.example.com" || d.Username != "ada101" {
			t.Errorf("%s: %+v", id, d)
		}
		switch hook {
		case "AfterModuleSuspend":
			if d.Reason != "Overdue on Payment" {
				t.Errorf("suspend reason %q", d.Reason)
			}
		case "AfterModuleChangePackage":
			if d.ProductID != 6 || d.ConfigOptions["Storage GB"] != "200" || d.ConfigOptions["Region"] != "eu-west" || d.BillingCycle == "" {
				t.Errorf("package change: %+v", d)
			}
		case "AfterModuleChangePassword":
			if len(r.Calls) != 2 || r.Calls[0].Last == nil || r.Calls[0].Last.Published != 1 || r.Calls[1].Last != nil {
				t.Errorf("double-fired password change: second firing should publish nothing: %+v", r.Calls)
			}
		}
		if hook != "AfterModuleChangePackage" && len(d.ConfigOptions) != 0 {
			t.Errorf("%s carries config options: %v", hook, d.ConfigOptions)
		}
	}
	if files := h.spoolFiles(); len(files) != 0 {
		t.Errorf("spool not empty with NATS up: %v", files)
	}
}

func TestDoubleFiring(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, n.url)

	// Deterministic ids: the same ClientAdd / InvoicePaid in two requests
	// (e.g. concurrent gateway callbacks) is stored once.
	h.run("ClientAdd", clientAdd8)
	r := h.run("ClientAdd", clientAdd8)
	if r.Calls[0].Last == nil || r.Calls[0].Last.Duplicates != 1 {
		t.Errorf("second ClientAdd should be acked as duplicate: %+v", r.Calls[0].Last)
	}
	h.run("InvoicePaid", map[string]any{"invoiceid": 900})
	h.run("InvoicePaid", map[string]any{"invoiceid": 900})
	// The same hook twice in one request: one message.
	h.run("AfterModuleTerminate", withParams(103, 5, nil), "AfterModuleTerminate", withParams(103, 5, nil))
	// Two genuine suspends in two requests: two messages.
	r1 := h.run("AfterModuleSuspend", withParams(101, 5, nil))
	r2 := h.run("AfterModuleSuspend", withParams(101, 5, nil))
	if r1.RequestID == r2.RequestID {
		t.Fatal("two requests share a request id")
	}

	// The client-area password change alone (no params): details come from localAPI.
	pw := h.run("AfterModuleChangePassword", map[string]any{"serviceid": 102, "oldpassword": "S3cr3t-old", "newpassword": "S3cr3t-new"})

	msgs := n.messages(t)
	pwMsg, ok := byID(msgs)["whmcs:test:AfterModuleChangePassword:102:"+pw.RequestID]
	if !ok {
		t.Fatalf("client-area password change not published: %v", ids(msgs))
	}
	p, _ := pwMsg.Env.Payload()
	if d := p.(*events.ServiceEventData); d.ServiceID != 102 || d.ProductID != 6 || d.ClientID != 7 {
		t.Errorf("password change from localAPI: %+v", d)
	}
	count := map[events.Type]int{}
	for _, m := range msgs {
		count[m.Env.Type]++
	}
	want := map[events.Type]int{events.ClientAdded: 1, events.InvoicePaid: 1, events.ServiceRenewalPaid: 2,
		events.ServiceTerminated: 1, events.ServiceSuspended: 2, events.ServicePasswordChanged: 1}
	for k, v := range want {
		if count[k] != v {
			t.Errorf("%s: %d messages, want %d (all: %v)", k, count[k], v, ids(msgs))
		}
	}
	if len(msgs) != 8 {
		t.Errorf("%d messages, want 8: %v", len(msgs), ids(msgs))
	}
}

func TestNATSDownSpoolThenFlush(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, closedPort(t))

	r := h.run("AfterModuleSuspend", withParams(101, 5, map[string]any{"suspendreason": "Overdue"}),
		"ClientAdd", clientAdd8, "InvoicePaid", map[string]any{"invoiceid": 903})
	for _, c := range r.Calls {
		if c.Seconds > 1.0 {
			t.Errorf("%s took %.3fs with NATS down (budget 1s)", c.Hook, c.Seconds)
		}
	}
	if r.Calls[0].Last == nil || r.Calls[0].Last.Spooled != 1 || r.Calls[0].Last.Error == nil {
		t.Fatalf("not spooled: %+v", r.Calls[0].Last)
	}
	files := h.spoolFiles()
	if len(files) != 4 { // suspend, client.added, invoice.paid, renewal_paid
		t.Fatalf("spool: %v", files)
	}
	if !strings.Contains(h.activity(), "spooled as") {
		t.Errorf("activity log does not report the spooling:\n%s", h.activity())
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(h.spool, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := events.Decode(b); err != nil {
			t.Errorf("spool entry %s does not decode: %v", f, err)
		}
		checkNoSecrets(t, "spool "+f, b, b)
	}
	if fi, err := os.Stat(h.spool); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("spool dir mode: %v %v", fi.Mode(), err)
	}
	backup := t.TempDir()
	for _, f := range files {
		b, _ := os.ReadFile(filepath.Join(h.spool, f))
		os.WriteFile(filepath.Join(backup, f), b, 0o600)
	}
	if len(n.messages(t)) != 0 {
		t.Fatal("messages arrived while NATS was 'down'")
	}

	// NATS back: the cron flush delivers everything once, oldest first.
	h.env["HW_SERVERS"] = n.url
	r = h.cron()
	if r.Calls[0].Last == nil || r.Calls[0].Last.Sent != 4 || r.Calls[0].Last.Left != 0 {
		t.Fatalf("cron flush: %+v\n%s", r.Calls[0].Last, h.activity())
	}
	msgs := n.messages(t)
	if len(msgs) != 4 || msgs[0].Env.Type != events.ServiceSuspended || msgs[1].Env.Type != events.ClientAdded {
		t.Fatalf("after flush: %v", ids(msgs))
	}
	if left := h.spoolFiles(); len(left) != 0 {
		t.Fatalf("spool after flush: %v", left)
	}
	// The spooled events keep their ids: re-sending them (twice) stores nothing new.
	for round := 0; round < 2; round++ {
		for _, f := range files {
			b, _ := os.ReadFile(filepath.Join(backup, f))
			os.WriteFile(filepath.Join(h.spool, f), b, 0o600)
		}
		r = h.cron()
		if r.Calls[0].Last == nil || r.Calls[0].Last.Sent != 4 {
			t.Fatalf("re-send %d: %+v", round, r.Calls[0].Last)
		}
		if got := n.messages(t); len(got) != 4 {
			t.Fatalf("re-send %d: %d messages, want 4: %v", round, len(got), ids(got))
		}
	}

	// Flush on a later successful publish (no cron).
	h.env["HW_SERVERS"] = closedPort(t)
	down := h.run("AfterModuleTerminate", withParams(104, 5, nil))
	if len(h.spoolFiles()) != 1 {
		t.Fatalf("terminate not spooled: %v", h.spoolFiles())
	}
	h.env["HW_SERVERS"] = n.url
	up := h.run("AfterModuleUnsuspend", withParams(105, 5, nil))
	if up.Calls[0].Last == nil || up.Calls[0].Last.Published != 1 || up.Calls[0].Last.Flushed != 1 {
		t.Errorf("later publish did not flush the spool: %+v", up.Calls[0].Last)
	}
	got := byID(n.messages(t))
	for _, id := range []string{"whmcs:test:AfterModuleTerminate:104:" + down.RequestID, "whmcs:test:AfterModuleUnsuspend:105:" + up.RequestID} {
		if _, ok := got[id]; !ok {
			t.Errorf("%s not delivered", id)
		}
	}
	if len(got) != 6 || len(h.spoolFiles()) != 0 {
		t.Errorf("%d messages (want 6), spool %v", len(got), h.spoolFiles())
	}
}

// fakeServer accepts TCP connections and answers like a NATS server that
// never acknowledges: mode "silent" sends nothing at all, mode "noack"
// sends INFO and answers PING but swallows publishes, mode "tlsstall"
// requires TLS and then stalls in the handshake.
func fakeServer(t *testing.T, mode string) (url string, accepts *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var n atomic.Int32
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if mode == "tlsstall" {
				// Asks for TLS, then never answers the ClientHello.
				c.Write([]byte(`INFO {"server_id":"fake","version":"2.15.2","headers":true,"max_payload":1048576,"proto":1,"tls_required":true}` + "\r\n"))
			}
			if mode == "noack" {
				go func(c net.Conn) {
					c.Write([]byte(`INFO {"server_id":"fake","version":"2.15.2","headers":true,"max_payload":1048576,"proto":1,"jetstream":true}` + "\r\n"))
					buf := make([]byte, 4096)
					for {
						k, err := c.Read(buf)
						if err != nil {
							return
						}
						if bytes.Contains(buf[:k], []byte("PING\r\n")) {
							c.Write([]byte("PONG\r\n"))
						}
					}
				}(c)
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "nats://" + l.Addr().String(), &n
}

func TestTimeoutBudget(t *testing.T) {
	phpBinary(t)
	for _, mode := range []string{"silent", "noack", "tlsstall"} {
		t.Run(mode, func(t *testing.T) {
			url, _ := fakeServer(t, mode)
			h := newHW(t, url)
			// Two hooks in one request: the first pays the timeout, the
			// second spools at once.
			r := h.run("AfterModuleSuspend", withParams(101, 5, nil), "AcceptOrder", map[string]any{"orderid": 50})
			if c := r.Calls[0]; c.Seconds < 0.9 || c.Seconds > 1.25 {
				t.Errorf("first hook took %.3fs, want about the 1s budget", c.Seconds)
			}
			if c := r.Calls[1]; c.Seconds > 0.2 {
				t.Errorf("second hook in the same request took %.3fs", c.Seconds)
			}
			if files := h.spoolFiles(); len(files) != 2 {
				t.Errorf("spool: %v", files)
			}
			if !strings.Contains(h.activity(), "timeout") {
				t.Errorf("activity log does not mention the timeout:\n%s", h.activity())
			}
		})
	}
	t.Run("down_backoff", func(t *testing.T) {
		url, accepts := fakeServer(t, "silent")
		h := newHW(t, url)
		h.env["HW_DOWN_BACKOFF"] = "30"
		h.env["HW_TIMEOUT"] = "0.3"
		h.run("AfterModuleSuspend", withParams(101, 5, nil))
		r := h.run("AfterModuleSuspend", withParams(101, 5, nil))
		if r.Calls[0].Seconds > 0.1 {
			t.Errorf("request within down_backoff took %.3fs", r.Calls[0].Seconds)
		}
		if a := accepts.Load(); a != 1 {
			t.Errorf("%d connection attempts, want 1 (the second request must not try)", a)
		}
		if len(h.spoolFiles()) != 2 {
			t.Errorf("spool: %v", h.spoolFiles())
		}
	})
}

func TestCorruptSpoolEntry(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, closedPort(t))
	h.run("AfterModuleSuspend", withParams(101, 5, nil))
	good := h.spoolFiles()
	if len(good) != 1 {
		t.Fatalf("spool: %v", good)
	}
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(h.spool, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("0000000000000001-aaaaaaaaaaaa-client.added.json", `{"id":"whmcs:test:ClientAdd:7","type":"client.ad`)
	write("0000000000000002-bbbbbbbbbbbb-bogus.json", `{"id":"x","type":"bogus.type","spec_version":"1.0","occurred_at":"2026-01-01T00:00:00Z","source":"test","data":{"a":1}}`)
	stale := filepath.Join(h.spool, ".tmp-0000000000000003-cccccccccccc-client.added.json")
	write(filepath.Base(stale), `{"id":`)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(stale, old, old)

	h.env["HW_SERVERS"] = n.url
	r := h.cron()
	if r.Calls[0].Last == nil || r.Calls[0].Last.Sent != 1 || r.Calls[0].Last.Corrupt != 3 {
		t.Fatalf("cron flush: %+v", r.Calls[0].Last)
	}
	if msgs := n.messages(t); len(msgs) != 1 || msgs[0].Env.Type != events.ServiceSuspended {
		t.Fatalf("messages: %v", ids(msgs))
	}
	if left := h.spoolFiles(); len(left) != 0 {
		t.Errorf("spool: %v", left)
	}
	cents, err := os.ReadDir(filepath.Join(h.spool, "corrupt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range cents {
		names = append(names, e.Name())
	}
	for _, w := range []string{"0000000000000001-aaaaaaaaaaaa-client.added.json", "0000000000000001-aaaaaaaaaaaa-client.added.json.reason",
		"0000000000000002-bbbbbbbbbbbb-bogus.json", "0000000000000002-bbbbbbbbbbbb-bogus.json.reason",
		"tmp-0000000000000003-cccccccccccc-client.added.json", "tmp-0000000000000003-cccccccccccc-client.added.json.reason"} {
		if !contains(names, w) {
			t.Errorf("corrupt/ lacks %s (has %v)", w, names)
		}
	}
	b, _ := os.ReadFile(filepath.Join(h.spool, "corrupt", "0000000000000001-aaaaaaaaaaaa-client.added.json"))
	if string(b) != `{"id":"whmcs:test:ClientAdd:7","type":"client.ad` {
		t.Errorf("corrupt entry content changed: %q", b)
	}
	act := h.activity()
	if strings.Count(act, "corrupt spool entry") != 3 || !strings.Contains(act, "unknown type bogus.type") {
		t.Errorf("corrupt entries not reported:\n%s", act)
	}
}

func TestOversizeEventRejected(t *testing.T) {
	// A server whose max_payload is smaller than the order event: the
	// order can never be published, so it is moved to corrupt/ and
	// reported at once, while the other events of the request still go out.
	n := startNATS(t, func(o *server.Options) { o.MaxPayload = 700 })
	h := newHW(t, n.url)
	r := h.run("AcceptOrder", map[string]any{"orderid": 50}, "ClientAdd", clientAdd7)
	if r.Calls[1].Last == nil || r.Calls[1].Last.Published != 1 {
		t.Errorf("publishing stopped after a rejected event: %+v", r.Calls[1].Last)
	}
	if msgs := n.messages(t); len(msgs) != 1 || msgs[0].Env.ID != "whmcs:test:ClientAdd:8" {
		t.Errorf("messages: %v", ids(msgs))
	}
	if len(h.spoolFiles()) != 0 {
		t.Errorf("rejected event left in the spool: %v", h.spoolFiles())
	}
	cents, _ := os.ReadDir(filepath.Join(h.spool, "corrupt"))
	if len(cents) != 2 || !strings.Contains(h.activity(), "whmcs:test:AcceptOrder:50 rejected") {
		t.Errorf("corrupt/: %v\n%s", cents, h.activity())
	}
}

func TestCheckTool(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, n.url)
	if err := os.MkdirAll(h.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := h.script("hookworker_check.php", args...).CombinedOutput()
		return string(out), err
	}
	out, err := run("--show=AfterModuleSuspend", `--vars={"params":{"serviceid":9,"pid":5,"userid":7,"password":"S3cr3t-x","serverpassword":"S3cr3t-y"}}`)
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	for _, w := range []string{"ok NATS: connected", "ok stream for whmcs.test.client.added: WHMCS_EVENTS",
		"ok spool: " + h.spool + ": 0 event(s) waiting", "whmcs.test.service.suspended", `"service_id": 9`} {
		if !strings.Contains(out, w) {
			t.Errorf("check output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "S3cr3t") {
		t.Errorf("check output shows a secret:\n%s", out)
	}
	if len(n.messages(t)) != 0 {
		t.Error("--show without --publish published")
	}
	h.env["HW_SERVERS"] = closedPort(t)
	if out, err := run(); err == nil || !strings.Contains(out, "FAIL NATS: connect") {
		t.Errorf("check with NATS down: %v\n%s", err, out)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestConcurrentSpoolAndFlush(t *testing.T) {
	n := startNATS(t, nil)
	h := newHW(t, closedPort(t))
	const procs = 20
	var wg sync.WaitGroup
	results := make([]runResult, procs)
	errs := make([]error, procs)
	start := make(chan struct{})
	for i := 0; i < procs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			vars, _ := json.Marshal(withParams(1000+i, 5, nil))
			vars2, _ := json.Marshal(map[string]any{"orderid": 50})
			c := h.cmd("AfterModuleSuspend", string(vars), "AcceptOrder", string(vars2))
			<-start
			out, err := c.Output()
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = json.Unmarshal(out, &results[i])
		}(i)
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("process %d: %v", i, err)
		}
		if len(results[i].Errors) > 0 || results[i].Output != "" {
			t.Errorf("process %d: errors %v output %q", i, results[i].Errors, results[i].Output)
		}
	}
	files := h.spoolFiles()
	if len(files) != 2*procs {
		t.Fatalf("spool has %d files, want %d", len(files), 2*procs)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(h.spool, f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := events.Decode(b); err != nil {
			t.Errorf("spool entry %s corrupted: %v", f, err)
		}
	}

	// Four cron runs at once: the lock lets one send, the others skip.
	h.env["HW_SERVERS"] = n.url
	var cwg sync.WaitGroup
	sent := make([]int, 4)
	for i := range sent {
		cwg.Add(1)
		go func(i int) {
			defer cwg.Done()
			c := h.cmd("AfterCronJob", "{}")
			out, err := c.Output()
			if err != nil {
				t.Errorf("cron %d: %v", i, err)
				return
			}
			var r runResult
			if err := json.Unmarshal(out, &r); err != nil {
				t.Errorf("cron %d: %v", i, err)
				return
			}
			if r.Calls[0].Last != nil {
				sent[i] = r.Calls[0].Last.Sent
			}
		}(i)
	}
	cwg.Wait()
	h.cron() // whatever a skipped run left
	msgs := n.messages(t)
	ids := map[string]int{}
	for _, m := range msgs {
		ids[m.Env.ID]++
	}
	// 20 distinct suspends (one per request id) + one order.accepted (same id in every request).
	if len(msgs) != procs+1 || len(ids) != procs+1 {
		t.Fatalf("%d messages / %d ids, want %d", len(msgs), len(ids), procs+1)
	}
	total := 0
	for _, s := range sent {
		total += s
	}
	if total > 2*procs {
		t.Errorf("concurrent flushers sent %d events for %d spool entries: the lock did not hold", total, 2*procs)
	}
	if left := h.spoolFiles(); len(left) != 0 {
		t.Errorf("spool not drained: %v", left)
	}
	if _, err := os.Stat(filepath.Join(h.spool, "corrupt")); err == nil {
		t.Error("corrupt/ exists after concurrent writes")
	}
}

func TestAuth(t *testing.T) {
	phpBinary(t)
	t.Run("token", func(t *testing.T) {
		n := startNATS(t, func(o *server.Options) { o.Authorization = "tok-S3cr3t-nats" }, nats.Token("tok-S3cr3t-nats"))
		h := newHW(t, n.url)
		h.env["HW_TOKEN"] = "wrong-S3cr3t-token"
		h.run("AfterModuleSuspend", withParams(101, 5, nil))
		if len(h.spoolFiles()) != 1 || !strings.Contains(h.activity(), "Authorization Violation") {
			t.Fatalf("wrong token: spool %v\n%s", h.spoolFiles(), h.activity())
		}
		if strings.Contains(h.activity(), "S3cr3t") {
			t.Errorf("activity log leaks the token:\n%s", h.activity())
		}
		h.env["HW_TOKEN"] = "tok-S3cr3t-nats"
		h.run("AfterModuleUnsuspend", withParams(101, 5, nil))
		if msgs := n.messages(t); len(msgs) != 2 {
			t.Errorf("%d messages, want 2 (the spooled suspend and the unsuspend): %v", len(msgs), ids(msgs))
		}
	})
	t.Run("user_password", func(t *testing.T) {
		n := startNATS(t, func(o *server.Options) { o.Username = "whmcs"; o.Password = "pw-S3cr3t-nats" }, nats.UserInfo("whmcs", "pw-S3cr3t-nats"))
		h := newHW(t, n.url)
		h.env["HW_USER"] = "whmcs"
		h.env["HW_PASS"] = "bad-S3cr3t"
		h.run("ClientAdd", clientAdd8)
		if len(h.spoolFiles()) != 1 || !strings.Contains(h.activity(), "Authorization Violation") {
			t.Fatalf("wrong password: spool %v\n%s", h.spoolFiles(), h.activity())
		}
		h.env["HW_PASS"] = "pw-S3cr3t-nats"
		h.cron()
		if msgs := n.messages(t); len(msgs) != 1 || msgs[0].Env.ID != "whmcs:test:ClientAdd:7" {
			t.Errorf("messages: %v", ids(msgs))
		}
	})
	// The whmcs user of deploy/nats/permissions.conf is enough for the hooks
	// (JetStream publish, PubAck to an inbox) and for hookworker_check.php.
	t.Run("permissions.conf whmcs user", func(t *testing.T) {
		users := permissionsUsers(t, "hw-S3cr3t-nats", "whmcs-S3cr3t-nats")
		n := startNATS(t, func(o *server.Options) { o.Users = users }, nats.UserInfo("hookworker", "hw-S3cr3t-nats"))
		h := newHW(t, n.url)
		h.env["HW_USER"] = "whmcs"
		h.env["HW_PASS"] = "whmcs-S3cr3t-nats"
		h.run("ClientAdd", clientAdd8)
		h.run("AfterModuleSuspend", withParams(101, 5, nil))
		if files := h.spoolFiles(); len(files) != 0 {
			t.Fatalf("spooled %v:\n%s", files, h.activity())
		}
		if msgs := n.messages(t); len(msgs) != 2 {
			t.Errorf("messages: %v, want the ClientAdd and the suspension", ids(msgs))
		}
		out, _ := h.script("hookworker_check.php").CombinedOutput() // no worker runs: that line fails, the others must not
		for _, w := range []string{"ok NATS: connected", "ok stream for whmcs.test.client.added: WHMCS_EVENTS"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("check output lacks %q:\n%s", w, out)
			}
		}
		if strings.Contains(strings.ToLower(string(out)), "permissions violation") {
			t.Errorf("check ran into a permissions violation:\n%s", out)
		}
	})
}

// permissionsUsers are the users of deploy/nats/permissions.conf with the
// given passwords, read by nats-server's own configuration parser.
func permissionsUsers(t *testing.T, hwPass, whmcsPass string) []*server.User {
	t.Helper()
	t.Setenv("HOOKWORKER_NATS_PASSWORD", hwPass)
	t.Setenv("WHMCS_NATS_PASSWORD", whmcsPass)
	opts, err := server.ProcessConfigFile(filepath.Join("..", "nats", "permissions.conf"))
	if err != nil {
		t.Fatalf("deploy/nats/permissions.conf: %v", err)
	}
	if len(opts.Users) != 2 {
		t.Fatalf("deploy/nats/permissions.conf has %d users, want hookworker and whmcs", len(opts.Users))
	}
	return opts.Users
}

// writeCA creates a CA and a server certificate for 127.0.0.1.
func writeCA(t *testing.T) (caFile string, serverTLS *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hookworker test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)
	return caFile, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func TestTLS(t *testing.T) {
	phpBinary(t)
	caFile, srvTLS := writeCA(t)
	n := startNATS(t, func(o *server.Options) { o.TLSConfig = srvTLS; o.TLS = true; o.TLSTimeout = 2 }, nats.RootCAs(caFile))
	tlsURL := strings.Replace(n.url, "nats://", "tls://", 1)

	h := newHW(t, tlsURL)
	// Peer verification is on by default: without the CA the handshake fails.
	h.run("AfterModuleSuspend", withParams(101, 5, nil))
	if len(h.spoolFiles()) != 1 || !strings.Contains(h.activity(), "TLS handshake failed") {
		t.Fatalf("unverifiable server accepted? spool %v\n%s", h.spoolFiles(), h.activity())
	}
	h.env["HW_CA_FILE"] = caFile
	h.run("AfterModuleUnsuspend", withParams(101, 5, nil))
	// A nats:// URL to a server that requires TLS is upgraded (and verified).
	h.env["HW_SERVERS"] = n.url
	h.run("AfterModuleTerminate", withParams(101, 5, nil))
	if msgs := n.messages(t); len(msgs) != 3 {
		t.Errorf("%d messages over TLS, want 3: %v", len(msgs), ids(msgs))
	}
}
