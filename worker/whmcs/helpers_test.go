package whmcs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/whmcs/whmcstest"
)

func TestMain(m *testing.M) {
	// Short timings for every test; set once, before any goroutine runs.
	ackWait = 2 * time.Second
	retryInitial = 10 * time.Millisecond
	retryMaxElapsed = 150 * time.Millisecond
	nakFirst = 100 * time.Millisecond
	nakMax = 400 * time.Millisecond
	authNak = 200 * time.Millisecond
	fetchPause = 50 * time.Millisecond
	os.Exit(m.Run())
}

// startJetStream runs an embedded nats-server with JetStream on a temp dir.
func startJetStream(t *testing.T) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	ns, err := server.NewServer(&server.Options{ServerName: "whmcs-test", Host: "127.0.0.1", Port: -1,
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	ns.Start()
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

func newKV(t *testing.T, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "hookworker_ops", History: 1,
		Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("kv: %v", err)
	}
	return kv
}

func newFake(t *testing.T) *whmcstest.Server {
	t.Helper()
	f := whmcstest.NewServer()
	t.Cleanup(f.Close)
	return f
}

func fakeConfig(f *whmcstest.Server) Config {
	return Config{APIURL: f.URL, Identifier: f.Identifier, Secret: f.Secret, Timeout: 2 * time.Second,
		PassKeyFieldID: 7, WritebackConsumer: "hookworker-writeback"}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// observed returns a logger that records every entry, at debug level.
func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// assertNotLogged fails when any log entry (message or field) contains one
// of secrets.
func assertNotLogged(t *testing.T, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	for _, e := range logs.All() {
		text := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("log entry %q contains a secret: %s", e.Message, text)
			}
		}
	}
}

// result builds a valid result envelope.
func result(t *testing.T, typ events.Type, id string, d events.ResultData) events.Envelope {
	t.Helper()
	if d.SourceEventID == "" {
		d.SourceEventID = "src-" + id
	}
	if d.OperationKey == "" && d.Action != "" {
		d.OperationKey = "op-" + id
	}
	env, err := events.NewEnvelope(id, typ, "main", time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), d)
	if err != nil {
		t.Fatalf("envelope: %v", err)
	}
	return env
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// moduleCalls lists the Module* calls the fake received (there must be
// none).
func moduleCalls(f *whmcstest.Server) []string {
	var out []string
	for _, c := range f.Calls() {
		if strings.HasPrefix(strings.ToLower(c.Action), "module") {
			out = append(out, c.Action)
		}
	}
	return out
}
