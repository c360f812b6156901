package comet

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// Comet's limits on account credentials (official module README).
const (
	minUsernameLen = 6
	minPasswordLen = 8
)

// Derived usernames are "hw" and 10 lowercase letters or digits from the
// signup key (50 bits): readable, well above Comet's 6-character minimum.
const (
	usernamePrefix = "hw"
	usernameLen    = 12
)

// PlanUsername is the key of the Comet username in the plan Prepare
// returns; Apply and Lookup use the plan's username when there is one.
const PlanUsername = "username"

// wanted is what a product asks of a user's configuration.
type wanted struct {
	restrictions
	createPolicy          bool
	vaultTemplate         string
	requirePasswordChange bool
}

func wantedFor(op events.Operation) (wanted, error) {
	r, err := restrictionsFor(op)
	if err != nil {
		return wanted{}, err
	}
	w := wanted{restrictions: r, vaultTemplate: strings.TrimSpace(op.Settings[SettingStorageVaultTemplate])}
	w.createPolicy, _ = yesNo(op.Settings[SettingCreatePolicyGroup])
	w.requirePasswordChange, _ = yesNo(op.Settings[SettingRequirePasswordChange])
	return w, nil
}

// accountName is the Comet username op acts on: the plan's, else the name
// WHMCS holds, else the one derived from the service's signup key.
func accountName(op events.Operation) string {
	if u := op.Plan[PlanUsername]; u != "" {
		return u
	}
	return providers.AccountName(op, usernamePrefix, usernameLen)
}

// checkOp returns op's username after checking what can be checked without
// the server: the username, the catalog settings and, for actions that set
// quotas, the configurable options. Every error is permanent.
func checkOp(op events.Operation) (string, error) {
	name := accountName(op)
	field := "the plan's"
	if op.Plan[PlanUsername] == "" {
		field = "WHMCS's service username"
		if op.Username == "" {
			field = "derived from the signup key"
		}
	}
	if err := checkName(op.Action, name, field); err != nil {
		return name, err
	}
	return name, checkSettings(op, name)
}

// checkSettings checks op's catalog settings and, for actions that set
// quotas, its configurable options.
func checkSettings(op events.Operation, name string) error {
	if err := ValidateSettings(op.Action, op.Settings); err != nil {
		return events.AsPermanent(fmt.Errorf("comet %s %q: %w", op.Action, name, err))
	}
	if op.Action == events.SignupCustomer || op.Action == events.ChangePackage {
		if _, err := wantedFor(op); err != nil {
			return fmt.Errorf("comet %s %q: %w", op.Action, name, err)
		}
	}
	return nil
}

func details(name string) map[string]string { return map[string]string{"username": name} }

// Prepare chooses the Comet username before the first attempt and returns
// the plan {"username": name} (and, for a signup, "username_probe"):
//
//   - signup_customer: the first of the official module's candidates (custom
//     field "Username", else the client's e-mail; then "<name>_NNNN") that
//     is free at Comet or carries this service's marker. It calls
//     get-user-profile once per candidate tried.
//   - other actions: WHMCS's service username when the event has one (the
//     write-back stores the signup's choice there); else the user carrying
//     this service's marker (list-users-full); else the name older
//     hookworker versions derived from the signup key.
//
// It fails permanently when the name is shorter than 6 characters, holds
// spaces, or the settings or configurable options are invalid: nothing is
// attempted at Comet for such an operation.
func (p *Provider) Prepare(ctx context.Context, op events.Operation) (map[string]string, error) {
	if op.Action == events.SignupCustomer {
		if err := checkSettings(op, baseUsername(op)); err != nil {
			return nil, err
		}
		return p.chooseUsername(ctx, op)
	}
	if op.Username == "" && op.Plan[PlanUsername] == "" && slices.Contains(supported, op.Action) {
		name, err := p.findByMarker(ctx, op)
		if err != nil {
			return nil, fmt.Errorf("comet %s: finding the service's user: %w", op.Action, err)
		}
		if name != "" {
			op.Plan = map[string]string{PlanUsername: name}
		}
	}
	name, err := checkOp(op)
	if err != nil {
		return nil, err
	}
	return map[string]string{PlanUsername: name}, nil
}

// Lookup reports whether op's effect is already entirely in place at Comet,
// without changing anything. found is true only when Apply would have
// nothing left to do:
//
//   - signup_customer: the user exists, holds a Storage Vault when the
//     product has a vault template, its quotas, device limit and PolicyID
//     are the product's, and (create_policy_group) the policy has the
//     restrictions. A user that exists but is not fully configured is "not
//     found": Apply then finishes the job without creating anything twice.
//   - change_package: as signup, without the Storage Vault.
//   - suspend / unsuspend: the user is in the target state.
//   - terminate: the user does not exist.
//   - renew: the user exists and is not suspended.
//   - change_password: never (the password cannot be read back).
//
// A user that does not exist is "not found" for every action but terminate
// (Apply then reports the error).
func (p *Provider) Lookup(ctx context.Context, op events.Operation) (events.Outcome, bool, error) {
	name, err := checkOp(op)
	if err != nil {
		return events.Outcome{}, false, err
	}
	log := p.log.With(zap.String("action", string(op.Action)), zap.String("username", name))
	done := events.Outcome{Reference: name, AlreadyDone: true, Details: details(name)}
	var found bool
	switch op.Action {
	case events.SignupCustomer, events.ChangePackage:
		w, _ := wantedFor(op) // checked by checkOp
		found, err = p.configured(ctx, log, op, name, w, op.Action == events.SignupCustomer)
	case events.Terminate:
		var exists bool
		exists, err = p.userExists(ctx, name)
		found = err == nil && !exists
	case events.Suspend, events.Unsuspend, events.Renew:
		var prof profile
		prof, _, err = p.readProfile(ctx, name)
		switch {
		case errors.Is(err, ErrUserNotFound):
			return events.Outcome{}, false, nil
		case err != nil:
		case markerOf(prof) != "" && markerOf(prof) != ServiceMarker(op):
			return events.Outcome{}, false, notOurs(op.Action, name, markerOf(prof))
		case op.Action == events.Suspend:
			found = prof.suspended()
		default:
			found = !prof.suspended()
		}
	case events.ChangePassword:
	}
	if err != nil || !found {
		return events.Outcome{}, false, err
	}
	if op.Action == events.SignupCustomer {
		p.releaseName(ctx, op, name)
	}
	log.Debug("comet lookup: already in place")
	return done, true, nil
}

// configured reports whether user exists, carries op's service marker and
// has the configuration w asks for (with the Storage Vault when withVault).
func (p *Provider) configured(ctx context.Context, log *zap.Logger, op events.Operation, user string, w wanted, withVault bool) (bool, error) {
	prof, _, err := p.readProfile(ctx, user)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return false, nil
	case err != nil:
		return false, err
	case markerOf(prof) != ServiceMarker(op):
		return false, nil // Apply decides whether it may be adopted
	case withVault && w.vaultTemplate != "" && len(prof.destinations()) == 0:
		return false, nil
	case !w.satisfiedBy(prof):
		return false, nil
	case w.createPolicy:
		return p.ensurePolicy(ctx, log, w.policyID, false)
	}
	return true, nil
}

// Apply performs op at Comet and is safe to call again after any failure,
// timeout or crash: every step looks before it writes.
//
//   - signup_customer: get-user-profile → add-user (only when missing;
//     StoreRecoveryCode=1, RequirePasswordChange=1 when configured) →
//     policies/get + policies/set (create_policy_group) →
//     request-storage-vault (only when the profile has no Storage Vault and
//     a template is set) → set-user-profile-hash with the quotas, device
//     limit and PolicyID. A user already there under the planned name is
//     this service's and is adopted, never duplicated. AlreadyDone is true
//     when nothing had to be written.
//   - suspend / unsuspend: IsSuspended via set-user-profile-hash;
//     AlreadyDone when already so.
//   - terminate: delete-user; a user already gone is success (AlreadyDone).
//   - change_password: reset-user-password with the service password.
//   - change_package: policy (as signup) and quotas again.
//   - renew: nothing to do at Comet (billing lives in WHMCS), except that a
//     suspended user is unsuspended, as WHMCS does on a renewal payment.
//
// Outcome.Reference is the Comet username. Errors are classified; a
// lifecycle action on a missing user fails permanently with
// ErrUserNotFound; signup_reseller is not supported (permanent).
func (p *Provider) Apply(ctx context.Context, op events.Operation) (events.Outcome, error) {
	name, err := checkOp(op)
	if err != nil {
		return events.Outcome{}, err
	}
	log := p.log.With(zap.String("action", string(op.Action)), zap.String("username", name))
	ctx, held := withOpSecrets(ctx)
	out, err := p.apply(ctx, log, op, name)
	if err != nil && op.Action == events.SignupCustomer && events.ClassOf(err) == events.Permanent {
		p.releaseName(ctx, op, name) // failed for good: the name is not held for a signup that will not retry
	}
	if err != nil {
		err = held.get().ScrubError(err)
		log.Warn("comet action failed", zap.String("class", string(events.ClassOf(err))), zap.Error(err))
		return events.Outcome{}, err
	}
	out.Reference = name
	if out.Details == nil {
		out.Details = details(name)
	} else {
		out.Details["username"] = name
	}
	log.Info("comet action applied", zap.Bool("already_done", out.AlreadyDone))
	return out, nil
}

func (p *Provider) apply(ctx context.Context, log *zap.Logger, op events.Operation, name string) (events.Outcome, error) {
	if op.Action != events.SignupCustomer {
		if err := p.guard(ctx, op, name); err != nil {
			return events.Outcome{}, err
		}
	}
	var out events.Outcome
	var err error
	switch op.Action {
	case events.SignupCustomer:
		out, err = p.signup(ctx, log, op, name)
	case events.Suspend, events.Unsuspend:
		out, err = p.setSuspended(ctx, log, name, op.Action, op.Action == events.Suspend)
	case events.Terminate:
		out, err = p.terminate(ctx, log, name)
	case events.ChangePassword:
		out, err = p.changePassword(ctx, log, op, name)
	case events.ChangePackage:
		out, err = p.changePackage(ctx, log, op, name)
	case events.Renew:
		out, err = p.renew(ctx, log, name)
	default: // unreachable: checkOp refuses unsupported actions
		err = events.Permanentf("comet %s: not supported", op.Action)
	}
	return out, err
}

// guard refuses to act on a user another service's marker claims. A user
// without a marker (created by the vendor module, or by older hookworker
// versions) is acted on, as before; a missing user is left to the action.
func (p *Provider) guard(ctx context.Context, op events.Operation, name string) error {
	prof, _, err := p.readProfile(ctx, name)
	switch {
	case errors.Is(err, ErrUserNotFound):
		return nil
	case err != nil:
		return err
	}
	if owner := markerOf(prof); owner != "" && owner != ServiceMarker(op) {
		return notOurs(op.Action, name, owner)
	}
	return nil
}

// adoptable decides whether an existing user under the planned name is
// this signup's: it carries this service's marker; or it has no marker and
// the name was free when Prepare chose it (so it appeared during this
// operation: an earlier attempt created it and its reply, or the marker
// write, was lost); or the plan predates markers. A user marked for
// another service never is.
func adoptable(op events.Operation, name string, prof map[string]any) error {
	owner := markerOf(prof)
	switch {
	case owner == ServiceMarker(op):
		return nil
	case owner != "":
		return notOurs(op.Action, name, owner)
	}
	return nil // unmarked: Prepare saw the name free (ProbeFree) or found it ours (ProbeOurs), or a plan from before markers
}

func (p *Provider) signup(ctx context.Context, log *zap.Logger, op events.Operation, name string) (events.Outcome, error) {
	w, _ := wantedFor(op) // checked by checkOp
	mine := ServiceMarker(op)
	prof, existed, err := p.probeUser(ctx, name)
	if err != nil {
		return events.Outcome{}, err
	}
	changed := false
	if existed {
		if err := adoptable(op, name, prof); err != nil {
			return events.Outcome{}, err
		}
		if markerOf(prof) == mine {
			log.Info("comet user with this service's marker exists; adopting it")
		} else {
			log.Warn("comet user exists without a marker under a name that was free when this signup chose it; taking it as the one an earlier attempt created",
				zap.String("probe", op.Plan[PlanProbe]))
		}
	} else {
		created, err := p.addUser(ctx, log, op, name, w.requirePasswordChange)
		if err != nil {
			return events.Outcome{}, err
		}
		changed = created
	}
	if w.createPolicy {
		wrote, err := p.ensurePolicy(ctx, log, w.policyID, true)
		if err != nil {
			return events.Outcome{}, err
		}
		changed = changed || wrote
	}
	if w.vaultTemplate != "" {
		wrote, err := p.ensureVault(ctx, log, name, w.vaultTemplate)
		if err != nil {
			return events.Outcome{}, err
		}
		changed = changed || wrote
	}
	var noVault, restricted bool
	_, err = p.updateProfile(ctx, log, name, "apply restrictions", func(prof profile) {
		restricted = !w.satisfiedBy(prof)
		prof["AccountName"] = withMarker(op, prof, mine)
		w.applyTo(prof)
		noVault = w.vaultQuota > 0 && len(prof.destinations()) == 0
	})
	if err != nil {
		return events.Outcome{}, err
	}
	p.releaseName(ctx, op, name) // the user exists with this service's marker: the name needs no claim any more
	// Writing the marker onto the user an earlier attempt created is not a
	// new effect; creating, configuring or restricting is.
	changed = changed || restricted
	if noVault {
		return events.Outcome{}, vaultQuotaUnapplied(op, name)
	}
	return events.Outcome{AlreadyDone: existed && !changed}, nil
}

// vaultQuotaUnapplied is the permanent error for a paid Storage Vault quota
// on a user without a Storage Vault: the quota is never dropped silently.
func vaultQuotaUnapplied(op events.Operation, name string) error {
	key := optVaultQuotaGB
	if _, ok := op.ConfigOpts[optVaultQuotaTB]; ok && strings.TrimSpace(op.ConfigOpts[optVaultQuotaTB]) != "" {
		key = optVaultQuotaTB
	}
	return events.Permanentf("comet %s %q: config option %q cannot be applied: the user has no Storage Vault (set the product's %s to request one)",
		op.Action, name, key, SettingStorageVaultTemplate)
}

// addUser creates user; it reports false when the user turned out to exist
// already and is adoptable (created by an earlier attempt whose reply was
// lost).
func (p *Provider) addUser(ctx context.Context, log *zap.Logger, op events.Operation, user string, requireChange bool) (bool, error) {
	pw, err := p.servicePassword(ctx, op, "add-user", user)
	if err != nil {
		return false, err
	}
	form := url.Values{
		"TargetUser":        {user},
		"TargetPassword":    {pw},
		"StoreRecoveryCode": {"1"},
	}
	if requireChange {
		form.Set("RequirePasswordChange", "1")
	}
	err = p.call(ctx, "add-user", user, form, nil)
	if err != nil {
		if events.ClassOf(err) == events.Permanent {
			// "already exists"? Adopt it only if it is this service's.
			if prof, exists, perr := p.probeUser(ctx, user); perr == nil && exists {
				if aerr := adoptable(op, user, prof); aerr != nil {
					return false, aerr
				}
				log.Info("comet add-user refused but the user exists and may be adopted", zap.Error(err))
				return false, nil
			}
		}
		return false, err
	}
	log.Info("comet user created")
	return true, nil
}

func (p *Provider) servicePassword(ctx context.Context, op events.Operation, what, user string) (string, error) {
	pw, err := p.passwords.ServicePassword(ctx, op)
	if err != nil {
		return "", fmt.Errorf("comet %s %q: getting the service password: %w", what, user, err)
	}
	holdSecret(ctx, pw)
	if utf8.RuneCountInString(pw) < minPasswordLen {
		return "", events.Permanentf("comet %s %q: the service password is shorter than %d characters, the least Comet accepts", what, user, minPasswordLen)
	}
	return pw, nil
}

func (p *Provider) setSuspended(ctx context.Context, log *zap.Logger, user string, a events.Action, suspended bool) (events.Outcome, error) {
	wrote, err := p.updateProfile(ctx, log, user, string(a), func(prof profile) { prof["IsSuspended"] = suspended })
	if err != nil {
		return events.Outcome{}, err
	}
	return events.Outcome{AlreadyDone: !wrote}, nil
}

func (p *Provider) terminate(ctx context.Context, log *zap.Logger, user string) (events.Outcome, error) {
	exists, err := p.userExists(ctx, user)
	if err != nil {
		return events.Outcome{}, err
	}
	if !exists {
		return events.Outcome{AlreadyDone: true}, nil
	}
	if err := p.call(ctx, "delete-user", user, url.Values{"TargetUser": {user}}, nil); err != nil {
		// Gone meanwhile (settleMissing lets transport and HTTP errors stand)?
		if absent, _ := settleMissing(err, func() (bool, error) { return p.userListed(ctx, user) }); absent {
			return events.Outcome{AlreadyDone: true}, nil
		}
		return events.Outcome{}, err
	}
	log.Info("comet user deleted")
	return events.Outcome{}, nil
}

func (p *Provider) changePassword(ctx context.Context, log *zap.Logger, op events.Operation, user string) (events.Outcome, error) {
	pw, err := p.servicePassword(ctx, op, "reset-user-password", user)
	if err != nil {
		return events.Outcome{}, err
	}
	err = p.call(ctx, "reset-user-password", user, url.Values{"TargetUser": {user}, "NewPassword": {pw}}, nil)
	if err != nil {
		if absent, _ := settleMissing(err, func() (bool, error) { return p.userListed(ctx, user) }); absent {
			return events.Outcome{}, events.AsPermanent(fmt.Errorf("comet reset-user-password %q: %w", user, ErrUserNotFound))
		}
		return events.Outcome{}, err
	}
	log.Info("comet password reset")
	return events.Outcome{}, nil
}

func (p *Provider) changePackage(ctx context.Context, log *zap.Logger, op events.Operation, user string) (events.Outcome, error) {
	w, _ := wantedFor(op) // checked by checkOp
	changed := false
	if w.createPolicy {
		wrote, err := p.ensurePolicy(ctx, log, w.policyID, true)
		if err != nil {
			return events.Outcome{}, err
		}
		changed = wrote
	}
	var noVault bool
	wrote, err := p.updateProfile(ctx, log, user, "apply restrictions", func(prof profile) {
		w.applyTo(prof)
		noVault = w.vaultQuota > 0 && len(prof.destinations()) == 0
	})
	if err != nil {
		return events.Outcome{}, err
	}
	if noVault {
		return events.Outcome{}, vaultQuotaUnapplied(op, user)
	}
	return events.Outcome{AlreadyDone: !changed && !wrote}, nil
}

func (p *Provider) renew(ctx context.Context, log *zap.Logger, user string) (events.Outcome, error) {
	prof, _, err := p.readProfile(ctx, user)
	if err != nil {
		return events.Outcome{}, err
	}
	if !prof.suspended() {
		return events.Outcome{Details: map[string]string{"renewal": "nothing to do at Comet; billing lives in WHMCS"}}, nil
	}
	if _, err := p.updateProfile(ctx, log, user, "unsuspend on renewal", func(prof profile) { prof["IsSuspended"] = false }); err != nil {
		return events.Outcome{}, err
	}
	return events.Outcome{Details: map[string]string{"renewal": "unsuspended the Comet user"}}, nil
}
