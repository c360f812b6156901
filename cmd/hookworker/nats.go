package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/hookworker/hookworker/worker"
)

// broker is a NATS connection, and the embedded server when hookworker runs
// one.
type broker struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	embedded *server.Server
}

// close drains the connection (in-flight acks are flushed) and stops the
// embedded server.
func (b *broker) close() {
	if b.nc != nil {
		_ = b.nc.Drain()
		deadline := time.Now().Add(5 * time.Second)
		for !b.nc.IsClosed() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if b.embedded != nil {
		b.embedded.Shutdown()
		b.embedded.WaitForShutdown()
	}
}

// clientURL is the URL a client command (emit, results, dlq, status) uses:
// the configured one, or the embedded server's listen address.
func (c Config) clientURL() string {
	if c.NATSURL != "" {
		return c.NATSURL
	}
	scheme := "nats://"
	if c.EmbeddedTLSCert != "" {
		scheme = "tls://"
	}
	host, port, err := net.SplitHostPort(c.EmbeddedListen)
	if err != nil {
		return scheme + c.EmbeddedListen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1" // listening everywhere: this host reaches it on loopback
	}
	return scheme + net.JoinHostPort(host, port)
}

// hasCredentials reports whether NATS credentials are configured.
func (c Config) hasCredentials() bool {
	return c.NATSCreds != "" || c.NATSUser != "" || c.NATSToken != ""
}

func (c Config) natsOptions(log *zap.Logger) []nats.Option {
	opts := []nats.Option{nats.Name("hookworker"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.Timeout(5 * time.Second), nats.RetryOnFailedConnect(false)}
	if c.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(c.NATSCreds))
	}
	if c.NATSUser != "" {
		opts = append(opts, nats.UserInfo(c.NATSUser, c.NATSPassword))
	}
	if c.NATSToken != "" {
		opts = append(opts, nats.Token(c.NATSToken))
	}
	if c.NATSURL == "" && !c.hasCredentials() {
		// The embedded server of a `hookworker run` on this data directory
		// may have generated a token: use it (an open server ignores it).
		if b, err := os.ReadFile(c.embeddedTokenFile()); err == nil {
			opts = append(opts, nats.Token(strings.TrimSpace(string(b))))
		}
	}
	switch {
	case c.NATSTLSCA != "":
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	case c.NATSURL == "" && c.EmbeddedTLSCert != "":
		opts = append(opts, nats.RootCAs(c.EmbeddedTLSCert)) // a self-signed embedded certificate
	}
	if c.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	if log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
				if err == nil || nc.IsClosed() || nc.IsDraining() {
					return // our own close
				}
				log.Warn("disconnected from NATS; reconnecting", zap.Error(err))
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				log.Info("reconnected to NATS", zap.String("server", nc.ConnectedUrlRedacted()))
			}),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				log.Warn("NATS error", zap.Error(err))
			}))
	}
	return opts
}

// connect connects to the configured NATS, or starts the embedded server
// when embedded is true and no URL is configured.
func (c Config) connect(log *zap.Logger, embedded bool) (*broker, error) {
	b := &broker{}
	url := c.clientURL()
	opts := c.natsOptions(log)
	if c.NATSURL == "" && embedded {
		ec, err := c.embeddedConfig(log)
		if err != nil {
			return nil, configError{err}
		}
		ns, err := worker.StartEmbeddedServer(ec)
		if errors.Is(err, worker.ErrEmbeddedOpen) {
			return nil, configError{err}
		}
		if err != nil {
			return nil, fmt.Errorf("%w (set HOOKWORKER_EMBEDDED_LISTEN to another address, or HOOKWORKER_NATS_URL to use an existing server)", err)
		}
		b.embedded = ns
		// Our own connection goes in process: no TLS name to match, and it
		// authenticates like every other client.
		url = ""
		opts = append(opts, nats.InProcessServer(ns))
		if ec.Token != "" && !c.hasCredentials() {
			opts = append(opts, nats.Token(ec.Token))
		}
		if log != nil {
			log.Info("embedded JetStream server started", zap.String("listen", c.EmbeddedListen), zap.String("store", c.DataDir),
				zap.Bool("authentication", ec.Token != "" || ec.User != ""), zap.Bool("tls", ec.TLSCert != ""))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		b.close()
		if url == "" {
			url = "the embedded server"
		}
		hint := "HOOKWORKER_NATS_URL"
		if c.NATSURL == "" {
			hint = "HOOKWORKER_NATS_URL (empty: the embedded server of a running `hookworker run` on HOOKWORKER_EMBEDDED_LISTEN)"
		}
		if errors.Is(err, nats.ErrAuthorization) {
			return nil, configError{fmt.Errorf("NATS at %s refused the credentials (check HOOKWORKER_NATS_CREDS / _USER / _PASSWORD / _TOKEN)", redactURL(url))}
		}
		return nil, fmt.Errorf("cannot connect to NATS at %s: %w; check %s", redactURL(url), err, hint)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		b.close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	b.nc, b.js = nc, js
	return b, nil
}

// connectWaiting connects as connect does, but waits for an external NATS
// that is not reachable yet: it retries with backoff (logging each try and
// saying so on /readyz) until it connects or ctx ends. Refused
// credentials and bad settings are not retried.
func (c Config) connectWaiting(ctx context.Context, log *zap.Logger, ready *readiness) (*broker, error) {
	policy := backoff.WithContext(backoff.NewExponentialBackOff(backoff.WithInitialInterval(500*time.Millisecond),
		backoff.WithMaxInterval(15*time.Second), backoff.WithMaxElapsedTime(0)), ctx)
	attempt := 0
	var b *broker
	err := backoff.RetryNotify(func() error {
		attempt++
		var err error
		b, err = c.connect(log, true)
		var ce configError
		if errors.As(err, &ce) {
			return backoff.Permanent(err)
		}
		return err
	}, policy, func(err error, d time.Duration) {
		ready.starting(fmt.Sprintf("connecting to NATS (attempt %d failed: %v)", attempt, err))
		log.Warn("NATS not reachable; retrying", zap.Int("attempt", attempt), zap.Duration("in", d), zap.Error(err))
	})
	if err != nil {
		return nil, err
	}
	if attempt > 1 {
		log.Info("connected to NATS", zap.Int("attempts", attempt))
	}
	return b, nil
}

// embeddedConfig is the embedded server's configuration. Off loopback
// without configured credentials it generates a token once under the data
// directory and says where it is (never the token itself).
func (c Config) embeddedConfig(log *zap.Logger) (worker.EmbeddedConfig, error) {
	ec := worker.EmbeddedConfig{Dir: c.DataDir, Listen: c.EmbeddedListen, Token: c.NATSToken, User: c.NATSUser,
		Password: c.NATSPassword, TLSCert: c.EmbeddedTLSCert, TLSKey: c.EmbeddedTLSKey, TLSClientCA: c.EmbeddedTLSClientCA}
	if worker.IsLoopback(c.EmbeddedListen) || c.EmbeddedListen == "" {
		return ec, nil
	}
	if !c.hasCredentials() {
		tok, generated, err := c.embeddedToken()
		if err != nil {
			return ec, err
		}
		ec.Token = tok
		if log != nil {
			what := "kept"
			if generated {
				what = "generated"
			}
			log.Warn("the embedded NATS server listens off loopback and requires a token: "+what+" one in "+c.embeddedTokenFile()+
				"; give it to the WHMCS hooks ('token' in the hook config) and to hookworker on other hosts (HOOKWORKER_NATS_TOKEN)",
				zap.String("listen", c.EmbeddedListen), zap.String("token_file", c.embeddedTokenFile()))
		}
	}
	if ec.TLSCert == "" && log != nil {
		log.Warn("the embedded NATS server listens off loopback without TLS: credentials and events cross the network in clear text; set HOOKWORKER_EMBEDDED_TLS_CERT and _KEY",
			zap.String("listen", c.EmbeddedListen))
	}
	return ec, nil
}

// redactURL hides credentials embedded in a NATS URL.
func redactURL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if scheme := strings.Index(p, "://"); scheme >= 0 && scheme < at {
				parts[i] = p[:scheme+3] + "[redacted]" + p[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
