package worker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/worker"
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
				nc, err := nats.Connect(url, append(o, nats.Timeout(2*time.Second))...)
				if err == nil {
					nc.Close()
					t.Fatalf("client %d without the right credentials connected", i)
				}
				if !errors.Is(err, nats.ErrAuthorization) {
					t.Errorf("client %d: %v, want an authorization violation", i, err)
				}
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
	dir := t.TempDir()
	cert, key := selfSigned(t, dir)
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
	if _, err := nats.Connect(url, nats.RootCAs(cert), nats.Timeout(2*time.Second)); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("TLS client without the token: %v, want an authorization violation", err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key under dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hookworker test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
