package codeguard

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hookworker/hookworker/events"
)

// Catalog settings (op.Settings) of a CodeGuard product.
const (
	// SettingPlanID is the CodeGuard plan id (required for signup and
	// change_package; products/plan-details.json lists them).
	SettingPlanID = "plan_id"
	// SettingInvoiceOption overrides Config.InvoiceOption for this product.
	SettingInvoiceOption = "invoice_option"
	// SettingAutoRenew is "yes" or "no" (default "no": WHMCS drives renewals).
	SettingAutoRenew = "auto_renew"
	// SettingLangPref is the lang-pref of customers this product creates
	// (default "en").
	SettingLangPref = "lang_pref"
)

var langPref = regexp.MustCompile(`^[a-z]{2,3}$`)

// ValidateSettings checks a product's catalog settings for action a. The
// error names the setting, e.g. `setting "plan_id": must be a positive
// integer, got "x"`. plan_id is required for signup_customer and
// change_package; every setting present is checked whatever the action.
// An unknown key (a typo such as "auto_renw") is an error naming it, as for
// the Comet and StoreGrid providers.
func ValidateSettings(a events.Action, settings map[string]string) error {
	if !a.Valid() {
		return fmt.Errorf("action %q: unknown action", a)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch k {
		case SettingPlanID, SettingInvoiceOption, SettingAutoRenew, SettingLangPref:
		default:
			return fmt.Errorf("setting %q: unknown to the codeguard provider (known: %s, %s, %s, %s)", k,
				SettingPlanID, SettingInvoiceOption, SettingAutoRenew, SettingLangPref)
		}
	}
	plan, ok := settings[SettingPlanID]
	if (a == events.SignupCustomer || a == events.ChangePackage) && (!ok || strings.TrimSpace(plan) == "") {
		return fmt.Errorf("setting %q: is required for %s (a CodeGuard plan id)", SettingPlanID, a)
	}
	if ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(plan), 10, 64); err != nil || n <= 0 {
			return fmt.Errorf("setting %q: must be a positive integer, got %q", SettingPlanID, plan)
		}
	}
	if v, ok := settings[SettingInvoiceOption]; ok && v != "" && !validInvoiceOption(v) {
		return fmt.Errorf("setting %q: must be one of %s, got %q", SettingInvoiceOption, strings.Join(invoiceOptions, ", "), v)
	}
	if v, ok := settings[SettingAutoRenew]; ok && v != "" && v != "yes" && v != "no" {
		return fmt.Errorf("setting %q: must be \"yes\" or \"no\", got %q", SettingAutoRenew, v)
	}
	if v, ok := settings[SettingLangPref]; ok && v != "" && !langPref.MatchString(v) {
		return fmt.Errorf("setting %q: must be a lowercase language code such as \"en\", got %q", SettingLangPref, v)
	}
	return nil
}

// productSettings are one operation's settings, validated and defaulted.
type productSettings struct {
	planID        int64
	invoiceOption string
	autoRenew     bool
	langPref      string
}

func settingsOf(op events.Operation, defInvoice string) (productSettings, error) {
	if err := ValidateSettings(op.Action, op.Settings); err != nil {
		return productSettings{}, events.Permanentf("codeguard %s: product %d: %w", op.Action, op.ProductID, err)
	}
	plan, _ := strconv.ParseInt(strings.TrimSpace(op.Setting(SettingPlanID, "0")), 10, 64)
	return productSettings{
		planID:        plan,
		invoiceOption: op.Setting(SettingInvoiceOption, defInvoice),
		autoRenew:     op.Setting(SettingAutoRenew, "no") == "yes",
		langPref:      op.Setting(SettingLangPref, "en"),
	}, nil
}
