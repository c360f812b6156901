package main

import (
	"encoding/json"
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

// `hookworker run` answers the WHMCS module's requests: a Comet single
// sign-on session for a service the worker signed up (fakes sandbox).
func TestRunAnswersCometSingleSignOn(t *testing.T) {
	in := startRun(t, "HOOKWORKER_SANDBOX=fakes")
	in.cli(0, "emit", "order.accepted") // service 100, product 1: Comet
	res := in.results(1)
	var listen string
	for _, e := range in.env {
		if v, ok := strings.CutPrefix(e, "HOOKWORKER_EMBEDDED_LISTEN="); ok {
			listen = v
		}
	}
	nc, err := nats.Connect("nats://" + listen)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req, _ := json.Marshal(events.RPCRequest{Source: "main", ServiceID: 100})
	m, err := nc.Request(events.RPCCometSSO, req, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var rep events.SSOReply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Error != "" || rep.SessionKey == "" || rep.Username != res[0].Reference || !strings.HasPrefix(rep.URL, "http://127.0.0.1:") {
		t.Fatalf("SSO reply %+v, want a session for %q", rep, res[0].Reference)
	}
	in.stop()
	if strings.Contains(in.log.String(), rep.SessionKey) {
		t.Errorf("the session key is in the worker's log")
	}
}
