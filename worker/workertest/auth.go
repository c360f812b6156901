package workertest

import (
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
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Refused fails the test unless a client connecting to url with opts is
// refused with an authorization violation (nats.ErrAuthorization): a client
// that connects (the connection is closed) or fails for another reason (a
// network or TLS error, a timeout) fails it. The connect attempt times out
// after 2 s unless opts say otherwise. who names the client in the failure.
func Refused(t testing.TB, url, who string, opts ...nats.Option) {
	t.Helper()
	nc, err := nats.Connect(url, append([]nats.Option{nats.Timeout(2 * time.Second)}, opts...)...)
	if err == nil {
		nc.Close()
		t.Fatalf("%s connected to %s; want it refused", who, url)
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("%s: %v, want an authorization violation", who, err)
	}
}

// SelfSignedCert writes a self-signed ECDSA P-256 certificate for
// 127.0.0.1 and its key as PEM files in a directory removed when the test
// ends, and returns their paths. The certificate is valid from an hour ago
// to an hour from now, for server authentication, and is its own CA, so a
// client trusts it with nats.RootCAs(certFile) and no other client does.
func SelfSignedCert(t testing.TB) (certFile, keyFile string) {
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
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
