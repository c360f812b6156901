package codeguard

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/hookworker/hookworker/providers"
)

// Name is the provider name the catalog uses for CodeGuard.
const Name = "codeguard"

// EnvPrefix is the environment prefix of Config (envconfig.Process("HOOKWORKER_CODEGUARD", &cfg)).
const EnvPrefix = "HOOKWORKER_CODEGUARD"

// DefaultURL is the production LogicBoxes API, used when
// HOOKWORKER_CODEGUARD_URL is empty; TestURL is the LogicBoxes test/demo
// API (test reseller accounts only).
const (
	DefaultURL = "https://httpapi.com/api"
	TestURL    = "https://test.httpapi.com/api"
)

// Config is the CodeGuard provider's configuration, read from the
// environment under HOOKWORKER_CODEGUARD_: _URL (default DefaultURL; the
// test API is TestURL), _AUTH_USERID (reseller id), _API_KEY, _TIMEOUT,
// _MAX_CONCURRENT, _RATE, _TLS_INSECURE_SKIP_VERIFY and _INVOICE_OPTION.
// The calling host's IP must be whitelisted in the reseller control panel.
type Config struct {
	providers.Settings
	// AuthUserID is the LogicBoxes reseller id (auth-userid).
	AuthUserID string `envconfig:"AUTH_USERID" desc:"LogicBoxes reseller id (auth-userid)"`
	// APIKey is the reseller API key (api-key). It is a secret: never
	// logged and never part of an error.
	APIKey string `envconfig:"API_KEY" desc:"LogicBoxes API key (secret)"`
	// InvoiceOption is sent with add, renew and modify unless a product's
	// invoice_option setting overrides it. NoInvoice leaves billing to WHMCS.
	InvoiceOption string `envconfig:"INVOICE_OPTION" default:"NoInvoice" desc:"NoInvoice, PayInvoice, KeepInvoice or OnlyAdd"`
}

// String never prints the API key.
func (c Config) String() string {
	return fmt.Sprintf("codeguard.Config{URL:%q AuthUserID:%q APIKey:[REDACTED] InvoiceOption:%q}", c.URL, c.AuthUserID, c.InvoiceOption)
}

// GoString never prints the API key.
func (c Config) GoString() string { return c.String() }

// Enabled reports whether any CodeGuard variable is set: an unconfigured
// provider is disabled, not an error.
func (c Config) Enabled() bool {
	return c.URL != "" || c.AuthUserID != "" || c.APIKey != ""
}

func (c Config) withDefaults() Config {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if c.InvoiceOption == "" {
		c.InvoiceOption = NoInvoice
	}
	return c
}

// Validate checks the configuration of an enabled provider (a Config with
// nothing set is valid and disabled). Errors name the environment variable,
// e.g. "HOOKWORKER_CODEGUARD_API_KEY: is required". The URL must be https
// (the api-key travels in every request) except for loopback test servers.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	c = c.withDefaults()
	const p = EnvPrefix + "_"
	if err := c.Settings.Validate(p); err != nil {
		return err
	}
	if u, _ := url.Parse(c.URL); u != nil && u.Scheme != "https" && !isLoopback(u.Hostname()) {
		return fmt.Errorf("%sURL: must be https (the api-key travels in every request); plain http is allowed only for a loopback test server", p)
	}
	switch {
	case strings.TrimSpace(c.AuthUserID) == "":
		return fmt.Errorf("%sAUTH_USERID: is required (the LogicBoxes reseller id)", p)
	case !positiveInt(c.AuthUserID):
		return fmt.Errorf("%sAUTH_USERID: must be the numeric reseller id, got %q", p, c.AuthUserID)
	case strings.TrimSpace(c.APIKey) == "":
		return fmt.Errorf("%sAPI_KEY: is required", p)
	case strings.ContainsAny(c.APIKey, " \t\r\n"):
		return fmt.Errorf("%sAPI_KEY: must not contain whitespace", p)
	case !validInvoiceOption(c.InvoiceOption):
		return fmt.Errorf("%sINVOICE_OPTION: must be one of %s, got %q", p, strings.Join(invoiceOptions, ", "), c.InvoiceOption)
	}
	return nil
}

var invoiceOptions = []string{NoInvoice, PayInvoice, KeepInvoice, OnlyAdd}

func validInvoiceOption(s string) bool {
	for _, o := range invoiceOptions {
		if s == o {
			return true
		}
	}
	return false
}

func positiveInt(s string) bool {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return err == nil && n > 0
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
