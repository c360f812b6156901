package ops

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// MinTokenLength is the shortest bearer token Validate accepts.
const MinTokenLength = 16

// Config configures the ops page. The environment variables named in
// Validate's errors are the ones `hookworker run` reads.
type Config struct {
	// Addr is the listen address, host:port (HOOKWORKER_OPS_ADDR), e.g.
	// 127.0.0.1:8080. Only ListenAndServe uses it.
	Addr string
	// Token is the bearer token (HOOKWORKER_OPS_TOKEN). A client sends it as
	// "Authorization: Bearer <token>", or a browser logs in once with it
	// (the login form, or GET any page with ?token=<token>) and then holds a
	// signed session cookie.
	Token string
	// User and Password enable HTTP basic auth (HOOKWORKER_OPS_USER,
	// HOOKWORKER_OPS_PASSWORD), as an alternative to or alongside Token.
	User, Password string
	// Banner, when set, is shown on top of every page (login included), for
	// example that the worker runs in a sandbox mode.
	Banner string
}

// hasCredentials reports whether any way to authenticate is configured.
func (c Config) hasCredentials() bool { return c.Token != "" || c.User != "" }

// Validate checks the configuration. It refuses an Addr off loopback
// (0.0.0.0, a LAN address, ":8080") without a token or basic-auth
// credentials, a short token, and a user without a password. Each error
// names the environment variable at fault and never contains a secret.
func (c Config) Validate() error {
	if c.Token != "" && len(c.Token) < MinTokenLength {
		return fmt.Errorf("HOOKWORKER_OPS_TOKEN: must be at least %d characters", MinTokenLength)
	}
	if c.Token != "" && strings.TrimSpace(c.Token) != c.Token {
		return errors.New("HOOKWORKER_OPS_TOKEN: must not start or end with white space")
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("HOOKWORKER_OPS_USER and HOOKWORKER_OPS_PASSWORD: set both or neither")
	}
	if strings.Contains(c.User, ":") {
		return errors.New("HOOKWORKER_OPS_USER: must not contain ':'")
	}
	if c.Addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return fmt.Errorf("HOOKWORKER_OPS_ADDR: %q is not host:port", c.Addr)
	}
	if !c.hasCredentials() && !isLoopbackHost(host) {
		return fmt.Errorf("HOOKWORKER_OPS_ADDR: %q is reachable off this host; set HOOKWORKER_OPS_TOKEN (or HOOKWORKER_OPS_USER and HOOKWORKER_OPS_PASSWORD), or listen on 127.0.0.1", c.Addr)
	}
	return nil
}

// isLoopbackHost reports whether host names only this machine: "localhost"
// or a loopback IP. An empty host (all interfaces) is not loopback.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
