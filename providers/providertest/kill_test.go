package providertest_test

// Crash tests of the real binary: `hookworker run` as a subprocess against
// an embedded JetStream server and a provider fake in this process. The
// fake applies the signup's effect and holds the reply; the process is then
// SIGKILLed (no ack, no record update, no shutdown) or SIGTERMed, and a
// second process must finish the job without a second account or order.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
	"github.com/hookworker/hookworker/providers/comet/comettest"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// hookworkerBinary builds ./cmd/hookworker once per test run.
func hookworkerBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds and runs the hookworker binary")
	}
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
		gomod := strings.TrimSpace(string(out))
		if err != nil || gomod == "" || gomod == os.DevNull {
			buildErr = fmt.Errorf("go env GOMOD = %q: %v", gomod, err)
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "hookworker-e2e-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "hookworker")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/hookworker")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/hookworker in %s: %v\n%s", cmd.Dir, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// syncBuffer collects a subprocess's output.
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

// proc is one `hookworker run` subprocess.
type proc struct {
	name  string
	cmd   *exec.Cmd
	out   *syncBuffer
	done  chan struct{}
	state *os.ProcessState
}

func startHookworker(t *testing.T, name string, env []string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(hookworkerBinary(t), "run"), out: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("--- output of hookworker process %q (pid %d, %v):\n%s", name, p.cmd.Process.Pid, p.state, p.out.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the process to end and reports whether it did.
func (p *proc) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill SIGKILLs the process and waits for it: nothing runs after the signal.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL %s: %v", p.name, err)
	}
	if !p.waitExit(10 * time.Second) {
		t.Fatalf("%s still runs 10s after SIGKILL", p.name)
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("%s ended with %v, not by SIGKILL", p.name, p.state)
	}
}

// stop SIGTERMs the process and fails the test unless it exits with status
// 0 within within.
func (p *proc) stop(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("SIGTERM %s: %v", p.name, err)
	}
	if !p.waitExit(within) {
		t.Fatalf("%s still runs %s after SIGTERM", p.name, within)
	}
	took := time.Since(start)
	if code := p.state.ExitCode(); code != 0 {
		t.Fatalf("%s exited with %v after SIGTERM, want status 0", p.name, p.state)
	}
	return took
}

// stall is put in front of a fake: the first request match selects is
// handed to the fake (its effect is applied), and its reply is then held:
// for hold, or, with hold 0, until the client goes away or release is
// closed, in which case no reply is ever written.
type stall struct {
	next    http.Handler
	match   func(*http.Request) bool
	hold    time.Duration
	armed   atomic.Bool
	applied chan struct{}
	release chan struct{}
}

func newStall(next http.Handler, match func(*http.Request) bool, hold time.Duration) *stall {
	s := &stall{next: next, match: match, hold: hold, applied: make(chan struct{}), release: make(chan struct{})}
	s.armed.Store(true)
	return s
}

func (s *stall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm() // the fakes parse it again: a no-op
	if !s.match(r) || !s.armed.CompareAndSwap(true, false) {
		s.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	close(s.applied)
	var held <-chan time.Time
	if s.hold > 0 {
		held = time.After(s.hold)
	}
	select {
	case <-held:
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	case <-s.release:
		panic(http.ErrAbortHandler) // close the connection without a reply
	case <-r.Context().Done(): // the client died or gave up
	}
}

// killCase is one provider for the subprocess tests.
type killCase struct {
	name    string
	catalog string
	product int
	// start starts the fake behind handler wrap and returns the fake's
	// view, the worker's environment for it, and the fake's handler.
	start func(t *testing.T, wrap func(http.Handler) string) (*fakeServer, map[string]string)
	// effect selects the request that creates the account or order.
	effect func(*http.Request) bool
}

func killCases() []killCase {
	return []killCase{
		{
			name: "comet", product: 10,
			catalog: "products:\n  - {id: 10, name: Comet Backup, provider: comet}\n",
			start: func(t *testing.T, wrap func(http.Handler) string) (*fakeServer, map[string]string) {
				srv := comettest.NewServer()
				t.Cleanup(srv.Close)
				url := wrap(srv)
				return cometFake(t, srv, url, zap.NewNop()), map[string]string{
					"HOOKWORKER_COMET_URL": url, "HOOKWORKER_COMET_USERNAME": srv.Username, "HOOKWORKER_COMET_PASSWORD": srv.Password,
					"HOOKWORKER_COMET_RATE": "0", "HOOKWORKER_COMET_TIMEOUT": "20s"}
			},
			effect: func(r *http.Request) bool { return r.URL.Path == "/api/v1/admin/add-user" },
		},
		{
			name: "codeguard", product: 22,
			catalog: "products:\n  - {id: 22, name: CodeGuard Basic, provider: codeguard, settings: {plan_id: 229}}\n",
			start: func(t *testing.T, wrap func(http.Handler) string) (*fakeServer, map[string]string) {
				srv := codeguardtest.NewServer()
				t.Cleanup(srv.Close)
				url := wrap(srv) + "/api"
				return codeguardFake(t, srv, url, zap.NewNop()), map[string]string{
					"HOOKWORKER_CODEGUARD_URL": url, "HOOKWORKER_CODEGUARD_AUTH_USERID": srv.AuthUserID,
					"HOOKWORKER_CODEGUARD_API_KEY": srv.APIKey, "HOOKWORKER_CODEGUARD_RATE": "0", "HOOKWORKER_CODEGUARD_TIMEOUT": "20s"}
			},
			effect: func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/codeguard/add.json") },
		},
		{
			name: "storegrid", product: 30,
			catalog: "products:\n  - id: 30\n    name: StoreGrid customer 100 GB\n    provider: storegrid\n" +
				"    settings: {reseller_name: acme-backup, storage_allotted: 107374182400, retrieve_pass_key: yes}\n",
			start: func(t *testing.T, wrap func(http.Handler) string) (*fakeServer, map[string]string) {
				srv := storegridtest.NewServer()
				t.Cleanup(srv.Close)
				srv.AddReseller(testReseller)
				url := wrap(srv)
				return storegridFake(t, srv, url, zap.NewNop()), map[string]string{
					"HOOKWORKER_STOREGRID_URL": url, "HOOKWORKER_STOREGRID_USERNAME": srv.Username,
					"HOOKWORKER_STOREGRID_PASSWORD": srv.Password, "HOOKWORKER_STOREGRID_RATE": "0", "HOOKWORKER_STOREGRID_TIMEOUT": "20s"}
			},
			effect: func(r *http.Request) bool { return r.PostForm.Get("action") == "addcustomer" },
		},
	}
}

// crash is a JetStream server, a fake behind a stall and the environment
// of the hookworker processes that use them.
type crash struct {
	t       *testing.T
	kc      killCase
	f       *fakeServer
	stall   *stall
	js      jetstream.JetStream
	env     []string
	results *workertest.Results
	procs   []*proc
}

// newCrash prepares everything but the processes; hold is the stall's hold
// (0 = until the client goes away); vars override worker settings.
func newCrash(t *testing.T, kc killCase, hold time.Duration, vars map[string]string) *crash {
	t.Helper()
	hookworkerBinary(t) // build (or skip) before starting anything
	c := &crash{t: t, kc: kc}
	ns := workertest.Server(t)
	_, c.js = workertest.Connect(t, ns.ClientURL())
	var provVars map[string]string
	c.f, provVars = kc.start(t, func(h http.Handler) string {
		c.stall = newStall(h, kc.effect, hold)
		ts := httptest.NewServer(c.stall)
		t.Cleanup(ts.Close)
		t.Cleanup(func() { close(c.stall.release) }) // runs before ts.Close
		return ts.URL
	})
	dir := t.TempDir()
	catalogPath := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catalogPath, []byte(kc.catalog), 0o600); err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{
		"HOOKWORKER_NATS_URL": ns.ClientURL(), "HOOKWORKER_CATALOG": catalogPath, "HOOKWORKER_DATA_DIR": filepath.Join(dir, "data"),
		"HOOKWORKER_PASSWORD_SECRET": passwordSecret, "HOOKWORKER_METRICS_ADDR": "", "HOOKWORKER_OPS_ADDR": "",
		"HOOKWORKER_ACK_WAIT": "2s", "HOOKWORKER_ATTEMPT_BUDGET": "2s", "HOOKWORKER_RETRY_BASE": "100ms", "HOOKWORKER_RETRY_MAX": "1s",
		"HOOKWORKER_FETCH_WAIT": "200ms", "HOOKWORKER_STATS_INTERVAL": "200ms", "HOOKWORKER_PROVIDER_CHECK_INTERVAL": "0",
		"HOOKWORKER_SHUTDOWN_TIMEOUT": "10s", "HOOKWORKER_LOG_LEVEL": "debug",
	}
	for k, v := range provVars {
		settings[k] = v
	}
	for k, v := range vars {
		settings[k] = v
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKWORKER_") {
			c.env = append(c.env, kv)
		}
	}
	for k, v := range settings {
		c.env = append(c.env, k+"="+v)
	}
	t.Cleanup(c.checkNoSecrets) // after the processes are gone (cleanups run last-first)
	return c
}

// start runs a hookworker process and waits until its streams, consumer
// and bucket exist.
func (c *crash) start(name string) *proc {
	c.t.Helper()
	p := startHookworker(c.t, name, c.env)
	c.procs = append(c.procs, p)
	workertest.Eventually(c.t, 30*time.Second, name+" to set up JetStream", func() bool {
		if p.exited() {
			c.t.Fatalf("%s exited during start-up: %v", name, p.state)
		}
		ctx := workertest.Context(c.t, 2*time.Second)
		if _, err := c.js.Consumer(ctx, worker.EventsStream, "hookworker"); err != nil {
			return false
		}
		if _, err := c.js.KeyValue(ctx, worker.RecordsBucket); err != nil {
			return false
		}
		_, err := c.js.Stream(ctx, worker.ResultsStream)
		return err == nil
	})
	if c.results == nil {
		c.results = workertest.CollectResults(c.t, c.js)
	}
	return p
}

// order publishes AcceptOrder of service sid, as the hook does.
func (c *crash) order(sid int) {
	c.t.Helper()
	workertest.Publish(c.t, c.js, acceptOrder(c.t, 1000+sid, 5000+sid, events.OrderedService{
		ServiceID: sid, ProductID: c.kc.product, Domain: domainOf(sid), BillingCycle: "Annually"}))
}

// effectApplied waits until the stalled request's effect is applied at the
// fake.
func (c *crash) effectApplied(p *proc) {
	c.t.Helper()
	select {
	case <-c.stall.applied:
	case <-p.done:
		c.t.Fatalf("%s exited before the provider was called: %v", p.name, p.state)
	case <-time.After(30 * time.Second):
		c.t.Fatal("the signup never reached the provider's effect")
	}
	if n := c.f.created(); n != 1 {
		c.t.Fatalf("the fake created %d accounts/orders when the effect was applied, want 1", n)
	}
}

func (c *crash) record(key string) worker.Record {
	c.t.Helper()
	kv, err := c.js.KeyValue(workertest.Context(c.t, 5*time.Second), worker.RecordsBucket)
	if err != nil {
		c.t.Fatal(err)
	}
	rec, err := worker.LoadRecord(workertest.Context(c.t, 5*time.Second), kv, key)
	if err != nil {
		c.t.Fatalf("record of %s: %v", key, err)
	}
	return rec
}

// succeeded waits for the signup's succeeded result.
func (c *crash) succeeded(sid int) events.ResultData {
	c.t.Helper()
	var res events.ResultData
	workertest.Eventually(c.t, 40*time.Second, "the signup's provisioning.succeeded", func() bool {
		for _, r := range c.results.All() {
			if r.Data.OperationKey != signupKey(sid) {
				continue
			}
			switch r.Envelope.Type {
			case events.ProvisioningSucceeded:
				res = r.Data
				return true
			case events.ProvisioningDeadLettered:
				c.t.Fatalf("the signup was dead-lettered: %s", r.Data.Error)
			}
		}
		return false
	})
	return res
}

// oneEffect checks the fake holds one account or order for service sid,
// created once, and that the event was acked with one succeeded result.
func (c *crash) oneEffect(sid int, res events.ResultData) {
	c.t.Helper()
	drained(c.t, c.js, "hookworker")
	if n := c.f.created(); n != 1 {
		c.t.Errorf("the fake created %d accounts/orders, want 1", n)
	}
	if n := c.f.held(); n != 1 {
		c.t.Errorf("the fake holds %d accounts/orders, want 1", n)
	}
	if ref := c.f.ref(sid); res.Reference != ref {
		c.t.Errorf("result reference %q, want %q", res.Reference, ref)
	}
	if pk := c.f.passKey(res.Reference); pk != "" && res.WriteBack["Pass Key"] != pk {
		c.t.Errorf("result writes back %d fields, not the account's pass key", len(res.WriteBack))
	}
	n := 0
	for _, r := range c.results.Of(events.ProvisioningSucceeded) {
		if r.Data.OperationKey == signupKey(sid) {
			n++
		}
	}
	if n != 1 {
		c.t.Errorf("%d succeeded results for the signup, want 1", n)
	}
	if rec := c.record(signupKey(sid)); rec.State != worker.StateDone {
		c.t.Errorf("record state %q, want %q", rec.State, worker.StateDone)
	}
	for _, d := range deadLetters(c.t, c.js) {
		c.t.Errorf("dead letter: %s: %s", d.EventID, d.Reason)
	}
}

// checkNoSecrets fails when a process's output holds a provider
// credential, a service password or a pass key.
func (c *crash) checkNoSecrets() {
	secrets := c.f.secrets()
	for _, sid := range []int{300, 310, 320} {
		secrets = append(secrets, servicePassword(c.t, sid))
	}
	for _, p := range c.procs {
		out := p.out.String()
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				c.t.Errorf("the output of %s holds a secret (%d characters)", p.name, len(s))
			}
		}
	}
}

// SIGKILL after the provider applied the signup, before the reply: the
// next process finds the effect by look-up and creates nothing.
func TestKillAfterEffect(t *testing.T) {
	t.Parallel()
	for _, kc := range killCases() {
		t.Run(kc.name, func(t *testing.T) {
			t.Parallel()
			c := newCrash(t, kc, 0, nil)
			const sid = 300
			first := c.start("first")
			c.order(sid)
			c.effectApplied(first)
			first.kill(t)

			rec := c.record(signupKey(sid))
			if rec.State != worker.StateInFlight || rec.Outcome != nil {
				t.Fatalf("record after the kill: state %q, outcome %v; want in_flight without outcome", rec.State, rec.Outcome)
			}
			if n := len(c.results.All()); n != 0 {
				t.Fatalf("%d results published by a process killed before the reply", n)
			}

			second := c.start("second")
			res := c.succeeded(sid)
			if !res.AlreadyDone {
				t.Errorf("result %+v: want already_done (the effect found by look-up)", res)
			}
			c.oneEffect(sid, res)
			second.stop(t, 20*time.Second)
		})
	}
}

// SIGTERM while the provider is slow to reply: the process finishes the
// event within the shutdown timeout, acks it and exits with status 0.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	for _, kc := range killCases() {
		t.Run(kc.name, func(t *testing.T) {
			t.Parallel()
			c := newCrash(t, kc, 1500*time.Millisecond, map[string]string{"HOOKWORKER_SHUTDOWN_TIMEOUT": "10s"})
			const sid = 310
			p := c.start("worker")
			c.order(sid)
			c.effectApplied(p)
			took := p.stop(t, 15*time.Second)
			if took > 12*time.Second {
				t.Errorf("shutdown took %s with a 10s shutdown timeout", took)
			}
			res := c.succeeded(sid)
			if res.AlreadyDone {
				t.Errorf("result %+v: the in-flight call should have finished the signup itself", res)
			}
			c.oneEffect(sid, res)
		})
	}
}

// SIGTERM while the provider holds the reply past the shutdown timeout: the
// in-flight call is cancelled, the event nak'ed, the process exits with
// status 0, and the next process completes the event with one effect.
func TestGracefulShutdownNaksWhatOutlastsIt(t *testing.T) {
	t.Parallel()
	for _, kc := range killCases() {
		t.Run(kc.name, func(t *testing.T) {
			t.Parallel()
			c := newCrash(t, kc, 0, map[string]string{"HOOKWORKER_SHUTDOWN_TIMEOUT": "1s"})
			const sid = 320
			first := c.start("first")
			c.order(sid)
			c.effectApplied(first)
			took := first.stop(t, 10*time.Second)
			if took > 5*time.Second {
				t.Errorf("shutdown took %s with a 1s shutdown timeout", took)
			}
			for _, r := range c.results.Of(events.ProvisioningSucceeded) {
				t.Fatalf("succeeded result %+v although the call never got its reply", r.Data)
			}
			second := c.start("second")
			res := c.succeeded(sid)
			if !res.AlreadyDone {
				t.Errorf("result %+v: want already_done (the effect found by look-up)", res)
			}
			c.oneEffect(sid, res)
			second.stop(t, 20*time.Second)
		})
	}
}
