package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/workertest"
)

// status and providers check ask the running worker; without one they fail
// within the request timeout and say that no worker answered.
func TestStatusAndProvidersCheckWithoutAnsweringWorker(t *testing.T) {
	ns := workertest.Server(t)
	silent := func(t *testing.T) {
		// A "worker" that takes the requests and never answers.
		nc, _ := workertest.Connect(t, ns.ClientURL())
		for _, subj := range []string{events.RPCStatus, events.RPCProvidersCheck} {
			if _, err := nc.QueueSubscribe(subj, events.RPCQueue, func(*nats.Msg) {}); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		setup  func(*testing.T)
		args   []string
		within time.Duration
	}{
		{name: "status, no worker", args: []string{"status"}, within: 3 * time.Second},
		{name: "providers check, no worker", args: []string{"providers", "check"}, within: 3 * time.Second},
		{name: "status, silent worker", setup: silent, args: []string{"status"}, within: rpcTimeout + 3*time.Second},
		{name: "providers check, silent worker", setup: silent, args: []string{"providers", "check", "--timeout", "1s"}, within: 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			cmd := exec.Command(binary(t), tc.args...)
			cmd.Env = append(os.Environ(), "HOOKWORKER_DATA_DIR="+t.TempDir(), "HOOKWORKER_NATS_URL="+ns.ClientURL())
			start := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(start)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1:\n%s", err, out)
			}
			if !strings.Contains(string(out), "no hookworker worker answered") || !strings.Contains(string(out), "hookworker run") {
				t.Fatalf("output does not say no worker answered:\n%s", out)
			}
			if took > tc.within {
				t.Fatalf("took %s, want at most %s", took, tc.within)
			}
		})
	}
}
