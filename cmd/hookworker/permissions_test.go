package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// permissionsServer is a nats-server with JetStream whose users are those
// of deploy/nats/permissions.conf, included from a nats.conf as the file
// tells operators to.
func permissionsServer(t *testing.T, hwPass, whmcsPass string) *server.Server {
	t.Helper()
	t.Setenv("HOOKWORKER_NATS_PASSWORD", hwPass)
	t.Setenv("WHMCS_NATS_PASSWORD", whmcsPass)
	dir := t.TempDir()
	perms, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", "permissions.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "permissions.conf"), perms, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "nats.conf")
	body := "listen: 127.0.0.1:-1\njetstream { store_dir: " + strconv.Quote(filepath.Join(dir, "js")) + " }\ninclude permissions.conf\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats.conf with deploy/nats/permissions.conf: %v", err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns
}

// violations collects the permission errors the server reports to a
// connection.
type violations struct {
	mu  sync.Mutex
	got []string
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.got = append(v.got, err.Error())
}

// denied runs act and fails unless the server reports a permissions
// violation naming subject.
func (v *violations) denied(t *testing.T, subject string, act func()) {
	t.Helper()
	act()
	workertest.Eventually(t, 5*time.Second, "a permissions violation for "+subject, func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		for _, e := range v.got {
			if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, subject) {
				return true
			}
		}
		return false
	})
}

// The users of deploy/nats/permissions.conf are enough for each side and no
// more: the worker, under its user, provisions an order published by
// WHMCS's user and answers its requests; WHMCS's user cannot answer the
// worker's requests (so it cannot stand in for a worker and hand out a
// single-sign-on login), sniff results, publish results, write records or
// use the JetStream API beyond listing stream names.
func TestNATSPermissionsExample(t *testing.T) {
	ns := permissionsServer(t, "hw-pass-3f9a", "whmcs-pass-81c2")
	metrics := freeAddr(t)
	p := startProcess(t, "HOOKWORKER_NATS_URL="+ns.ClientURL(), "HOOKWORKER_NATS_USER=hookworker",
		"HOOKWORKER_NATS_PASSWORD=hw-pass-3f9a", "HOOKWORKER_SANDBOX=memory", "HOOKWORKER_METRICS_ADDR="+metrics)
	waitReady(t, metrics, p)

	var v violations
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("whmcs", "whmcs-pass-81c2"), nats.ErrorHandler(v.handler))
	if err != nil {
		t.Fatalf("connect as whmcs: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(subject string, req events.RPCRequest, reply any) {
		t.Helper()
		b, _ := json.Marshal(req)
		m, err := nc.Request(subject, b, 5*time.Second)
		if err != nil {
			t.Fatalf("whmcs asks %s: %v", subject, err)
		}
		if err := json.Unmarshal(m.Data, reply); err != nil {
			t.Fatalf("reply to %s: %v: %s", subject, err, m.Data)
		}
	}

	// Allowed: events in (with their PubAck), requests answered.
	const sid = 4242
	env, err := events.NewEnvelope("perm-order-1", events.OrderAccepted, "main", time.Now(), events.OrderAcceptedData{
		OrderID: 99, Client: events.Client{ID: 7, Email: "perm@example.com", FirstName: "Perm", LastName: "Test"},
		Services: []events.OrderedService{{ServiceID: sid, ProductID: 1, Domain: "perm.example.com", BillingCycle: "Annually"}}})
	if err != nil {
		t.Fatal(err)
	}
	workertest.Publish(t, js, env)
	var status events.RPCReply
	ask(events.RPCStatus, events.RPCRequest{}, &status)
	if status.Err() != nil {
		t.Fatalf("status: %v", status.Err())
	}
	workertest.Eventually(t, 20*time.Second, "the service provisioned, as the services tab sees it", func() bool {
		var r events.ServiceResultReply
		ask(events.RPCServiceResult, events.RPCRequest{Source: "main", ServiceID: sid}, &r)
		return r.Err() == nil && r.Last != nil && r.Last.Type == events.ProvisioningSucceeded
	})
	var retry events.RPCReply
	ask(events.RPCServiceRetry, events.RPCRequest{Source: "main", ServiceID: sid}, &retry) // reads the dead-letter stream
	if retry.Err() != nil && !strings.Contains(retry.Error, "no dead letter") {
		t.Fatalf("retry: %v", retry.Err())
	}
	if n, err := nats.Connect(ns.ClientURL(), nats.UserInfo("whmcs", "wrong")); err == nil {
		n.Close()
		t.Fatal("whmcs connected with a wrong password")
	}

	// Denied.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v.denied(t, events.RPCPrefix+".>", func() { _, _ = nc.Subscribe(events.RPCPrefix+".>", func(*nats.Msg) {}) })
	v.denied(t, events.ResultsWildcard, func() { _, _ = nc.Subscribe(events.ResultsWildcard, func(*nats.Msg) {}) })
	v.denied(t, "hookworker.results.main.x", func() { _ = nc.Publish("hookworker.results.main.x", []byte("{}")) })
	v.denied(t, "$KV."+worker.RecordsBucket+".x", func() { _ = nc.Publish("$KV."+worker.RecordsBucket+".x", []byte("{}")) })
	v.denied(t, "$JS.API.STREAM.DELETE."+worker.EventsStream, func() {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		defer dcancel()
		_ = js.DeleteStream(dctx, worker.EventsStream)
	})
	v.denied(t, "$JS.API.STREAM.INFO."+worker.ResultsStream, func() {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		defer dcancel()
		_, _ = js.Stream(dctx, worker.ResultsStream)
	})
	if names := js.StreamNames(ctx); names.Err() != nil {
		t.Fatalf("list stream names as whmcs: %v", names.Err())
	}
	// The worker still has its events stream and still answers.
	ask(events.RPCStatus, events.RPCRequest{}, &status)
	if status.Err() != nil {
		t.Fatalf("status after the denied calls: %v", status.Err())
	}
}
