package whmcs

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// EnvPrefix is the envconfig prefix of Config: every variable is
// HOOKWORKER_WHMCS_<NAME>, e.g. HOOKWORKER_WHMCS_API_URL.
const EnvPrefix = "HOOKWORKER_WHMCS"

// Config is the WHMCS External API connection and the write-back settings,
// read with envconfig.Process(EnvPrefix, &cfg). An empty APIURL turns the
// write-back (and the WHMCS password source) off.
//
// The Pass Key field is configured by id (PassKeyFieldID): the WHMCS API has
// no call that lists client custom field definitions or returns a field's
// name with its value (GetClientsDetails and GetClientsProducts give ids
// only), so the id cannot be looked up by the name 'Pass Key'. Find it in
// Setup → Custom Client Fields (the id in the edit link) or in
// tblcustomfields.
type Config struct {
	// APIURL is https://<whmcs>/includes/api.php. Empty: write-back off.
	APIURL string `envconfig:"API_URL" desc:"WHMCS External API URL, https://<whmcs>/includes/api.php; empty disables the write-back"`
	// Identifier is the API credential identifier (System Settings → API
	// Credentials).
	Identifier string `envconfig:"IDENTIFIER" desc:"WHMCS API credential identifier"`
	// Secret is the API credential secret. It is never logged, printed or
	// put into an error.
	Secret string `envconfig:"SECRET" desc:"WHMCS API credential secret (never logged)"`
	// AccessKey is the optional $api_access_key of configuration.php, sent
	// as accesskey so that the worker need not be on the API IP allowlist.
	AccessKey string `envconfig:"ACCESS_KEY" desc:"optional WHMCS API access key ($api_access_key), instead of IP allowlisting (never logged)"`
	// Timeout bounds one API call.
	Timeout time.Duration `envconfig:"TIMEOUT" default:"15s" desc:"timeout of one WHMCS API call"`
	// TLSInsecure skips TLS certificate verification (never in production).
	TLSInsecure bool `envconfig:"TLS_INSECURE_SKIP_VERIFY" default:"false" desc:"skip TLS certificate verification of the WHMCS URL (never in production)"`
	// PassKeyFieldID is the id of the client custom field named 'Pass Key'
	// (0: not configured; a pass key a provider returns is then not stored
	// and the admin gets a sticky note saying so).
	PassKeyFieldID int `envconfig:"PASSKEY_FIELD_ID" desc:"id of the WHMCS client custom field 'Pass Key' (Setup > Custom Client Fields); 0 = not stored"`
	// WritebackConsumer is the durable consumer name on the results stream.
	WritebackConsumer string `envconfig:"WRITEBACK_CONSUMER" default:"hookworker-writeback" desc:"durable JetStream consumer of the write-back on the results stream"`
}

// PassKeyField is the name of the WHMCS client custom field that StoreGrid
// style providers return in events.ResultData.WriteBack.
const PassKeyField = "Pass Key"

// Enabled reports whether the write-back is configured (APIURL is set).
func (c Config) Enabled() bool { return strings.TrimSpace(c.APIURL) != "" }

// Validate checks the configuration. A disabled configuration is valid.
// Errors name the environment variable; the secret and the access key are
// never part of an error.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	p := EnvPrefix + "_"
	u, err := url.Parse(strings.TrimSpace(c.APIURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%sAPI_URL: %q is not an http(s) URL (want https://<whmcs>/includes/api.php)", p, redactURL(c.APIURL))
	}
	if u.User != nil {
		return fmt.Errorf("%sAPI_URL: must not carry credentials; use %sIDENTIFIER and %sSECRET", p, p, p)
	}
	if u.RawQuery != "" {
		return fmt.Errorf("%sAPI_URL: must not carry a query string", p)
	}
	if !strings.HasSuffix(u.Path, "/api.php") {
		return fmt.Errorf("%sAPI_URL: %q does not end in /includes/api.php", p, redactURL(c.APIURL))
	}
	if strings.TrimSpace(c.Identifier) == "" {
		return fmt.Errorf("%sIDENTIFIER: is required when %sAPI_URL is set", p, p)
	}
	if c.Secret == "" {
		return fmt.Errorf("%sSECRET: is required when %sAPI_URL is set", p, p)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("%sTIMEOUT: must be positive, got %s", p, c.Timeout)
	}
	if c.PassKeyFieldID < 0 {
		return fmt.Errorf("%sPASSKEY_FIELD_ID: must be a WHMCS custom field id (or 0), got %d", p, c.PassKeyFieldID)
	}
	if strings.TrimSpace(c.WritebackConsumer) == "" || strings.ContainsAny(c.WritebackConsumer, " .*>\t\r\n") {
		return fmt.Errorf("%sWRITEBACK_CONSUMER: %q is not a valid consumer name", p, c.WritebackConsumer)
	}
	return nil
}

// String describes the configuration for logs, without the secret or the
// access key.
func (c Config) String() string {
	return fmt.Sprintf("whmcs{api_url=%s identifier=%s secret=%s access_key=%s timeout=%s tls_insecure=%t passkey_field_id=%d consumer=%s}",
		redactURL(c.APIURL), c.Identifier, redacted(c.Secret), redacted(c.AccessKey), c.Timeout, c.TLSInsecure, c.PassKeyFieldID, c.WritebackConsumer)
}

// GoString is String, so that %#v does not print the secret either.
func (c Config) GoString() string { return c.String() }

func redacted(s string) string {
	if s == "" {
		return "unset"
	}
	return "REDACTED"
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}
