package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kelseyhightower/envconfig"

	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/storegrid"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/whmcs"
)

// envPrefix starts every variable hookworker reads.
const envPrefix = "HOOKWORKER"

// Config is everything hookworker reads from the environment.
type Config struct {
	NATSURL      string `envconfig:"NATS_URL" desc:"NATS server URL(s), comma-separated; empty runs an embedded JetStream server"`
	NATSCreds    string `envconfig:"NATS_CREDS" desc:"NATS credentials file (JWT + NKey)"`
	NATSUser     string `envconfig:"NATS_USER" desc:"NATS user name"`
	NATSPassword string `envconfig:"NATS_PASSWORD" desc:"NATS password (secret)"`
	NATSToken    string `envconfig:"NATS_TOKEN" desc:"NATS token (secret)"`
	NATSTLSCA    string `envconfig:"NATS_TLS_CA" desc:"CA file to verify the NATS server's TLS certificate"`
	NATSTLSCert  string `envconfig:"NATS_TLS_CERT" desc:"client certificate file for NATS mutual TLS"`
	NATSTLSKey   string `envconfig:"NATS_TLS_KEY" desc:"client key file for NATS mutual TLS"`

	EmbeddedListen      string `envconfig:"EMBEDDED_LISTEN" default:"127.0.0.1:4222" desc:"where the embedded NATS server listens (for the WHMCS hooks and hookworker emit); off loopback it requires HOOKWORKER_NATS_TOKEN or _USER/_PASSWORD, or a token generated once under HOOKWORKER_DATA_DIR"`
	EmbeddedTLSCert     string `envconfig:"EMBEDDED_TLS_CERT" desc:"certificate file of the embedded NATS server (TLS for its clients)"`
	EmbeddedTLSKey      string `envconfig:"EMBEDDED_TLS_KEY" desc:"key file of the embedded NATS server's certificate"`
	EmbeddedTLSClientCA string `envconfig:"EMBEDDED_TLS_CLIENT_CA" desc:"CA file: the embedded NATS server then requires client certificates signed by it"`
	DataDir             string `envconfig:"DATA_DIR" default:".hookworker" desc:"directory for the embedded server's JetStream store and generated secrets"`
	Catalog             string `envconfig:"CATALOG" desc:"product catalog YAML file; empty uses the built-in sandbox catalog"`
	Sandbox             string `envconfig:"SANDBOX" desc:"provider when no catalog is given: memory (in-process accounts) or fakes (in-process fake Comet, CodeGuard and StoreGrid servers); empty means memory, allowed only with the embedded server and no provider or WHMCS URL"`
	PasswordSecret      string `envconfig:"PASSWORD_SECRET" desc:"secret (16+ bytes) to derive service passwords from when the WHMCS API is not configured; empty: generated once under HOOKWORKER_DATA_DIR"`

	MetricsAddr string `envconfig:"METRICS_ADDR" default:"127.0.0.1:9464" desc:"address serving /metrics, /healthz and /readyz (empty = off)"`
	OpsAddr     string `envconfig:"OPS_ADDR" default:"127.0.0.1:8080" desc:"address of the ops page (empty = off)"`
	OpsToken    string `envconfig:"OPS_TOKEN" desc:"bearer token for the ops page (required off loopback unless OPS_USER is set; secret)"`
	OpsUser     string `envconfig:"OPS_USER" desc:"basic-auth user for the ops page"`
	OpsPassword string `envconfig:"OPS_PASSWORD" desc:"basic-auth password for the ops page (secret)"`

	MemoryLimit string `envconfig:"MEMORY_LIMIT" default:"auto" desc:"soft memory limit of hookworker run's Go runtime: auto (with HOOKWORKER_NATS_URL 28MiB + 16KiB per event in hand, raised while the live heap needs more; none with the embedded server), off, or a size (64MiB, 1GiB); GOMEMLIMIT, when set, always wins"`

	LogLevel  string `envconfig:"LOG_LEVEL" default:"info" desc:"debug, info, warn or error"`
	LogFormat string `envconfig:"LOG_FORMAT" default:"console" desc:"console or json"`

	worker.Options

	Comet     comet.Config     `envconfig:"COMET"`
	CodeGuard codeguard.Config `envconfig:"CODEGUARD"`
	StoreGrid storegrid.Config `envconfig:"STOREGRID"`
	WHMCS     whmcs.Config     `envconfig:"WHMCS"`
}

// configError is a bad setting: hookworker exits with status 2.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// loadConfig reads and validates the environment. Every error names the
// variable at fault and never contains a secret's value.
func loadConfig() (Config, error) {
	var c Config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return c, configError{fmt.Errorf("%s: cannot read %q as %s", pe.KeyName, redactValue(pe.KeyName, pe.Value), describeType(pe.TypeName, pe.Value))}
		}
		return c, configError{err}
	}
	if err := c.validate(); err != nil {
		return c, configError{err}
	}
	return c, nil
}

// describeType names what a setting wants in words, not as a Go type,
// with a hint for a duration given as a bare number.
func describeType(goType, value string) string {
	switch goType {
	case "time.Duration", "Duration":
		if _, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
			return fmt.Sprintf("a duration: give a unit, e.g. %q", strings.TrimSpace(value)+"s")
		}
		return "a duration (e.g. 30s, 5m, 1h30m)"
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "a whole number"
	case "float64", "float32":
		return "a number"
	case "bool":
		return "true or false"
	}
	return goType
}

func redactValue(key, v string) string {
	for _, s := range []string{"PASSWORD", "SECRET", "TOKEN", "KEY"} {
		if strings.Contains(key, s) {
			return "[redacted]"
		}
	}
	return v
}

func (c Config) validate() error {
	for _, a := range []struct{ name, v string }{{"HOOKWORKER_METRICS_ADDR", c.MetricsAddr}, {"HOOKWORKER_OPS_ADDR", c.OpsAddr}, {"HOOKWORKER_EMBEDDED_LISTEN", c.EmbeddedListen}} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			return fmt.Errorf("%s: %q is not host:port", a.name, a.v)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("HOOKWORKER_LOG_LEVEL: want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.LogFormat != "console" && c.LogFormat != "json" {
		return fmt.Errorf("HOOKWORKER_LOG_FORMAT: want console or json, got %q", c.LogFormat)
	}
	if _, _, err := c.memoryLimit(""); err != nil {
		return err
	}
	if c.Sandbox != "" && c.Sandbox != "memory" && c.Sandbox != "fakes" {
		return fmt.Errorf("HOOKWORKER_SANDBOX: want memory or fakes, got %q", c.Sandbox)
	}
	if c.PasswordSecret != "" && len(c.PasswordSecret) < 16 {
		return errors.New("HOOKWORKER_PASSWORD_SECRET: must be at least 16 bytes")
	}
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		return errors.New("HOOKWORKER_NATS_TLS_CERT and HOOKWORKER_NATS_TLS_KEY: set both or neither")
	}
	if (c.EmbeddedTLSCert == "") != (c.EmbeddedTLSKey == "") {
		return errors.New("HOOKWORKER_EMBEDDED_TLS_CERT and HOOKWORKER_EMBEDDED_TLS_KEY: set both or neither")
	}
	if c.EmbeddedTLSClientCA != "" && c.EmbeddedTLSCert == "" {
		return errors.New("HOOKWORKER_EMBEDDED_TLS_CLIENT_CA: needs HOOKWORKER_EMBEDDED_TLS_CERT and HOOKWORKER_EMBEDDED_TLS_KEY")
	}
	if c.NATSURL == "" && c.NATSCreds != "" {
		return errors.New("HOOKWORKER_NATS_CREDS: the embedded server (HOOKWORKER_NATS_URL empty) takes HOOKWORKER_NATS_TOKEN or HOOKWORKER_NATS_USER/_PASSWORD; a credentials file needs a nats-server with an operator")
	}
	if c.NATSUser != "" && c.NATSPassword == "" {
		return errors.New("HOOKWORKER_NATS_PASSWORD: required with HOOKWORKER_NATS_USER")
	}
	if c.NATSUser != "" && c.NATSToken != "" {
		return errors.New("HOOKWORKER_NATS_TOKEN: set either a token or HOOKWORKER_NATS_USER, not both")
	}
	if c.OpsAddr != "" {
		if err := c.opsConfig().Validate(); err != nil {
			return err
		}
	}
	if err := c.Options.Validate(); err != nil {
		return err
	}
	if err := c.Comet.Validate(); err != nil {
		return err
	}
	if c.CodeGuard.Enabled() {
		if err := c.CodeGuard.Validate(); err != nil {
			return err
		}
	}
	if err := c.StoreGrid.Validate(); err != nil {
		return err
	}
	return c.WHMCS.Validate()
}

// sandboxMode is the sandbox `hookworker run` uses: "" with a catalog,
// else memory or fakes.
func (c Config) sandboxMode() string {
	switch {
	case c.Catalog != "":
		return ""
	case c.Sandbox == "fakes":
		return "fakes"
	}
	return "memory"
}

// requireCatalog refuses the implicit sandbox where real events may flow:
// on an external NATS, or with a provider or the WHMCS write-back
// configured. Choosing the sandbox (HOOKWORKER_SANDBOX) is always allowed.
func (c Config) requireCatalog() error {
	if c.Catalog != "" || c.Sandbox != "" {
		return nil
	}
	var why string
	switch {
	case c.NATSURL != "":
		why = "HOOKWORKER_NATS_URL is set (an external NATS carries real events)"
	case c.Comet.URL != "":
		why = "HOOKWORKER_COMET_URL is set"
	case c.CodeGuard.Enabled():
		why = "CodeGuard is configured (HOOKWORKER_CODEGUARD_*)"
	case c.StoreGrid.URL != "":
		why = "HOOKWORKER_STOREGRID_URL is set"
	case c.WHMCS.Enabled():
		why = "the WHMCS write-back is configured (HOOKWORKER_WHMCS_API_URL)"
	default:
		return nil
	}
	return fmt.Errorf("HOOKWORKER_CATALOG: required because %s: without a catalog every event would be provisioned at the sandbox, never at a real provider. Set HOOKWORKER_CATALOG to your catalog file, or HOOKWORKER_SANDBOX=memory (or fakes) to choose the sandbox explicitly", why)
}

// embeddedTokenFile is where `hookworker run` keeps the token it generated
// for an embedded server listening off loopback without configured
// credentials; client commands on the same data directory read it.
func (c Config) embeddedTokenFile() string { return filepath.Join(c.DataDir, "nats.token") }

// embeddedToken returns the token of the embedded server's generated
// credentials: the one kept in embeddedTokenFile, generated (0600) when
// there is none yet.
func (c Config) embeddedToken() (token string, generated bool, err error) {
	path := c.embeddedTokenFile()
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), false, nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", false, fmt.Errorf("HOOKWORKER_DATA_DIR: %w", err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	s := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("HOOKWORKER_DATA_DIR: cannot keep the generated NATS token: %w", err)
	}
	return s, true, nil
}

// passwordSecret returns the configured secret, or one generated once and
// kept under the data directory.
func (c Config) passwordSecret() (string, error) {
	if c.PasswordSecret != "" {
		return c.PasswordSecret, nil
	}
	path := filepath.Join(c.DataDir, "password.secret")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) >= 16 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("HOOKWORKER_DATA_DIR: %w", err)
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := hex.EncodeToString(b)
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("HOOKWORKER_DATA_DIR: cannot keep the generated password secret: %w", err)
	}
	return s, nil
}
