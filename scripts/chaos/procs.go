package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// findNATSServer returns the nats-server binary to run: flag, $NATS_SERVER,
// PATH, $(go env GOPATH)/bin, or one built with go install at the version
// go.mod requires.
func findNATSServer(ctx context.Context, flagPath string, logf func(string, ...any)) (string, error) {
	for _, p := range []string{flagPath, os.Getenv("NATS_SERVER")} {
		if p != "" {
			return p, nil
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	gopath, err := exec.CommandContext(ctx, "go", "env", "GOPATH").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOPATH: %w", err)
	}
	bin := filepath.Join(strings.Split(strings.TrimSpace(string(gopath)), string(os.PathListSeparator))[0], "bin", "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	ver, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", "github.com/nats-io/nats-server/v2").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m github.com/nats-io/nats-server/v2: %w", err)
	}
	mod := "github.com/nats-io/nats-server/v2@" + strings.TrimSpace(string(ver))
	logf("building %s into %s", mod, filepath.Dir(bin))
	cmd := exec.CommandContext(ctx, "go", "install", mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %v\n%s", mod, err, out)
	}
	return bin, nil
}

// buildHookworker builds ./cmd/hookworker of the module chaos runs in.
func buildHookworker(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("run chaos inside the hookworker module (go env GOMOD = %q: %v)", gomod, err)
	}
	bin := filepath.Join(dir, "hookworker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/hookworker")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/hookworker: %v\n%s", err, out)
	}
	return bin, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// natsProc is one nats-server with JetStream on a fixed port and store, so
// a restart brings the same streams back.
type natsProc struct {
	bin, dir string
	port     int
	log      *os.File
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	restarts int
}

func startNATS(bin, dir string) (*natsProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "nats-server.log"))
	if err != nil {
		return nil, err
	}
	n := &natsProc{bin: bin, dir: dir, port: port, log: logf}
	return n, n.start()
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsProc) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cmd := exec.Command(n.bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(n.port), "-sd", filepath.Join(n.dir, "jetstream"), "-n", "chaos")
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start nats-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	n.cmd, n.done = cmd, done
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("nats-server exited at start (see %s)", n.log.Name())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("nats-server does not accept connections after 20s")
}

// stop ends the server gracefully (SIGTERM), SIGKILLing it after 15s.
func (n *natsProc) stop() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// restart stops the server, waits down, and starts it again.
func (n *natsProc) restart(down time.Duration) error {
	n.stop()
	time.Sleep(down)
	n.restarts++
	return n.start()
}

// workers supervises the hookworker processes the way systemd would: a
// process that exits is started again after a second; kill SIGKILLs one.
type workers struct {
	bin     string
	env     []string
	dir     string
	logf    func(string, ...any)
	mu      sync.Mutex
	slots   []*workerSlot
	kills   int
	crashes []string // exits not caused by chaos
	stopped bool
}

type workerSlot struct {
	n    int
	cmd  *exec.Cmd
	done chan struct{}
	runs int
	// killed is set before a SIGKILL, so the exit is not counted as a crash.
	killed bool
	// held keeps the slot from restarting until release.
	held bool
}

func (w *workers) logPath(slot, run int) string {
	return filepath.Join(w.dir, fmt.Sprintf("worker%d.run%02d.log", slot, run))
}

// start launches every slot's first process.
func (w *workers) start(n int) error {
	for i := range n {
		s := &workerSlot{n: i}
		w.slots = append(w.slots, s)
		if err := w.launch(s); err != nil {
			return err
		}
	}
	return nil
}

func (w *workers) launch(s *workerSlot) error {
	s.runs++
	logf, err := os.Create(w.logPath(s.n, s.runs))
	if err != nil {
		return err
	}
	cmd := exec.Command(w.bin, "run")
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start hookworker: %w", err)
	}
	done := make(chan struct{})
	s.cmd, s.done, s.killed = cmd, done, false
	go func() {
		err := cmd.Wait()
		logf.Close()
		close(done)
		w.exited(s, cmd, err)
	}()
	return nil
}

func (w *workers) exited(s *workerSlot, cmd *exec.Cmd, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s.cmd != cmd {
		return
	}
	if !s.killed && !w.stopped {
		msg := fmt.Sprintf("worker %d run %d exited by itself: %v (log %s)", s.n, s.runs, err, w.logPath(s.n, s.runs))
		w.crashes = append(w.crashes, msg)
		w.logf("%s", msg)
	}
	if w.stopped || s.held {
		return // stopping, or killed by chaos, which revives it itself
	}
	go func() {
		time.Sleep(time.Second) // as systemd's RestartSec would
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.stopped && s.cmd == cmd && !s.held {
			if err := w.launch(s); err != nil {
				w.logf("restart worker %d: %v", s.n, err)
			}
		}
	}()
}

// kill SIGKILLs the process of slot i and waits for it to end.
func (w *workers) kill(i int) {
	w.mu.Lock()
	s := w.slots[i]
	s.killed, s.held = true, true
	cmd, done := s.cmd, s.done
	w.kills++
	w.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// revive starts slot i again after a kill.
func (w *workers) revive(i int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.slots[i]
	s.held = false
	if w.stopped {
		return
	}
	select {
	case <-s.done:
		if err := w.launch(s); err != nil {
			w.logf("restart worker %d: %v", s.n, err)
		}
	default: // still running
	}
}

// reviveAll makes sure every slot runs a process.
func (w *workers) reviveAll() {
	for i := range w.slots {
		w.revive(i)
	}
}

// stopAll SIGTERMs every process and waits up to 20s for them.
func (w *workers) stopAll() {
	w.mu.Lock()
	w.stopped = true
	var dones []chan struct{}
	var cmds []*exec.Cmd
	for _, s := range w.slots {
		cmds = append(cmds, s.cmd)
		dones = append(dones, s.done)
	}
	w.mu.Unlock()
	for _, c := range cmds {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for i, d := range dones {
		select {
		case <-d:
		case <-time.After(20 * time.Second):
			_ = cmds[i].Process.Kill()
			<-d
		}
	}
}

// logs returns every worker log file.
func (w *workers) logs() []string {
	m, _ := filepath.Glob(filepath.Join(w.dir, "worker*.run*.log"))
	return m
}
