package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

	"github.com/hookworker/hookworker/events"
)

func TestHelpListsEverySettingWithDefaultAndMeaning(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, &out, &errb); code != 0 {
		t.Fatalf("help exit %d: %s", code, errb.String())
	}
	for _, v := range []string{"HOOKWORKER_NATS_URL", "HOOKWORKER_CATALOG", "HOOKWORKER_CONCURRENCY  ", "HOOKWORKER_ACK_WAIT",
		"HOOKWORKER_MAX_DELIVER", "HOOKWORKER_SHUTDOWN_TIMEOUT", "HOOKWORKER_COMET_PASSWORD", "HOOKWORKER_CODEGUARD_API_KEY",
		"HOOKWORKER_STOREGRID_URL", "HOOKWORKER_WHMCS_SECRET", "HOOKWORKER_METRICS_ADDR", "HOOKWORKER_OPS_TOKEN"} {
		if !strings.Contains(out.String(), v) {
			t.Errorf("help does not list %s", strings.TrimSpace(v))
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "HOOKWORKER_") && len(strings.Fields(line)) < 2 {
			t.Errorf("setting without a meaning: %q", line)
		}
	}
}

func TestBadConfigurationExits2AndNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOOKWORKER_CONCURRENCY": "many"}, "HOOKWORKER_CONCURRENCY"},
		{map[string]string{"HOOKWORKER_CONCURRENCY": "0"}, "HOOKWORKER_CONCURRENCY"},
		{map[string]string{"HOOKWORKER_ACK_WAIT": "soon"}, "HOOKWORKER_ACK_WAIT"},
		{map[string]string{"HOOKWORKER_MAX_DELIVER": "0"}, "HOOKWORKER_MAX_DELIVER"},
		{map[string]string{"HOOKWORKER_STREAM_REPLICAS": "2"}, "HOOKWORKER_STREAM_REPLICAS"},
		{map[string]string{"HOOKWORKER_LOG_LEVEL": "loud"}, "HOOKWORKER_LOG_LEVEL"},
		{map[string]string{"HOOKWORKER_METRICS_ADDR": "nine-four-six-four"}, "HOOKWORKER_METRICS_ADDR"},
		{map[string]string{"HOOKWORKER_SANDBOX": "real"}, "HOOKWORKER_SANDBOX"},
		{map[string]string{"HOOKWORKER_MEMORY_LIMIT": "lots"}, "HOOKWORKER_MEMORY_LIMIT"},
		{map[string]string{"HOOKWORKER_MEMORY_LIMIT": "1MiB"}, "HOOKWORKER_MEMORY_LIMIT"},
		{map[string]string{"HOOKWORKER_PASSWORD_SECRET": "short"}, "HOOKWORKER_PASSWORD_SECRET"},
		{map[string]string{"HOOKWORKER_COMET_URL": "http://comet.example", "HOOKWORKER_COMET_PASSWORD": "s3cr3t-pa55"}, "HOOKWORKER_COMET_USERNAME"},
		{map[string]string{"HOOKWORKER_COMET_URL": "ftp://comet.example"}, "HOOKWORKER_COMET_URL"},
		{map[string]string{"HOOKWORKER_CODEGUARD_API_KEY": "s3cr3t-pa55"}, "HOOKWORKER_CODEGUARD_AUTH_USERID"},
		{map[string]string{"HOOKWORKER_STOREGRID_URL": "https://sg.example:6061", "HOOKWORKER_STOREGRID_USERNAME": "admin"}, "HOOKWORKER_STOREGRID_PASSWORD"},
		{map[string]string{"HOOKWORKER_WHMCS_API_URL": "https://whmcs.example/includes/api.php", "HOOKWORKER_WHMCS_SECRET": "s3cr3t-pa55"}, "HOOKWORKER_WHMCS_IDENTIFIER"},
		{map[string]string{"HOOKWORKER_CATALOG": "/nonexistent/catalog.yaml"}, "HOOKWORKER_CATALOG"},
		{map[string]string{"HOOKWORKER_OPS_ADDR": "0.0.0.0:18080"}, "HOOKWORKER_OPS_TOKEN"},
		{map[string]string{"HOOKWORKER_NATS_TLS_CERT": "/etc/hw/cert.pem"}, "HOOKWORKER_NATS_TLS_KEY"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			t.Setenv("HOOKWORKER_DATA_DIR", t.TempDir())
			t.Setenv("HOOKWORKER_EMBEDDED_LISTEN", freeAddr(t))
			t.Setenv("HOOKWORKER_METRICS_ADDR", tc.env["HOOKWORKER_METRICS_ADDR"])
			t.Setenv("HOOKWORKER_OPS_ADDR", tc.env["HOOKWORKER_OPS_ADDR"])
			var out, errb bytes.Buffer
			code := run([]string{"run"}, &out, &errb)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q does not name %s", errb.String(), tc.want)
			}
			if strings.Contains(errb.String(), "s3cr3t-pa55") {
				t.Errorf("stderr shows a secret: %q", errb.String())
			}
		})
	}
}

func TestUnknownCommandExits2(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestBuiltinCatalogsAreValid(t *testing.T) {
	for _, name := range []string{"sandbox.yaml", "fakes.yaml"} {
		c, err := builtinCatalog(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.Products()) == 0 {
			t.Fatalf("%s has no products", name)
		}
	}
}

// --- the binary, end to end ---

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hookworker-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "hookworker")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// instance is one `hookworker run` subprocess and the environment its
// client commands share.
type instance struct {
	t       *testing.T
	env     []string
	metrics string
	cmd     *exec.Cmd
	log     *bytes.Buffer
	done    chan error
}

func startRun(t *testing.T, extra ...string) *instance {
	t.Helper()
	in := &instance{t: t, metrics: freeAddr(t), log: &bytes.Buffer{}, done: make(chan error, 1)}
	in.env = append(os.Environ(), "HOOKWORKER_DATA_DIR="+t.TempDir(), "HOOKWORKER_EMBEDDED_LISTEN="+freeAddr(t),
		"HOOKWORKER_METRICS_ADDR="+in.metrics, "HOOKWORKER_OPS_ADDR=", "HOOKWORKER_STATS_INTERVAL=200ms",
		"HOOKWORKER_FETCH_WAIT=200ms", "HOOKWORKER_LOG_FORMAT=json", "HOOKWORKER_SHUTDOWN_TIMEOUT=10s")
	in.env = append(in.env, extra...)
	in.cmd = exec.Command(binary(t), "run")
	in.cmd.Env, in.cmd.Stdout, in.cmd.Stderr = in.env, in.log, in.log
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(func() {
		_ = in.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("hookworker run output:\n%s", in.log.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + in.metrics + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return in
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hookworker run never became ready:\n%s", in.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cli runs a client command against the instance and returns its output.
func (in *instance) cli(wantCode int, args ...string) string {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(in.t), args...)
	cmd.Env = in.env
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		in.t.Fatalf("%v: %v", args, err)
	}
	if code != wantCode {
		in.t.Fatalf("hookworker %v: exit %d, want %d:\n%s", args, code, wantCode, out)
	}
	return string(out)
}

func (in *instance) results(n int) []events.ResultData {
	in.t.Helper()
	var got []events.ResultData
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got = got[:0]
		out := in.cli(0, "results", "--all", "--timeout", "1s")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue
			}
			env, err := events.Decode([]byte(line))
			if err != nil {
				in.t.Fatalf("result line %q: %v", line, err)
			}
			p, _ := env.Payload()
			got = append(got, *p.(*events.ResultData))
		}
		if len(got) >= n {
			return got
		}
	}
	in.t.Fatalf("want %d results, have %d: %+v", n, len(got), got)
	return nil
}

func (in *instance) stop() {
	in.t.Helper()
	start := time.Now()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		if err != nil {
			in.t.Fatalf("hookworker run after SIGTERM: %v\n%s", err, in.log.String())
		}
	case <-time.After(20 * time.Second):
		in.t.Fatalf("hookworker run did not exit within 20s of SIGTERM")
	}
	in.t.Logf("graceful stop took %s", time.Since(start).Round(time.Millisecond))
}

func TestRunEmitResultsDeadLettersAndGracefulStop(t *testing.T) {
	in := startRun(t)
	first := in.cli(0, "emit", "order.accepted")
	second := in.cli(0, "emit", "order.accepted")
	if !strings.Contains(first, "duplicate=false") || !strings.Contains(second, "duplicate=true") {
		t.Fatalf("emit twice:\n%s%s", first, second)
	}
	res := in.results(1)
	if res[0].Provider != "sandbox" || res[0].Reference == "" || res[0].OperationKey != events.ServiceKey("main", 100, events.SignupCustomer) {
		t.Fatalf("result %+v", res[0])
	}
	// product 3 of the built-in catalog always fails: dead letter, then replay.
	bad := filepath.Join(t.TempDir(), "bad.json")
	env, _ := events.NewEnvelope("whmcs:main:AcceptOrder:77", events.OrderAccepted, "main", time.Now(), events.OrderAcceptedData{
		OrderID: 77, Client: events.Client{ID: 7, Email: "ada@example.com"}, Services: []events.OrderedService{{ServiceID: 900, ProductID: 3}}})
	b, _ := json.Marshal(env)
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	in.cli(0, "emit", "order.accepted", "--file", bad)
	in.results(2)
	list := in.cli(0, "dlq", "list")
	if !strings.Contains(list, "whmcs:main:AcceptOrder:77") || !strings.Contains(list, "1 dead letter\n") {
		t.Fatalf("dlq list:\n%s", list)
	}
	show := in.cli(0, "dlq", "show", "1")
	if !strings.Contains(show, `"reason"`) || !strings.Contains(show, "configured to fail") {
		t.Fatalf("dlq show:\n%s", show)
	}
	status := in.cli(0, "status")
	if !strings.Contains(status, "1 waiting") || !strings.Contains(status, "provider sandbox") {
		t.Fatalf("status:\n%s", status)
	}
	in.cli(0, "dlq", "discard", "--all")
	in.cli(1, "dlq", "discard", "1")
	in.cli(2, "dlq", "replay")
	in.cli(2, "emit", "order.exploded")
	metrics, err := http.Get("http://" + in.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var mb bytes.Buffer
	_, _ = mb.ReadFrom(metrics.Body)
	metrics.Body.Close()
	for _, m := range []string{`hookworker_events_processed_total{outcome="succeeded",type="order.accepted"} 1`,
		`hookworker_events_processed_total{outcome="dead_lettered",type="order.accepted"} 1`, "hookworker_build_info"} {
		if !strings.Contains(mb.String(), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	in.stop()
}

func TestFakesSandboxSpeaksProviderWireFormats(t *testing.T) {
	in := startRun(t, "HOOKWORKER_SANDBOX=fakes")
	check := in.cli(0, "providers", "check")
	if !strings.Contains(check, "checked by worker") {
		t.Fatalf("providers check did not ask the running worker:\n%s", check)
	}
	for _, p := range []string{"comet", "codeguard", "storegrid"} {
		if !strings.Contains(check, "provider "+p) || strings.Contains(check, "FAILED") {
			t.Fatalf("providers check:\n%s", check)
		}
	}
	in.cli(0, "emit", "order.accepted") // product 1: Comet
	in.cli(0, "emit", "client.added")   // StoreGrid reseller
	res := in.results(2)
	seen := map[string]bool{}
	for _, r := range res {
		seen[r.Provider+"/"+string(r.Action)] = r.Reference != ""
	}
	if !seen["comet/signup_customer"] || !seen["storegrid/signup_reseller"] {
		t.Fatalf("results %+v", res)
	}
	in.stop()
}

func TestProvidersCheckLocalNamesTheFailingProvider(t *testing.T) {
	dead := freeAddr(t) // nothing listens here
	env := append(os.Environ(), "HOOKWORKER_DATA_DIR="+t.TempDir(), "HOOKWORKER_CATALOG=",
		"HOOKWORKER_COMET_URL=http://"+dead, "HOOKWORKER_COMET_USERNAME=admin", "HOOKWORKER_COMET_PASSWORD=s3cr3t-pa55",
		"HOOKWORKER_COMET_TIMEOUT=2s")
	cmd := exec.Command(binary(t), "providers", "check", "--local")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "provider comet") || !strings.Contains(string(out), "FAILED") || !strings.Contains(string(out), "provider sandbox") {
		t.Fatalf("output:\n%s", out)
	}
	if strings.Contains(string(out), "s3cr3t-pa55") {
		t.Fatalf("output shows the password:\n%s", out)
	}
}

func TestNATSURLCredentialsAreRedacted(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                                "nats://127.0.0.1:4222",
		"nats://user:s3cr3t@nats-1:4222,tls://tok@nats-2:4222": "nats://[redacted]@nats-1:4222,tls://[redacted]@nats-2:4222",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
