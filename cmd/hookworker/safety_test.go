package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
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
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected to the embedded server listening on 0.0.0.0")
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("unauthenticated client: %v, want an authorization violation", err)
	}
	tokenFile := filepath.Join(in.dataDir(), "nats.token")
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatalf("generated token: %v", err)
	}
	if fi, _ := os.Stat(tokenFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}
	token := strings.TrimSpace(string(b))
	nc, err = nats.Connect(url, nats.Token(token))
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
	if nc, err := nats.Connect(in.clientURL(), nats.Timeout(2*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("client without the token: %v, want an authorization violation", err)
	}
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
