package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// With HOOKWORKER_EMBEDDED_LISTEN off loopback and no credentials set, the
// embedded server requires a token generated under the data directory:
// an unauthenticated client is refused, the client commands on the same
// data directory pick the token up, and the token never appears in the
// log.
func TestEmbeddedOffLoopbackRequiresTheGeneratedToken(t *testing.T) {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	in := startRun(t, "HOOKWORKER_EMBEDDED_LISTEN=0.0.0.0:"+port)
	url := "nats://127.0.0.1:" + port
	workertest.Refused(t, url, "a client without credentials (embedded server listening on 0.0.0.0)")
	tokenFile := filepath.Join(in.dataDir(), "nats.token")
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("generated token: %v", err)
	}
	if fi, _ := os.Stat(tokenFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	token := strings.TrimSpace(string(b))
	nc, err := nats.Connect(url, nats.Token(token))
	if err != nil {
		t.Fatalf("client with the generated token: %v", err)
	}
	nc.Close()

	if out := in.cli(0, "emit", "order.accepted"); !strings.Contains(out, "duplicate=false") {
		t.Fatalf("emit: %s", out)
	}
	in.results(1)
	in.stop()
	log := in.log.String()
	if !strings.Contains(log, tokenFile) {
		t.Errorf("the log does not say where the token is:\n%s", log)
	}
	if strings.Contains(log, token) {
		t.Errorf("the log shows the token")
	}
}

// A configured token is required by the embedded server even on loopback:
// it no longer configures only hookworker's own connection.
func TestEmbeddedRequiresTheConfiguredToken(t *testing.T) {
	in := startRun(t, "HOOKWORKER_NATS_TOKEN=configured-token-123456")
	workertest.Refused(t, in.clientURL(), "a client without the token")
	in.cli(0, "emit", "order.accepted")
	in.results(1)
	in.stop()
}

func TestClientURLOfAnEmbeddedServerOnEveryInterface(t *testing.T) {
	for listen, want := range map[string]string{"0.0.0.0:4222": "nats://127.0.0.1:4222", ":4222": "nats://127.0.0.1:4222",
		"[::]:4222": "nats://127.0.0.1:4222", "10.1.2.3:4222": "nats://10.1.2.3:4222", "127.0.0.1:4222": "nats://127.0.0.1:4222"} {
		if got := (Config{EmbeddedListen: listen}).clientURL(); got != want {
			t.Errorf("clientURL(%q) = %q, want %q", listen, got, want)
		}
	}
	if got := (Config{EmbeddedListen: "0.0.0.0:4222", EmbeddedTLSCert: "cert.pem"}).clientURL(); got != "tls://127.0.0.1:4222" {
		t.Errorf("with TLS: %q", got)
	}
}

// setting returns the instance's value of an environment variable (the
// last one set wins, as for the subprocess).
func (in *instance) setting(name string) string {
	v := ""
	for _, kv := range in.env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

func (in *instance) dataDir() string { return in.setting("HOOKWORKER_DATA_DIR") }

func (in *instance) clientURL() string {
	return Config{EmbeddedListen: in.setting("HOOKWORKER_EMBEDDED_LISTEN")}.clientURL()
}

// syncBuffer is a bytes.Buffer safe to read while a subprocess writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// process is a `hookworker run` whose output can be read while it runs.
type process struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan int
}

func startProcess(t *testing.T, env ...string) *process {
	t.Helper()
	p := &process{out: &syncBuffer{}, done: make(chan int, 1)}
	p.cmd = exec.Command(binary(t), "run")
	p.cmd.Env = append(append(os.Environ(), "HOOKWORKER_DATA_DIR="+t.TempDir(), "HOOKWORKER_EMBEDDED_LISTEN="+freeAddr(t),
		"HOOKWORKER_OPS_ADDR=", "HOOKWORKER_METRICS_ADDR=", "HOOKWORKER_LOG_FORMAT=json", "HOOKWORKER_STATS_INTERVAL=200ms",
		"HOOKWORKER_FETCH_WAIT=200ms"), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.done <- p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("hookworker run output:\n%s", p.out.String())
		}
	})
	return p
}

// exit waits for the process to exit by itself.
func (p *process) exit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case code := <-p.done:
		return code
	case <-time.After(within):
		t.Fatalf("hookworker run still running after %s:\n%s", within, p.out.String())
		return -1
	}
}

// A worker connected to an external NATS, or given a provider or WHMCS
// URL, refuses to start without a catalog unless the sandbox is chosen:
// no real event is ever marked provisioned at the sandbox.
func TestNoSilentSandbox(t *testing.T) {
	ns, err := worker.StartEmbedded(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	external := "HOOKWORKER_NATS_URL=" + ns.ClientURL()
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"external NATS", []string{external}, "HOOKWORKER_NATS_URL is set"},
		{"Comet URL", []string{"HOOKWORKER_COMET_URL=http://127.0.0.1:1", "HOOKWORKER_COMET_USERNAME=admin", "HOOKWORKER_COMET_PASSWORD=s3cr3t-pa55"}, "HOOKWORKER_COMET_URL is set"},
		{"StoreGrid URL", []string{"HOOKWORKER_STOREGRID_URL=https://127.0.0.1:1", "HOOKWORKER_STOREGRID_USERNAME=admin", "HOOKWORKER_STOREGRID_PASSWORD=s3cr3t-pa55"}, "HOOKWORKER_STOREGRID_URL is set"},
		{"WHMCS write-back", []string{"HOOKWORKER_WHMCS_API_URL=https://127.0.0.1:1/includes/api.php", "HOOKWORKER_WHMCS_IDENTIFIER=id", "HOOKWORKER_WHMCS_SECRET=s3cr3t-pa55"}, "WHMCS write-back"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProcess(t, tc.env...)
			if code := p.exit(t, 20*time.Second); code != 2 {
				t.Fatalf("exit %d, want 2", code)
			}
			out := p.out.String()
			for _, want := range []string{"HOOKWORKER_CATALOG", tc.want, "HOOKWORKER_SANDBOX=memory"} {
				if !strings.Contains(out, want) {
					t.Errorf("output does not say %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "s3cr3t-pa55") {
				t.Error("output shows a secret")
			}
		})
	}
	// Nothing was consumed from the external NATS by the refused worker.
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Stream(context.Background(), worker.EventsStream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the refused worker set up streams on the external NATS: %v", err)
	}

	t.Run("sandbox chosen explicitly", func(t *testing.T) {
		metrics := freeAddr(t)
		p := startProcess(t, external, "HOOKWORKER_SANDBOX=memory", "HOOKWORKER_METRICS_ADDR="+metrics)
		waitReady(t, metrics, p)
		body := get(t, "http://"+metrics+"/metrics")
		if !strings.Contains(body, `hookworker_build_info{sandbox="memory",version=`) {
			t.Errorf("metrics do not label the sandbox:\n%s", grep(body, "hookworker_build_info"))
		}
		if out := p.out.String(); !strings.Contains(out, `"level":"warn"`) || !strings.Contains(out, "SANDBOX MODE") {
			t.Errorf("no sandbox warning in the log:\n%s", out)
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.exit(t, 20*time.Second); code != 0 {
			t.Errorf("exit %d after SIGTERM", code)
		}
	})
}

// Start-up waits for a NATS that comes up late: each try is logged,
// /readyz answers 503 meanwhile, and the worker then consumes.
func TestStartupWaitsForLateNATS(t *testing.T) {
	addr, metrics := freeAddr(t), freeAddr(t)
	p := startProcess(t, "HOOKWORKER_NATS_URL=nats://"+addr, "HOOKWORKER_SANDBOX=memory", "HOOKWORKER_METRICS_ADDR="+metrics)
	workertestEventually(t, 20*time.Second, "two logged tries", func() bool {
		return strings.Count(p.out.String(), "NATS not reachable; retrying") >= 2
	})
	res, err := http.Get("http://" + metrics + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "connecting to NATS") {
		t.Fatalf("/readyz while NATS is down: %d %s", res.StatusCode, b)
	}
	if h, err := http.Get("http://" + metrics + "/healthz"); err != nil || h.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while NATS is down: %v %v", h, err)
	}
	select {
	case code := <-p.done:
		t.Fatalf("hookworker run exited (%d) while NATS was down", code)
	default:
	}

	ns, err := worker.StartEmbedded(t.TempDir(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	waitReady(t, metrics, p)
	if !strings.Contains(p.out.String(), "connected to NATS") {
		t.Errorf("no line saying NATS was reached")
	}
	emit := exec.Command(binary(t), "emit", "order.accepted")
	emit.Env = append(os.Environ(), "HOOKWORKER_NATS_URL=nats://"+addr)
	if out, err := emit.CombinedOutput(); err != nil {
		t.Fatalf("emit: %v\n%s", err, out)
	}
	workertestEventually(t, 20*time.Second, "the event to be provisioned", func() bool {
		return strings.Contains(p.out.String(), "operation succeeded")
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(t, 20*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM", code)
	}
}

// A SIGTERM while waiting for NATS ends the process cleanly.
func TestStopWhileWaitingForNATS(t *testing.T) {
	p := startProcess(t, "HOOKWORKER_NATS_URL=nats://"+freeAddr(t), "HOOKWORKER_SANDBOX=memory")
	workertestEventually(t, 20*time.Second, "a logged try", func() bool {
		return strings.Contains(p.out.String(), "NATS not reachable; retrying")
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exit(t, 10*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM while waiting, want 0", code)
	}
}

func waitReady(t *testing.T, metrics string, p *process) {
	t.Helper()
	workertestEventually(t, 30*time.Second, "/readyz 200", func() bool {
		res, err := http.Get("http://" + metrics + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func workertestEventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// record show finds an operation's record by its readable key (as result
// events carry it) and by its bucket key, and says which key `nats kv get`
// needs.
func TestRecordShow(t *testing.T) {
	in := startRun(t)
	in.cli(0, "emit", "order.accepted")
	res := in.results(1)
	key := res[0].OperationKey
	out := in.cli(0, "record", "show", key)
	bucketKey := "op." + base64.RawURLEncoding.EncodeToString([]byte(key))
	for _, want := range []string{`"state": "done"`, `"backend": "sandbox (in-process memory)"`, "key " + bucketKey, `"event_id": "whmcs:main:AcceptOrder:50"`} {
		if !strings.Contains(out, want) {
			t.Errorf("record show %s lacks %s:\n%s", key, want, out)
		}
	}
	if again := in.cli(0, "record", "show", bucketKey); again != out {
		t.Errorf("by bucket key:\n%s\nby operation key:\n%s", again, out)
	}
	if out := in.cli(1, "record", "show", "whmcs:main:service:999:signup_customer"); !strings.Contains(out, "no record of operation") {
		t.Errorf("missing record: %s", out)
	}
	in.cli(2, "record", "show")
	in.stop()
}

func TestCatalogCheck(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	b, _ := builtinCatalogs.ReadFile("catalogs/fakes.yaml")
	_ = os.WriteFile(good, b, 0o644)
	_ = os.WriteFile(bad, []byte("products:\n  - id: 1\n    provider: nowhere\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"catalog", "check", good}, 0, "3 products, routing to codeguard, comet, storegrid"},
		{[]string{"catalog", "check", bad}, 2, "HOOKWORKER_CATALOG"},
		{[]string{"catalog", "check"}, 2, "name a file"},
	} {
		cmd := exec.Command(binary(t), tc.args...)
		cmd.Env = append(os.Environ(), "HOOKWORKER_CATALOG=")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}

// An own catalog may route test products to the sandbox: it needs no URL
// (there is no HOOKWORKER_SANDBOX_URL), and the log says those products
// never reach a real provider.
func TestOwnCatalogWithSandboxProducts(t *testing.T) {
	cat := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(cat, []byte("products:\n  - id: 1\n    name: Test product\n    provider: sandbox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := startRun(t, "HOOKWORKER_CATALOG="+cat)
	in.cli(0, "emit", "order.accepted")
	if res := in.results(1); res[0].Provider != "sandbox" || res[0].Reference == "" {
		t.Fatalf("result %+v", res[0])
	}
	in.stop()
	log := in.log.String()
	if strings.Contains(log, "HOOKWORKER_SANDBOX_URL") || !strings.Contains(log, "never provisioned at a real provider") {
		t.Errorf("log:\n%s", log)
	}
}

// emit chooses product, service, order and client; the fakes sandbox's
// CodeGuard product (provisioned on invoice.paid) is reached from a sample.
func TestEmitChoosesIDsAndReachesCodeGuard(t *testing.T) {
	in := startRun(t, "HOOKWORKER_SANDBOX=fakes")
	in.cli(0, "emit", "invoice.paid", "--product", "2", "--service", "200", "--client", "8", "--invoice", "901")
	in.cli(0, "emit", "order.accepted", "--product", "3", "--service", "300", "--order", "51", "--client", "9")
	in.cli(0, "emit", "order.accepted", "--product", "2", "--service", "201", "--order", "52") // provisioned on payment
	res := in.results(2)
	got := map[string]events.ResultData{}
	for _, r := range res {
		got[r.Provider] = r
	}
	if cg := got["codeguard"]; cg.ServiceID != 200 || cg.ClientID != 8 || cg.Reference == "" || cg.SourceEventID != "whmcs:main:InvoicePaid:901" {
		t.Errorf("CodeGuard result %+v", cg)
	}
	if sg := got["storegrid"]; sg.ServiceID != 300 || sg.ClientID != 9 || sg.SourceEventID != "whmcs:main:AcceptOrder:51" {
		t.Errorf("StoreGrid result %+v", sg)
	}
	for _, bad := range [][]string{{"emit", "order.accepted", "--product", "-1"}, {"emit", "order.accepted", "--product", "x"},
		{"emit", "order.accepted", "--file", "x.json", "--service", "3"}} {
		in.cli(2, bad...)
	}
	in.stop()
	if log := in.log.String(); !strings.Contains(log, "0 operations: product 2 (service 201) is provisioned on invoice.paid") {
		t.Errorf("no 0-operations line for the order of a pay-first product:\n%s", log)
	}
}

// In memory mode client.added and invoice.paid produce no operation: the
// worker says why.
func TestZeroOperationsSayWhy(t *testing.T) {
	in := startRun(t)
	in.cli(0, "emit", "client.added")
	in.cli(0, "emit", "invoice.paid")
	in.cli(0, "emit", "order.accepted")
	in.results(1)
	in.stop()
	log := in.log.String()
	for _, want := range []string{"0 operations: no client_added route in the catalog", "0 operations: product 1 (service 100) is provisioned on order.accepted"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// The CLI's small things: --help after a command exits 0 with its flags, a
// usage error is two lines, version comes from the build info, a duration
// without a unit gets a hint, dlq show of a missing entry says so once.
func TestCLIMessages(t *testing.T) {
	run := func(env []string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(binary(t), args...)
		cmd.Env = append(append(os.Environ(), "HOOKWORKER_DATA_DIR="+t.TempDir()), env...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	for _, tc := range []struct {
		env   []string
		args  []string
		code  int
		want  []string
		not   []string
		lines int
	}{
		{nil, []string{"emit", "--help"}, 0, []string{"usage: hookworker emit", "-product"}, []string{"flag: help requested"}, 0},
		{nil, []string{"dlq", "list", "-h"}, 0, []string{"-class"}, nil, 0},
		{nil, []string{"emit"}, 2, []string{"emit: want exactly one event type", "hookworker help"}, []string{"Event types:"}, 2},
		{nil, []string{"frobnicate"}, 2, []string{"unknown command"}, nil, 2},
		{nil, []string{"version"}, 0, []string{"hookworker (devel)", "go1."}, []string{"dev\n"}, 1},
		{[]string{"HOOKWORKER_ACK_WAIT=30"}, []string{"status"}, 2, []string{`HOOKWORKER_ACK_WAIT: cannot read "30" as a duration: give a unit, e.g. "30s"`}, []string{"time.Duration"}, 1},
		{[]string{"HOOKWORKER_CONCURRENCY=lots"}, []string{"status"}, 2, []string{"as a whole number"}, []string{" int\n"}, 1},
	} {
		code, out := run(tc.env, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d:\n%s", tc.args, code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(out, n) {
				t.Errorf("%v: output has %q:\n%s", tc.args, n, out)
			}
		}
		if n := strings.Count(strings.TrimSpace(out), "\n") + 1; tc.lines > 0 && n != tc.lines {
			t.Errorf("%v: %d lines, want %d:\n%s", tc.args, n, tc.lines, out)
		}
	}

	in := startRun(t)
	out := in.cli(1, "dlq", "show", "99")
	if strings.Count(out, "dead letter 99") != 1 || !strings.Contains(out, "no such entry") || strings.Contains(out, "nats:") {
		t.Errorf("dlq show 99:\n%s", out)
	}
	if out := in.cli(1, "dlq", "replay", "99"); strings.Count(out, "dead letter 99") != 1 {
		t.Errorf("dlq replay 99:\n%s", out)
	}
	if out := in.cli(0, "dlq", "list"); !strings.Contains(out, "0 dead letters") {
		t.Errorf("dlq list:\n%s", out)
	}
	if out := in.cli(0, "emit", "service.renewal_paid"); strings.Contains(out, "dropped") {
		t.Errorf("first emit:\n%s", out)
	}
	if out := in.cli(0, "emit", "service.renewal_paid"); !strings.Contains(out, "duplicate=true") || !strings.Contains(out, "JetStream dropped it") {
		t.Errorf("second emit of the same event:\n%s", out)
	}
	in.stop()
}

// A busy metrics or ops port is the same fault: exit 2 naming the
// variable, before anything is consumed.
func TestBusyPortsExit2BeforeConsuming(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, v := range []string{"HOOKWORKER_METRICS_ADDR", "HOOKWORKER_OPS_ADDR"} {
		p := startProcess(t, v+"="+busy.Addr().String())
		if code := p.exit(t, 20*time.Second); code != 2 {
			t.Errorf("%s busy: exit %d, want 2", v, code)
		}
		out := p.out.String()
		if !strings.Contains(out, v+": cannot listen on") || strings.Contains(out, "worker started") || strings.Contains(out, "embedded JetStream server started") {
			t.Errorf("%s busy:\n%s", v, out)
		}
	}
}

// The embedded server with TLS off loopback: the client commands connect
// over tls:// trusting the embedded certificate, with the generated token.
func TestEmbeddedTLSWithTheCLI(t *testing.T) {
	cert, key := workertest.SelfSignedCert(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	in := startRun(t, "HOOKWORKER_EMBEDDED_LISTEN=0.0.0.0:"+port, "HOOKWORKER_EMBEDDED_TLS_CERT="+cert, "HOOKWORKER_EMBEDDED_TLS_KEY="+key)
	if nc, err := nats.Connect("nats://127.0.0.1:"+port, nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a plain, unauthenticated client connected")
	}
	in.cli(0, "emit", "order.accepted")
	in.results(1)
	in.stop()
	if log := in.log.String(); strings.Contains(log, "without TLS") || !strings.Contains(log, `"tls":true`) {
		t.Errorf("log:\n%s", log)
	}
}
