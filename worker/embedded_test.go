package worker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:4222": true, "127.0.0.2:4222": true, "[::1]:4222": true, "localhost:4222": true,
		"0.0.0.0:4222": false, ":4222": false, "[::]:4222": false, "10.0.0.5:4222": false,
		"nats.example:4222": false, "192.168.1.2:0": false, "not an address": false,
	} {
		if got := worker.IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func startEmbedded(t *testing.T, c worker.EmbeddedConfig) *server.Server {
	t.Helper()
	c.Dir = t.TempDir()
	ns, err := worker.StartEmbeddedServer(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// loopbackURL is where a client on this host reaches a server listening on
// every interface.
func loopbackURL(t *testing.T, ns *server.Server, scheme string) string {
	t.Helper()
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		t.Fatalf("server address %v", ns.Addr())
	}
	return scheme + "://127.0.0.1:" + strconv.Itoa(addr.Port)
}

func TestEmbeddedOffLoopbackRefusesToStartOpen(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		ns, err := worker.StartEmbedded(t.TempDir(), listen)
		if err == nil {
			ns.Shutdown()
			t.Fatalf("StartEmbedded(%q) started a server without authentication", listen)
		}
		if !errors.Is(err, worker.ErrEmbeddedOpen) {
			t.Errorf("StartEmbedded(%q) = %v, want ErrEmbeddedOpen", listen, err)
		}
	}
}

func TestEmbeddedOffLoopbackRefusesUnauthenticatedClients(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  worker.EmbeddedConfig
		good []nats.Option
		bad  [][]nats.Option
	}{
		{"token", worker.EmbeddedConfig{Listen: "0.0.0.0:0", Token: "t0ken-t0ken-t0ken"},
			[]nats.Option{nats.Token("t0ken-t0ken-t0ken")},
			[][]nats.Option{nil, {nats.Token("wrong")}, {nats.UserInfo("hookworker", "t0ken-t0ken-t0ken")}}},
		{"user", worker.EmbeddedConfig{Listen: "0.0.0.0:0", User: "whmcs", Password: "pa55-pa55-pa55"},
			[]nats.Option{nats.UserInfo("whmcs", "pa55-pa55-pa55")},
			[][]nats.Option{nil, {nats.UserInfo("whmcs", "wrong")}, {nats.Token("pa55-pa55-pa55")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := startEmbedded(t, tc.cfg)
			url := loopbackURL(t, ns, "nats")
			for i, o := range tc.bad {
				workertest.Refused(t, url, fmt.Sprintf("client %d without the right credentials", i), o...)
			}
			nc, err := nats.Connect(url, tc.good...)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			if _, err := js.AccountInfo(context.Background()); err != nil {
				t.Fatalf("JetStream with credentials: %v", err)
			}
			// The worker's own in-process connection authenticates too.
			if _, err := nats.Connect("", nats.InProcessServer(ns)); err == nil {
				t.Error("in-process client without credentials connected")
			}
			ip, err := nats.Connect("", append(tc.good, nats.InProcessServer(ns))...)
			if err != nil {
				t.Fatalf("in-process client with credentials: %v", err)
			}
			ip.Close()
		})
	}
}

func TestEmbeddedTLS(t *testing.T) {
	cert, key := workertest.SelfSignedCert(t)
	ns := startEmbedded(t, worker.EmbeddedConfig{Listen: "0.0.0.0:0", Token: "t0ken-t0ken-t0ken", TLSCert: cert, TLSKey: key})
	url := loopbackURL(t, ns, "tls")
	if nc, err := nats.Connect(url, nats.Token("t0ken-t0ken-t0ken"), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client that does not trust the certificate connected")
	}
	nc, err := nats.Connect(url, nats.Token("t0ken-t0ken-t0ken"), nats.RootCAs(cert))
	if err != nil {
		t.Fatalf("TLS client trusting the certificate: %v", err)
	}
	defer nc.Close()
	if !nc.TLSRequired() {
		t.Error("connection is not TLS")
	}
	workertest.Refused(t, url, "a TLS client without the token", nats.RootCAs(cert))
}
