package worker

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig is how the in-process NATS server runs.
type EmbeddedConfig struct {
	Dir    string // JetStream store (under Dir/nats)
	Listen string // "host:port"; port 0 picks a free port; "" listens on no port (in-process clients only)

	// Authentication: a token, or a user and password. Off loopback one of
	// them is required.
	Token, User, Password string

	// TLS: the server's certificate and key (both or neither), and a CA
	// that client certificates must be signed by (optional: mutual TLS).
	TLSCert, TLSKey, TLSClientCA string
}

// ErrEmbeddedOpen is returned by StartEmbeddedServer when the server would
// listen off loopback without authentication.
var ErrEmbeddedOpen = errors.New("the embedded NATS server would accept anyone")

// IsLoopback reports whether a "host:port" listen address is reachable
// only from this host: host "localhost" or an IP address in 127.0.0.0/8 or
// ::1. Everything else (0.0.0.0, ::, an empty host, another name or
// address) is off loopback.
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// StartEmbedded starts an in-process NATS server with JetStream and no
// authentication, storing its data under dir and listening on listen
// (see EmbeddedConfig). It refuses an address off loopback: use
// StartEmbeddedServer with credentials for that. The caller must call
// Shutdown.
func StartEmbedded(dir, listen string) (*server.Server, error) {
	return StartEmbeddedServer(EmbeddedConfig{Dir: dir, Listen: listen})
}

// StartEmbeddedServer starts an in-process NATS server with JetStream as c
// says. It returns ErrEmbeddedOpen instead of starting when c.Listen is off
// loopback (IsLoopback) and no token or user is set: such a server never
// accepts unauthenticated clients. The caller must call Shutdown.
func StartEmbeddedServer(c EmbeddedConfig) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "hookworker-embedded", JetStream: true, StoreDir: filepath.Join(c.Dir, "nats"),
		NoSigs: true, NoLog: true, MaxPayload: 1 << 20,
	}
	switch {
	case c.Token != "" && c.User != "":
		return nil, errors.New("embedded NATS: set a token or a user, not both")
	case c.Token != "":
		opts.Authorization = c.Token
	case c.User != "":
		if c.Password == "" {
			return nil, errors.New("HOOKWORKER_NATS_PASSWORD: required with HOOKWORKER_NATS_USER for the embedded server")
		}
		opts.Username, opts.Password = c.User, c.Password
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, errors.New("HOOKWORKER_EMBEDDED_TLS_CERT and HOOKWORKER_EMBEDDED_TLS_KEY: set both or neither")
	}
	if c.TLSClientCA != "" && c.TLSCert == "" {
		return nil, errors.New("HOOKWORKER_EMBEDDED_TLS_CLIENT_CA: needs HOOKWORKER_EMBEDDED_TLS_CERT and _KEY")
	}
	if c.TLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: c.TLSCert, KeyFile: c.TLSKey,
			CaFile: c.TLSClientCA, Verify: c.TLSClientCA != ""})
		if err != nil {
			return nil, fmt.Errorf("HOOKWORKER_EMBEDDED_TLS_CERT: %w", err)
		}
		opts.TLSConfig, opts.TLS, opts.TLSVerify, opts.TLSTimeout = tc, true, c.TLSClientCA != "", 2
	}
	if c.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("HOOKWORKER_EMBEDDED_LISTEN: %q is not host:port: %w", c.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("HOOKWORKER_EMBEDDED_LISTEN: %q has no valid port", c.Listen)
		}
		if !IsLoopback(c.Listen) && c.Token == "" && c.User == "" {
			return nil, fmt.Errorf("HOOKWORKER_EMBEDDED_LISTEN: %s is reachable from other hosts and no credentials are set (HOOKWORKER_NATS_TOKEN or HOOKWORKER_NATS_USER/_PASSWORD): %w", c.Listen, ErrEmbeddedOpen)
		}
		if p == 0 {
			p = -1 // the server's "random port"
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats-server on %s did not become ready (is the port in use?)", c.Listen)
	}
	return ns, nil
}
