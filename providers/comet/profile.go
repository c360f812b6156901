package comet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
)

// maxConflictRetries bounds the read-modify-write attempts of one step when
// the profile or policy keeps changing under it.
const maxConflictRetries = 4

// profile is a UserProfileConfig as decoded JSON (numbers as json.Number),
// so that a read-modify-write keeps every field this client does not know.
type profile map[string]any

// decodeObject decodes a JSON object, keeping numbers exact.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null, want a JSON object")
	}
	return m, nil
}

// encodeJSON encodes v without HTML escaping (the server gets back exactly
// the strings it sent).
func encodeJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only values decoded from JSON or built from plain types get here.
		panic(fmt.Sprintf("comet: encoding JSON: %v", err))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (p profile) destinations() map[string]any {
	d, _ := p["Destinations"].(map[string]any)
	return d
}

func (p profile) suspended() bool {
	b, _ := p["IsSuspended"].(bool)
	return b
}

// restrictions are the profile values a product's configurable options and
// policy setting ask for, as the official module's applyRestrictions sets
// them.
type restrictions struct {
	vaultQuota int64 // bytes for every Storage Vault; 0 = leave vault limits alone
	itemQuota  int64 // bytes for all protected items; 0 = no quota
	maxDevices int64 // 0 = unlimited
	policyID   string
}

// The configurable option names of the official module.
const (
	optDevices      = "number_of_devices"
	optItemQuotaGB  = "protected_item_quota_gb"
	optItemQuotaTB  = "protected_item_quota_tb"
	optVaultQuotaGB = "storage_vault_quota_gb"
	optVaultQuotaTB = "storage_vault_quota_tb"
	gib             = int64(1) << 30
	tib             = int64(1) << 40
)

// restrictionsFor reads op's configurable options and policy setting. An
// option that is absent, empty or "0" is unset. Errors are permanent and
// name the option.
func restrictionsFor(op events.Operation) (restrictions, error) {
	var r restrictions
	var err error
	if r.maxDevices, err = quantity(op.ConfigOpts, optDevices, 1); err != nil {
		return r, err
	}
	if r.itemQuota, err = quota(op.ConfigOpts, optItemQuotaGB, optItemQuotaTB); err != nil {
		return r, err
	}
	if r.vaultQuota, err = quota(op.ConfigOpts, optVaultQuotaGB, optVaultQuotaTB); err != nil {
		return r, err
	}
	r.policyID = strings.TrimSpace(op.Settings[SettingPolicyGroupID])
	return r, nil
}

// quota returns the bytes of a GB or TB option; setting both is an error.
func quota(opts map[string]string, gbKey, tbKey string) (int64, error) {
	gb, err := quantity(opts, gbKey, gib)
	if err != nil {
		return 0, err
	}
	tb, err := quantity(opts, tbKey, tib)
	if err != nil {
		return 0, err
	}
	if gb > 0 && tb > 0 {
		return 0, events.Permanentf("config options %q and %q are both set; a product uses one of them", gbKey, tbKey)
	}
	return gb + tb, nil
}

// quantity parses a whole-number option and multiplies it by unit.
func quantity(opts map[string]string, key string, unit int64) (int64, error) {
	v := strings.TrimSpace(opts[key])
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, events.Permanentf("config option %q: want a whole number of at least 0, got %q", key, v)
	}
	if n > math.MaxInt64/unit {
		return 0, events.Permanentf("config option %q: %d is too large", key, n)
	}
	return n * unit, nil
}

// applyTo sets the restricted fields of prof, leaving every other field as
// it is.
func (r restrictions) applyTo(prof profile) {
	if r.vaultQuota > 0 {
		for _, d := range prof.destinations() {
			if dm, ok := d.(map[string]any); ok {
				dm["StorageLimitEnabled"] = true
				dm["StorageLimitBytes"] = r.vaultQuota
			}
		}
	}
	prof["AllProtectedItemsQuotaEnabled"] = r.itemQuota > 0
	prof["AllProtectedItemsQuotaBytes"] = r.itemQuota
	prof["MaximumDevices"] = r.maxDevices
	prof["PolicyID"] = r.policyID
}

// satisfiedBy reports whether prof already has the values applyTo sets.
func (r restrictions) satisfiedBy(prof profile) bool {
	before := encodeJSON(prof)
	c, err := decodeObject([]byte(before))
	if err != nil {
		return false
	}
	r.applyTo(c)
	return encodeJSON(c) == before
}

// conflictLoop runs one read-modify-write step. read loads the current state
// and returns its hash; write writes the change, if one is needed, and says
// whether it wrote. A write that fails permanently is retried only when a
// fresh read shows the hash changed in between (a concurrent change: the
// server rejected our stale hash); a failed write whose hash is unchanged
// returns its error. The exact reply Comet gives for a hash mismatch is not
// public, so a mismatch is recognised by re-reading, not by its wording.
func conflictLoop(log *zap.Logger, what string, read func() (string, error), write func() (bool, error)) (bool, error) {
	var lastErr error
	var lastHash string
	for attempt := 1; attempt <= maxConflictRetries; attempt++ {
		hash, err := read()
		if err != nil {
			return false, err
		}
		if lastErr != nil {
			if hash == lastHash {
				return false, lastErr
			}
			log.Info("comet object changed concurrently; retrying on the fresh copy",
				zap.String("step", what), zap.Int("attempt", attempt))
		}
		wrote, err := write()
		if err == nil {
			return wrote, nil
		}
		if events.ClassOf(err) == events.Transient {
			return false, err
		}
		lastErr, lastHash = err, hash
	}
	return false, events.AsTransient(fmt.Errorf("%s: changed concurrently on each of %d attempts: %w", what, maxConflictRetries, lastErr), 0)
}

// readProfile reads user's profile and hash. A missing user gives a
// permanent error matching ErrUserNotFound.
func (p *Provider) readProfile(ctx context.Context, user string) (profile, string, error) {
	var reply struct {
		ProfileHash string
		Profile     json.RawMessage
	}
	err := p.call(ctx, "get-user-profile-and-hash", user, url.Values{"TargetUser": {user}}, &reply)
	if err != nil {
		if absent, _ := settleMissing(err, func() (bool, error) { return p.userListed(ctx, user) }); absent {
			return nil, "", events.AsPermanent(fmt.Errorf("comet get-user-profile-and-hash %q: %w", user, ErrUserNotFound))
		}
		return nil, "", err
	}
	prof, err := decodeObject(reply.Profile)
	if err != nil {
		return nil, "", events.AsTransient(fmt.Errorf("comet get-user-profile-and-hash %q: the reply has no Profile object: %w", user, err), 0)
	}
	if reply.ProfileHash == "" {
		return nil, "", events.AsTransient(fmt.Errorf("comet get-user-profile-and-hash %q: the reply has no ProfileHash", user), 0)
	}
	return prof, reply.ProfileHash, nil
}

// updateProfile applies change to user's profile with
// get-user-profile-and-hash / set-user-profile-hash, writing only when the
// profile differs afterwards. It reports whether it wrote.
func (p *Provider) updateProfile(ctx context.Context, log *zap.Logger, user, what string, change func(profile)) (bool, error) {
	var prof profile
	var hash string
	return conflictLoop(log, fmt.Sprintf("comet %s %q", what, user),
		func() (string, error) {
			var err error
			prof, hash, err = p.readProfile(ctx, user)
			return hash, err
		},
		func() (bool, error) {
			before := encodeJSON(prof)
			change(prof)
			after := encodeJSON(prof)
			if after == before {
				return false, nil
			}
			err := p.call(ctx, "set-user-profile-hash", user, url.Values{
				"TargetUser":  {user},
				"ProfileData": {after},
				"RequireHash": {hash},
			}, nil)
			if err == nil {
				log.Info("comet profile updated", zap.String("step", what))
			}
			return err == nil, err
		})
}

// ensureVault requests one Storage Vault from template when user has none.
// It reports whether it requested one.
func (p *Provider) ensureVault(ctx context.Context, log *zap.Logger, user, template string) (bool, error) {
	var prof profile
	var hash string
	return conflictLoop(log, fmt.Sprintf("comet request-storage-vault %q", user),
		func() (string, error) {
			var err error
			prof, hash, err = p.readProfile(ctx, user)
			return hash, err
		},
		func() (bool, error) {
			if len(prof.destinations()) > 0 {
				return false, nil
			}
			var reply struct{ DestinationID string }
			err := p.call(ctx, "request-storage-vault", user, url.Values{
				"TargetUser":      {user},
				"StorageProvider": {template},
				"SelfAddress":     {p.base + "/"},
				"ProfileHash":     {hash},
			}, &reply)
			if err == nil {
				log.Info("comet storage vault requested", zap.String("template", template), zap.String("destination_id", reply.DestinationID))
			}
			return err == nil, err
		})
}

// policyRestrictions is the policy the official module creates for its
// "Create New Policy Group" option (seed 002; reference §1.5 step 4).
func policyRestrictions() map[string]any {
	m, _ := decodeObject([]byte(`{
		"PreventChangeAccountPassword": true,
		"ModeAdminResetPassword": 3,
		"PreventDeleteStorageVault": true,
		"PreventAddCustomStorageVault": true,
		"PreventRequestStorageVault": true,
		"StorageVaultProviders": {"AllowedProvidersWhenRestricted": [1003], "ShouldRestrictProviderList": true},
		"ProtectedItemEngineTypes": {"AllowedEngineTypeWhenRestricted": [], "ShouldRestrictEngineTypeList": false}
	}`))
	return m
}

// merge sets every value of src in dst, descending into objects both hold,
// so that fields only dst has survive.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// ensurePolicy makes policy id exist with the restrictions of
// policyRestrictions: created with our id when missing, updated (only the
// restriction fields; everything else kept, CheckPolicyHash guarding
// against concurrent edits) when it differs, left alone when it matches.
// With write false it only reports whether the policy is in place. It
// returns whether the policy is in place (write false) or was written
// (write true).
func (p *Provider) ensurePolicy(ctx context.Context, log *zap.Logger, id string, write bool) (bool, error) {
	var pol map[string]any
	var hash string
	var inPlace bool
	wrote, err := conflictLoop(log, fmt.Sprintf("comet policies/set %q", id),
		func() (string, error) {
			var err error
			pol, hash, err = p.readPolicy(ctx, id)
			return hash, err
		},
		func() (bool, error) {
			params := url.Values{"PolicyID": {id}}
			if pol == nil {
				pol = map[string]any{"Description": id, "Policy": policyRestrictions()}
			} else {
				before := encodeJSON(pol)
				inner, ok := pol["Policy"].(map[string]any)
				if !ok {
					inner = map[string]any{}
					pol["Policy"] = inner
				}
				merge(inner, policyRestrictions())
				if encodeJSON(pol) == before {
					inPlace = true
					return false, nil
				}
				params.Set("CheckPolicyHash", hash)
			}
			if !write {
				return false, nil
			}
			params.Set("Policy", encodeJSON(pol))
			err := p.call(ctx, "policies/set", id, params, nil)
			if err == nil {
				log.Info("comet policy group created or updated", zap.String("policy_id", id))
			}
			return err == nil, err
		})
	if !write {
		return inPlace, err
	}
	return wrote, err
}

// readPolicy reads policy id; a missing policy gives (nil, "", nil).
func (p *Provider) readPolicy(ctx context.Context, id string) (map[string]any, string, error) {
	var reply struct {
		Policy     json.RawMessage
		PolicyHash string
	}
	err := p.call(ctx, "policies/get", id, url.Values{"PolicyID": {id}}, &reply)
	if err != nil {
		absent, serr := settleMissing(err, func() (bool, error) { return p.policyListed(ctx, id) })
		if absent {
			return nil, "", nil
		}
		return nil, "", serr
	}
	if reply.PolicyHash == "" || len(reply.Policy) == 0 || string(reply.Policy) == "null" {
		// The official module treats a reply without PolicyHash as "no such policy".
		return nil, "", nil
	}
	pol, err := decodeObject(reply.Policy)
	if err != nil {
		return nil, "", events.AsTransient(fmt.Errorf("comet policies/get %q: the reply's Policy is not an object: %w", id, err), 0)
	}
	return pol, reply.PolicyHash, nil
}
