// Package comet provisions Comet Backup accounts through the Comet Server
// admin API (POST <URL>/api/v1/admin/<op>, form-encoded, admin credentials in
// the same form). It is the worker's counterpart of the official Comet WHMCS
// module, made safe to retry:
//
//   - The Comet username is chosen before the first attempt (Prepare), as
//     the official module chooses it (the product custom field "Username",
//     else the client's e-mail address; "<name>_NNNN" when taken), and the
//     plan records it, so every attempt and redelivery names the same user;
//     the chosen name is the outcome's Reference, which the WHMCS write-back
//     stores as the service username. A user is adopted only when it is
//     provably this service's: it carries this service's marker in its
//     AccountName (written right after add-user), or it appeared under a
//     name that was free when this signup chose it. No action ever touches
//     a user marked for another service (see names.go).
//   - Every step looks before it writes: add-user only when get-user-profile
//     finds no user, request-storage-vault only when the profile has no
//     Storage Vault, policies/set and set-user-profile-hash only when
//     something differs. Profile and policy writes are read-modify-write
//     with the server's hash (RequireHash / CheckPolicyHash) and keep every
//     JSON field this client does not know.
//   - Errors are classified once, where the reply is read: transport errors
//     and HTTP 408/425/429/5xx or a Comet Status of that kind are transient,
//     other 4xx are permanent. Comet answers errors in two styles and both
//     are handled: a non-2xx HTTP status, and HTTP 200 with a body of
//     {"Status": >=400, "Message": "..."}. The reply body (never the request,
//     which holds passwords) is attached with events.WithReply.
//
// A missing user is recognised from a reply that says so, or, when a Comet
// error reply is ambiguous, by looking the name up with list-users. The exact
// reply Comet sends for a missing user is not documented publicly (the
// official module relies on HTTP 200 + {"Status":500,"Message":...}:
// CometBackup/comet-whmcs-module 7171d7f, cometbackup.php and functions.php;
// the error shapes are those of CometBackup/comet-go-sdk v2.6.0 Request();
// summarised in ../shared/reference/providers.md §1.2 and §1.7).
//
// Catalog settings (events.Operation.Settings), checked by ValidateSettings:
//
//	policy_group_id         Comet PolicyID assigned to the user ("" clears it)
//	create_policy_group     yes|no: create or update that policy with the
//	                        restrictions of the official module (no password
//	                        change in the client, admin password reset, no
//	                        vault deletion or custom/requested vaults, Comet
//	                        vaults only)
//	storage_vault_template  StorageProvider id: request one Storage Vault
//	                        from it when the user has none
//	require_password_change yes|no: the user must change the password at
//	                        first login
//
// Configurable options (events.Operation.ConfigOpts), applied as the official
// module's applyRestrictions does: number_of_devices (0 or absent =
// unlimited), protected_item_quota_gb or _tb (absent = no quota),
// storage_vault_quota_gb or _tb (applied to every Storage Vault; absent =
// vault limits left alone). GB means 1024³ bytes, TB 1024⁴.
package comet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// Name is the provider name the catalog routes to this package.
const Name = "comet"

// EnvPrefix is the environment prefix Config is read with (envconfig prefix
// HOOKWORKER_COMET); Validate names variables with it.
const EnvPrefix = "HOOKWORKER_COMET_"

// Config is the Comet provider's configuration, read by envconfig with
// prefix HOOKWORKER_COMET (HOOKWORKER_COMET_URL, _USERNAME, _PASSWORD,
// _TIMEOUT, _MAX_CONCURRENT, _RATE, _TLS_INSECURE_SKIP_VERIFY). An empty URL
// disables the provider. Its String and GoString methods never show the
// password.
type Config struct {
	providers.Settings
	Username string `envconfig:"USERNAME" desc:"Comet Server admin username"`
	Password string `envconfig:"PASSWORD" desc:"Comet Server admin password (secret: never logged)"`
}

// Validate checks the configuration. A configuration without URL is valid
// (the provider is disabled). Every error names the environment variable at
// fault and never contains the password.
func (c Config) Validate() error {
	if err := c.Settings.Validate(EnvPrefix); err != nil {
		return err
	}
	if c.URL == "" {
		return nil
	}
	if strings.TrimSpace(c.Username) == "" {
		return fmt.Errorf("%sUSERNAME: required when %sURL is set", EnvPrefix, EnvPrefix)
	}
	if c.Password == "" {
		return fmt.Errorf("%sPASSWORD: required when %sURL is set", EnvPrefix, EnvPrefix)
	}
	return nil
}

// String describes c with the password redacted.
func (c Config) String() string {
	pw := ""
	if c.Password != "" {
		pw = "REDACTED"
	}
	return fmt.Sprintf("comet.Config{URL:%q Username:%q Password:%q Timeout:%s MaxConcurrent:%d Rate:%g TLSInsecure:%t}",
		c.URL, c.Username, pw, c.Timeout, c.MaxConcurrent, c.RatePerSecond, c.TLSInsecure)
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// PasswordSource gives the service password of an operation's service: the
// password WHMCS holds (or one derived from the signup key, see
// providers.DerivedPasswords). It must return the same password on every
// attempt of the same operation.
type PasswordSource interface {
	ServicePassword(ctx context.Context, op events.Operation) (string, error)
}

// Provider is the Comet Server client. It is safe for concurrent use; every
// API call passes through one providers.Limiter, so MaxConcurrent and Rate
// bound the load this worker puts on the Comet Server.
type Provider struct {
	cfg       Config
	base      string // URL without a trailing slash
	http      *http.Client
	limit     *providers.Limiter
	passwords PasswordSource
	log       *zap.Logger
	memory    *providers.MemoryReservations // username claims until UseReservations is called
	shared    atomic.Pointer[providers.Reservations]
}

// Defaults New applies to zero Settings fields (the envconfig defaults), so
// that a Config built in code needs only URL and credentials.
const (
	defaultTimeout       = 30 * time.Second
	defaultMaxConcurrent = 4
)

// New returns a client for the Comet Server cfg names. It fails when cfg is
// invalid, has no URL, or passwords is nil; log may be nil (no logging).
// Zero Timeout and MaxConcurrent take their envconfig defaults (30s, 4).
// TLS certificates are verified unless TLSInsecure is set. Redirects are
// never followed: the form carries the admin password, and a redirected
// POST would either lose it or send it elsewhere.
func New(cfg Config, passwords PasswordSource, log *zap.Logger) (*Provider, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = defaultMaxConcurrent
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("%sURL: required to use the comet provider", EnvPrefix)
	}
	if passwords == nil {
		return nil, errors.New("comet: a PasswordSource is required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	hc := cfg.HTTPClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Provider{
		cfg:       cfg,
		base:      strings.TrimRight(cfg.URL, "/"),
		http:      hc,
		limit:     providers.NewLimiter(cfg.MaxConcurrent, cfg.RatePerSecond),
		passwords: passwords,
		log:       log.With(zap.String("provider", Name)),
		memory:    providers.NewMemoryReservations(nameReservationTTL),
	}, nil
}

// Name returns Name.
func (p *Provider) Name() string { return Name }

// Check calls meta/version, as WHMCS's Test Connection does. It succeeds only
// when the server answers with its version; rejected credentials give a
// permanent error matching ErrUnauthorized that names the credential
// variables.
func (p *Provider) Check(ctx context.Context) error {
	var v map[string]any
	if err := p.call(ctx, "meta/version", "", nil, &v); err != nil {
		if errors.Is(err, ErrUnauthorized) {
			return fmt.Errorf("check %sUSERNAME and %sPASSWORD: %w", EnvPrefix, EnvPrefix, err)
		}
		return err
	}
	if _, ok := v["Version"]; !ok {
		return events.AsPermanent(fmt.Errorf("comet meta/version: the reply has no Version; is %sURL a Comet Server?", EnvPrefix))
	}
	p.log.Debug("comet server reachable", zap.Any("version", v["Version"]))
	return nil
}
