// Package storegrid provisions reseller and customer accounts on a
// StoreGrid-style backup server (Vembu StoreGrid Service Provider edition),
// doing what the server's own WHMCS module does: "Signup Reseller" or
// "Signup Customer", then activate / de-activate.
//
// # The wire format is assumed
//
// The server's HTTP API is not publicly documented. Every request, parameter
// name and reply this package relies on is defined, and stated plainly, in
// one file: internal/sgwire/wire.go. In short: form-encoded POSTs to the web
// console (HOOKWORKER_STOREGRID_URL, e.g. https://backup.example.com:6061)
// at /cgi-bin/sgwhmcs.cgi with action=<name> and the console's admin
// username and password in the body; JSON replies {"status":"ok","data":{…}}
// or {"status":"error","code":…,"message":…}. Correct that file (and the
// literals pinned by wire_test.go) once the real module's requests are known.
//
// # Accounts
//
// The catalog action is events.SignupReseller (WHMCS ClientAdd: one
// reseller per WHMCS client, op.ServiceID 0) or events.SignupCustomer
// (AcceptOrder: one customer per service, created under the product's
// reseller_name). The account name is providers.AccountName(op, "hwr", 16)
// for resellers and providers.AccountName(op, "hwc", 16) for customers (the
// WHMCS service username when the event carries one). Prepare returns it as
// the plan, so every attempt, retry and later lifecycle event names the
// same account; signup reads the account first and finding it is success
// (AlreadyDone), so a retry never creates a second one.
//
// # Actions
//
//   - SignupReseller / SignupCustomer: get, then add with every module
//     setting. With retrieve_pass_key=yes the customer's pass key is read
//     (also when the account was found already made, so a retry still
//     delivers it) and returned in Outcome.WriteBack["Pass Key"], the WHMCS
//     custom client field the module uses. It is never logged nor put in an
//     error.
//   - Suspend and Terminate de-activate the account; Unsuspend activates it
//     (as the WHMCS module does; terminate deletes nothing, so no backup
//     data is lost). An account already in the target state is success with
//     AlreadyDone.
//   - Renew changes nothing: billing lives in WHMCS. It only reads the
//     account, so a renewal of an account missing at the server fails
//     (permanent) instead of passing silently; it does not re-activate a
//     de-activated account (WHMCS sends Unsuspend for that).
//   - ChangePackage re-applies the product's package settings (storage
//     allotted, auto authorization, MCAL, bandwidth throttling, consolidated
//     report) with an edit request, unless the account already has them
//     (AlreadyDone). Activation status, storage location (moving backup data
//     is not a package change) and send_mail are signup-only.
//   - ChangePassword is unsupported (permanent ErrUnsupported): the module
//     sets no account password.
//
// A lifecycle action on an account the server does not hold is a permanent
// ErrNotFound.
//
// # Settings
//
// Catalog settings (op.Settings), one per module field, checked by
// ValidateSettings; every error names the field:
//
//	reseller_name             Signup Customer: required. Signup Reseller: refused (the module
//	                          says "not applicable"; a value there is a misconfigured product)
//	activation_status         yes|no (default yes)
//	auto_authorization        yes|no (default yes)
//	storage_allotted          bytes, positive whole number, required
//	storage_location          optional; empty = the server assigns one
//	consolidated_report       yes|no (default no); Signup Customer only (yes refused for resellers)
//	consolidated_report_email comma-separated addresses, each checked; required when
//	                          consolidated_report=yes; refused for resellers
//	auto_mcal                 yes|no (default yes)
//	allot_mcal                positive whole number; required when auto_mcal=no
//	bandwidth_throttling      global|new (default global)
//	throttle_enabled          yes|no (default no); yes only with bandwidth_throttling=new
//	throttle_mode             always|scheduled (default always)
//	throttle_from, _till      HHMM, hours 00-23, minutes 00-59 (0130, 1740; not 2400, 0060);
//	                          required when throttling is enabled and scheduled; must differ
//	restricted_rate           bytes, more than 1024 and less than 9999 GB (GB = 1024³);
//	                          required when throttle_enabled=yes
//	send_mail                 yes|no (default no)
//	retrieve_pass_key         yes|no (default no); Signup Customer only (yes refused for resellers)
//
// yes/no and the enumerations are case-insensitive. Unknown keys are
// refused. A dependent setting whose switch is off (allot_mcal with
// auto_mcal=yes, the throttle details with throttling off, report addresses
// with consolidated_report=no) is checked but not sent.
//
// # Configuration
//
// Environment variables, prefix HOOKWORKER_STOREGRID (see Config):
// _URL, _USERNAME, _PASSWORD, _TIMEOUT, _MAX_CONCURRENT, _RATE,
// _TLS_INSECURE_SKIP_VERIFY. TLS certificates are verified unless the last
// is set.
package storegrid

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/storegrid/internal/sgwire"
)

// Name is the provider name the catalog uses.
const Name = "storegrid"

// EnvPrefix is the envconfig prefix of Config: HOOKWORKER_STOREGRID_URL,
// HOOKWORKER_STOREGRID_USERNAME, ...
const EnvPrefix = "HOOKWORKER_STOREGRID"

// PassKeyField is the WHMCS custom client field the customer pass key is
// written back to (Outcome.WriteBack key).
const PassKeyField = "Pass Key"

// Account name prefixes and length (providers.AccountName).
const (
	resellerPrefix = "hwr"
	customerPrefix = "hwc"
	nameLen        = 16
)

// Plan keys Prepare records.
const (
	planAccount  = "account"
	planKind     = "kind"
	planReseller = "reseller"
)

// Config is the provider's configuration, read with
// envconfig.Process(EnvPrefix, &cfg). URL is the web console's
// protocol://host:port; Username and Password are the console's admin
// login.
type Config struct {
	providers.Settings
	Username string `envconfig:"USERNAME" desc:"web console admin user name"`
	Password string `envconfig:"PASSWORD" desc:"web console admin password"`
}

// Validate checks the configuration; each error names the environment
// variable. An empty URL (provider disabled) is valid.
func (c Config) Validate() error {
	if err := c.Settings.Validate(EnvPrefix + "_"); err != nil {
		return err
	}
	if c.URL == "" {
		return nil
	}
	if u, _ := url.Parse(c.URL); u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%s_URL: must be protocol://host:port of the web console, without a query or fragment", EnvPrefix)
	}
	if strings.TrimSpace(c.Username) == "" {
		return fmt.Errorf("%s_USERNAME: is required when %s_URL is set (web console admin user name)", EnvPrefix, EnvPrefix)
	}
	if c.Password == "" {
		return fmt.Errorf("%s_PASSWORD: is required when %s_URL is set (web console admin password)", EnvPrefix, EnvPrefix)
	}
	return nil
}

// Provider is the StoreGrid client. It is safe for concurrent use.
type Provider struct {
	cfg      Config
	endpoint string
	http     *http.Client
	limiter  *providers.Limiter
	log      *zap.Logger
}

// New checks cfg and returns a provider; cfg.URL is required. log may be
// nil.
func New(cfg Config, log *zap.Logger) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, fmt.Errorf("%s_URL: is required", EnvPrefix)
	}
	u, _ := url.Parse(cfg.URL) // checked by Validate
	u.Path = strings.TrimRight(u.Path, "/") + sgwire.Path
	u.RawPath = ""
	if log == nil {
		log = zap.NewNop()
	}
	return &Provider{
		cfg:      cfg,
		endpoint: u.String(),
		http:     cfg.HTTPClient(),
		limiter:  providers.NewLimiter(cfg.MaxConcurrent, cfg.RatePerSecond),
		log:      log.With(zap.String("provider", Name)),
	}, nil
}

// Name returns "storegrid".
func (p *Provider) Name() string { return Name }

// target is the account an operation acts on.
type target struct {
	kind     sgwire.Kind
	name     string
	reseller string // the customer's reseller; "" for a reseller
}

func (t target) outcome() events.Outcome {
	out := events.Outcome{Reference: t.name, Details: map[string]string{"kind": string(t.kind)}}
	if t.kind == sgwire.Customer {
		out.Details["reseller"] = t.reseller
	}
	return out
}

// planTarget decides the account from the operation alone: a reseller for
// SignupReseller and for lifecycle events of a client (no service), a
// customer otherwise — the same split providers.AccountName makes.
func planTarget(op events.Operation) (target, error) {
	if !op.Action.Valid() {
		return target{}, events.Permanentf("storegrid: unknown action %q", op.Action)
	}
	if op.Action == events.SignupReseller || (op.Action != events.SignupCustomer && op.ServiceID == 0 && op.ClientID > 0) {
		if op.ClientID <= 0 && op.Username == "" {
			return target{}, events.Permanentf("storegrid %s: the operation names no WHMCS client", op.Action)
		}
		return target{kind: sgwire.Reseller, name: providers.AccountName(op, resellerPrefix, nameLen)}, nil
	}
	if op.ServiceID <= 0 && op.Username == "" {
		return target{}, events.Permanentf("storegrid %s: the operation names no WHMCS service", op.Action)
	}
	t := target{kind: sgwire.Customer, name: providers.AccountName(op, customerPrefix, nameLen),
		reseller: strings.TrimSpace(op.Settings[SettingResellerName])}
	if t.reseller == "" {
		return target{}, events.AsPermanent(fmt.Errorf("storegrid %s: customer %q: %w", op.Action, t.name,
			&SettingError{Field: SettingResellerName, Reason: "is required: the reseller the customer is under"}))
	}
	return t, nil
}

// targetOf returns the account recorded in op.Plan, or decides it when there
// is no plan.
func targetOf(op events.Operation) (target, error) {
	name, kind := op.Plan[planAccount], sgwire.Kind(op.Plan[planKind])
	if name == "" {
		return planTarget(op)
	}
	switch kind {
	case sgwire.Reseller:
		return target{kind: kind, name: name}, nil
	case sgwire.Customer:
		if r := op.Plan[planReseller]; r != "" {
			return target{kind: kind, name: name, reseller: r}, nil
		}
	}
	return target{}, events.Permanentf("storegrid %s: plan %v does not name a reseller or a customer with its reseller", op.Action, op.Plan)
}

// product parses the settings op's action needs for the account kind.
func productFor(op events.Operation, t target) (product, error) {
	sc := scopeReseller
	if t.kind == sgwire.Customer {
		sc = scopeCustomer
	}
	p, err := parseSettings(sc, op.Settings)
	if err != nil {
		return product{}, events.AsPermanent(fmt.Errorf("storegrid %s: product %d: %w", op.Action, op.ProductID, err))
	}
	if t.kind == sgwire.Customer {
		p.reseller = t.reseller
	}
	return p, nil
}

// Prepare names the account (the plan: account, kind, and a customer's
// reseller) and, for signups and package changes, checks the product's
// settings: a wrong setting fails here, permanently, before any call.
func (p *Provider) Prepare(_ context.Context, op events.Operation) (map[string]string, error) {
	t, err := planTarget(op)
	if err != nil {
		return nil, err
	}
	if op.Action.IsSignup() || op.Action == events.ChangePackage {
		if _, err := productFor(op, t); err != nil {
			return nil, err
		}
	}
	plan := map[string]string{planAccount: t.name, planKind: string(t.kind)}
	if t.kind == sgwire.Customer {
		plan[planReseller] = t.reseller
	}
	return plan, nil
}

func (p *Provider) opLog(op events.Operation, t target) *zap.Logger {
	fields := []zap.Field{zap.String("action", string(op.Action)), zap.String("account", t.name),
		zap.String("kind", string(t.kind)), zap.String("operation", op.Key)}
	if t.reseller != "" {
		fields = append(fields, zap.String("reseller", t.reseller))
	}
	return p.log.With(fields...)
}

// Lookup reports whether op's effect is already in place: the account
// exists (signup; with its pass key when the product retrieves it), is in
// the target state (suspend, unsuspend, terminate) or has the product's
// package (change package). Renew and ChangePassword are never found.
func (p *Provider) Lookup(ctx context.Context, op events.Operation) (events.Outcome, bool, error) {
	t, err := targetOf(op)
	if err != nil {
		return events.Outcome{}, false, err
	}
	switch op.Action {
	case events.Renew, events.ChangePassword:
		return events.Outcome{}, false, nil
	}
	var prod product
	if op.Action.IsSignup() || op.Action == events.ChangePackage {
		if prod, err = productFor(op, t); err != nil {
			return events.Outcome{}, false, err
		}
	}
	acct, found, err := p.get(ctx, t)
	if err != nil || !found {
		return events.Outcome{}, false, err
	}
	out := t.outcome()
	out.AlreadyDone = true
	switch op.Action {
	case events.SignupReseller, events.SignupCustomer:
		if err := p.addPassKey(ctx, t, prod, &out); err != nil {
			return events.Outcome{}, false, err
		}
		return out, true, nil
	case events.Suspend, events.Terminate:
		return out, !acct.active, nil
	case events.Unsuspend:
		return out, acct.active, nil
	case events.ChangePackage:
		return out, len(sgwire.Differs(packageForm(t, prod), acct.fields)) == 0, nil
	}
	return events.Outcome{}, false, nil
}

// Apply performs op. It is safe to call again after any failure: it reads
// the account first and never creates a second one.
func (p *Provider) Apply(ctx context.Context, op events.Operation) (events.Outcome, error) {
	t, err := targetOf(op)
	if err != nil {
		return events.Outcome{}, err
	}
	log := p.opLog(op, t)
	switch op.Action {
	case events.SignupReseller, events.SignupCustomer:
		return p.signup(ctx, op, t, log)
	case events.Suspend, events.Terminate:
		return p.setActive(ctx, op, t, false, log)
	case events.Unsuspend:
		return p.setActive(ctx, op, t, true, log)
	case events.Renew:
		return p.renew(ctx, op, t, log)
	case events.ChangePackage:
		return p.changePackage(ctx, op, t, log)
	case events.ChangePassword:
		return events.Outcome{}, events.AsPermanent(fmt.Errorf("storegrid %s %s %q: %w (the module sets no account password)",
			op.Action, t.kind, t.name, ErrUnsupported))
	}
	return events.Outcome{}, events.AsPermanent(fmt.Errorf("storegrid %s: %w", op.Action, ErrUnsupported))
}

func (p *Provider) signup(ctx context.Context, op events.Operation, t target, log *zap.Logger) (events.Outcome, error) {
	prod, err := productFor(op, t)
	if err != nil {
		return events.Outcome{}, err
	}
	_, found, err := p.get(ctx, t)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("storegrid %s: %w", op.Action, err)
	}
	out := t.outcome()
	if found {
		out.AlreadyDone = true
		log.Info("storegrid account already exists")
	} else {
		s := prod.signup
		if c := op.Client; c != nil {
			s.Contact = sgwire.Contact{Email: c.Email, FirstName: c.FirstName, LastName: c.LastName, CompanyName: c.CompanyName}
		}
		form := p.form(t, sgwire.Add)
		s.Encode(form, t.kind)
		_, err := p.call(ctx, form, false)
		switch {
		case errors.Is(err, ErrAlreadyExists):
			// A concurrent or earlier attempt made it: the name is ours.
			out.AlreadyDone = true
			log.Info("storegrid account already exists")
		case err != nil:
			return events.Outcome{}, fmt.Errorf("storegrid %s: add %s %q: %w", op.Action, t.kind, t.name, err)
		default:
			log.Info("storegrid account created", zap.Bool("active", s.Active))
		}
	}
	if err := p.addPassKey(ctx, t, prod, &out); err != nil {
		return events.Outcome{}, fmt.Errorf("storegrid %s: %w", op.Action, err)
	}
	return out, nil
}

// addPassKey puts the customer's pass key in out.WriteBack when the product
// retrieves it.
func (p *Provider) addPassKey(ctx context.Context, t target, prod product, out *events.Outcome) error {
	if !prod.passKey || t.kind != sgwire.Customer {
		return nil
	}
	key, err := p.passKey(ctx, t)
	if err != nil {
		return err
	}
	out.WriteBack = map[string]string{PassKeyField: key}
	return nil
}

func (p *Provider) setActive(ctx context.Context, op events.Operation, t target, active bool, log *zap.Logger) (events.Outcome, error) {
	acct, found, err := p.get(ctx, t)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("storegrid %s: %w", op.Action, err)
	}
	if !found {
		return events.Outcome{}, events.AsPermanent(fmt.Errorf("storegrid %s %s %q: %w", op.Action, t.kind, t.name, ErrNotFound))
	}
	out := t.outcome()
	out.Details["active"] = fmt.Sprint(active)
	if acct.active == active {
		out.AlreadyDone = true
		return out, nil
	}
	verb := sgwire.Deactivate
	if active {
		verb = sgwire.Activate
	}
	if _, err := p.call(ctx, p.form(t, verb), false); err != nil {
		return events.Outcome{}, fmt.Errorf("storegrid %s: %s %s %q: %w", op.Action, verb, t.kind, t.name, err)
	}
	log.Info("storegrid account "+string(verb)+"d", zap.Bool("active", active))
	return out, nil
}

func (p *Provider) renew(ctx context.Context, op events.Operation, t target, log *zap.Logger) (events.Outcome, error) {
	acct, found, err := p.get(ctx, t)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("storegrid %s: %w", op.Action, err)
	}
	if !found {
		return events.Outcome{}, events.AsPermanent(fmt.Errorf("storegrid %s %s %q: %w", op.Action, t.kind, t.name, ErrNotFound))
	}
	out := t.outcome()
	out.Details["active"] = fmt.Sprint(acct.active)
	out.Details["renewal"] = "billed in WHMCS; nothing changed at the server"
	log.Debug("storegrid renewal needs no call", zap.Bool("active", acct.active))
	return out, nil
}

// packageForm is the edit request's package parameters (without the
// request's action, credentials and target).
func packageForm(t target, prod product) url.Values {
	f := url.Values{}
	prod.signup.Package.Encode(f, t.kind)
	return f
}

func (p *Provider) changePackage(ctx context.Context, op events.Operation, t target, log *zap.Logger) (events.Outcome, error) {
	prod, err := productFor(op, t)
	if err != nil {
		return events.Outcome{}, err
	}
	acct, found, err := p.get(ctx, t)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("storegrid %s: %w", op.Action, err)
	}
	if !found {
		return events.Outcome{}, events.AsPermanent(fmt.Errorf("storegrid %s %s %q: %w", op.Action, t.kind, t.name, ErrNotFound))
	}
	want := packageForm(t, prod)
	out := t.outcome()
	diff := sgwire.Differs(want, acct.fields)
	if len(diff) == 0 {
		out.AlreadyDone = true
		return out, nil
	}
	form := p.form(t, sgwire.Edit)
	for k, v := range want {
		form[k] = v
	}
	if _, err := p.call(ctx, form, false); err != nil {
		return events.Outcome{}, fmt.Errorf("storegrid %s: edit %s %q: %w", op.Action, t.kind, t.name, err)
	}
	log.Info("storegrid package changed", zap.Strings("changed", diff))
	return out, nil
}

// Check asks the server for its info with the admin credentials: it fails
// when the server is unreachable (transient) or refuses the credentials
// (permanent, ErrAuth).
func (p *Provider) Check(ctx context.Context) error {
	r, err := p.call(ctx, sgwire.NewForm(sgwire.ActionServerInfo, p.cfg.Username, p.cfg.Password), false)
	if err != nil {
		return fmt.Errorf("storegrid check: %w", err)
	}
	p.log.Debug("storegrid server reachable", zap.String("version", r.Data[sgwire.DataVersion]))
	return nil
}
