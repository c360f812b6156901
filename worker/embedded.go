package worker

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartEmbedded starts an in-process NATS server with JetStream, storing its
// data under dir, listening on listen ("host:port"; port 0 picks a free
// port; "" listens on no port at all, for in-process clients only). It is
// hookworker's default when no NATS URL is configured. The caller must call
// Shutdown.
func StartEmbedded(dir, listen string) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "hookworker-embedded", JetStream: true, StoreDir: filepath.Join(dir, "nats"),
		NoSigs: true, NoLog: true, MaxPayload: 1 << 20,
	}
	if listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("HOOKWORKER_EMBEDDED_LISTEN: %q is not host:port: %w", listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return nil, fmt.Errorf("HOOKWORKER_EMBEDDED_LISTEN: %q has no valid port", listen)
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
		return nil, fmt.Errorf("embedded nats-server on %s did not become ready (is the port in use?)", listen)
	}
	return ns, nil
}
