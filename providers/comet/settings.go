package comet

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/hookworker/hookworker/events"
)

// The catalog settings a Comet product may carry (events.Operation.Settings).
const (
	// SettingPolicyGroupID is the Comet PolicyID assigned to the product's
	// users; empty clears the user's policy, as the official module does.
	SettingPolicyGroupID = "policy_group_id"
	// SettingCreatePolicyGroup (yes|no) creates or updates the policy
	// SettingPolicyGroupID names, with the official module's restrictions.
	SettingCreatePolicyGroup = "create_policy_group"
	// SettingStorageVaultTemplate is the StorageProvider id a Storage Vault
	// is requested from when a new user has none.
	SettingStorageVaultTemplate = "storage_vault_template"
	// SettingRequirePasswordChange (yes|no) makes a new user change the
	// password at first login.
	SettingRequirePasswordChange = "require_password_change"
)

// supported lists the actions this provider performs; a reseller signup is
// not a Comet concept.
var supported = []events.Action{events.SignupCustomer, events.Renew, events.Suspend, events.Unsuspend,
	events.Terminate, events.ChangePassword, events.ChangePackage}

// ValidateSettings checks a catalog product's settings for action a. It
// accepts only the keys listed in the package documentation, yes/no values
// (any case; empty means no) for the flags, and ids without spaces or
// control characters; create_policy_group=yes needs policy_group_id. The
// error names the field, e.g. `setting "require_password_change": want yes
// or no, got "maybe"`, and is the same for the same input.
func ValidateSettings(a events.Action, settings map[string]string) error {
	if !slices.Contains(supported, a) {
		return fmt.Errorf("action %q: not supported by the comet provider (supported: %s)", a, joinActions(supported))
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := settings[k]
		switch k {
		case SettingCreatePolicyGroup, SettingRequirePasswordChange:
			if _, ok := yesNo(v); !ok {
				return fmt.Errorf("setting %q: want yes or no, got %q", k, v)
			}
		case SettingPolicyGroupID, SettingStorageVaultTemplate:
			if t := strings.TrimSpace(v); strings.IndexFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
				return fmt.Errorf("setting %q: %q is not a Comet id (no spaces or control characters)", k, v)
			}
		default:
			return fmt.Errorf("setting %q: unknown to the comet provider (known: %s, %s, %s, %s)", k,
				SettingPolicyGroupID, SettingCreatePolicyGroup, SettingStorageVaultTemplate, SettingRequirePasswordChange)
		}
	}
	if create, _ := yesNo(settings[SettingCreatePolicyGroup]); create && strings.TrimSpace(settings[SettingPolicyGroupID]) == "" {
		return fmt.Errorf("setting %q: yes needs setting %q (the id of the policy to create)", SettingCreatePolicyGroup, SettingPolicyGroupID)
	}
	return nil
}

// yesNo reads a yes/no setting; empty is no.
func yesNo(v string) (yes, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes":
		return true, true
	case "no", "":
		return false, true
	}
	return false, false
}

func joinActions(as []events.Action) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
