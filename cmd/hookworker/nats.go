package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

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
	return "nats://" + c.EmbeddedListen
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
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
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
	if c.NATSURL == "" && embedded {
		ns, err := worker.StartEmbedded(c.DataDir, c.EmbeddedListen)
		if err != nil {
			return nil, fmt.Errorf("%w (set HOOKWORKER_EMBEDDED_LISTEN to another address, or HOOKWORKER_NATS_URL to use an existing server)", err)
		}
		b.embedded = ns
		url = ns.ClientURL()
		if log != nil {
			log.Info("embedded JetStream server started", zap.String("listen", c.EmbeddedListen), zap.String("store", c.DataDir))
		}
	}
	nc, err := nats.Connect(url, c.natsOptions(log)...)
	if err != nil {
		b.close()
		hint := "HOOKWORKER_NATS_URL"
		if c.NATSURL == "" {
			hint = "HOOKWORKER_NATS_URL (empty: the embedded server of a running `hookworker run` on HOOKWORKER_EMBEDDED_LISTEN)"
		}
		if errors.Is(err, nats.ErrAuthorization) {
			return nil, fmt.Errorf("NATS at %s refused the credentials (check HOOKWORKER_NATS_CREDS / _USER / _PASSWORD / _TOKEN)", redactURL(url))
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
