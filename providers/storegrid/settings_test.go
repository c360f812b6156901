package storegrid_test

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/storegrid"
)

// badFields returns, sorted, the fields the *SettingErrors in err name.
func badFields(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		var se *storegrid.SettingError
		if errors.As(e, &se) && e == error(se) {
			out = append(out, se.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
		}
	}
	if err != nil {
		walk(err)
	}
	slices.Sort(out)
	return out
}

func TestValidateSettings(t *testing.T) {
	const gb = int64(1) << 30
	customer := map[string]string{"reseller_name": "acme", "storage_allotted": "1073741824"}
	reseller := map[string]string{"storage_allotted": "1073741824"}
	// throttled is a customer product with a specific, enabled, scheduled
	// throttle configuration.
	throttled := map[string]string{"reseller_name": "acme", "storage_allotted": "1073741824",
		"bandwidth_throttling": "new", "throttle_enabled": "yes", "throttle_mode": "scheduled",
		"throttle_from": "0130", "throttle_till": "1740", "restricted_rate": "1025"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := maps.Clone(base)
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "<unset>" {
				delete(m, kv[i])
				continue
			}
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, r := events.SignupCustomer, events.SignupReseller
	tests := []struct {
		name     string
		action   events.Action
		settings map[string]string
		bad      []string // fields named, sorted; nil = valid
	}{
		{"customer minimal", c, customer, nil},
		{"reseller minimal", r, reseller, nil},
		{"customer every field", c, with(throttled, "activation_status", "no", "auto_authorization", "yes",
			"storage_location", "/backups/vol2", "consolidated_report", "yes",
			"consolidated_report_email", "ops@example.com, boss@example.org", "auto_mcal", "no",
			"allot_mcal", "7", "send_mail", "yes", "retrieve_pass_key", "yes"), nil},

		// reseller_name
		{"customer without reseller_name", c, with(customer, "reseller_name", "<unset>"), []string{"reseller_name"}},
		{"customer blank reseller_name", c, with(customer, "reseller_name", "  "), []string{"reseller_name"}},
		{"reseller with reseller_name", r, with(reseller, "reseller_name", "acme"), []string{"reseller_name"}},
		{"reseller_name with control character", c, with(customer, "reseller_name", "ac\x00me"), []string{"reseller_name"}},

		// yes/no fields
		{"activation_status YES", c, with(customer, "activation_status", "YES"), nil},
		{"activation_status maybe", c, with(customer, "activation_status", "maybe"), []string{"activation_status"}},
		{"auto_authorization 1", c, with(customer, "auto_authorization", "1"), []string{"auto_authorization"}},
		{"send_mail on", c, with(customer, "send_mail", "on"), []string{"send_mail"}},
		{"auto_mcal true", c, with(customer, "auto_mcal", "true"), []string{"auto_mcal"}},

		// storage
		{"storage_allotted missing", c, with(customer, "storage_allotted", "<unset>"), []string{"storage_allotted"}},
		{"storage_allotted 1", c, with(customer, "storage_allotted", "1"), nil},
		{"storage_allotted 0", c, with(customer, "storage_allotted", "0"), []string{"storage_allotted"}},
		{"storage_allotted negative", c, with(customer, "storage_allotted", "-5"), []string{"storage_allotted"}},
		{"storage_allotted plus sign", c, with(customer, "storage_allotted", "+5"), []string{"storage_allotted"}},
		{"storage_allotted fraction", c, with(customer, "storage_allotted", "1.5"), []string{"storage_allotted"}},
		{"storage_allotted with unit", c, with(customer, "storage_allotted", "10GB"), []string{"storage_allotted"}},
		{"storage_allotted overflow", c, with(customer, "storage_allotted", "99999999999999999999"), []string{"storage_allotted"}},
		{"storage_location set", c, with(customer, "storage_location", `D:\backups`), nil},
		{"storage_location empty", c, with(customer, "storage_location", ""), nil},
		{"storage_location newline", c, with(customer, "storage_location", "/a\n/b"), []string{"storage_location"}},

		// consolidated report
		{"report yes without emails", c, with(customer, "consolidated_report", "yes"), []string{"consolidated_report_email"}},
		{"report one email", c, with(customer, "consolidated_report", "yes", "consolidated_report_email", "ops@example.com"), nil},
		{"report two emails", c, with(customer, "consolidated_report", "yes", "consolidated_report_email", "ops@example.com,boss@example.org"), nil},
		{"report empty entry", c, with(customer, "consolidated_report", "yes", "consolidated_report_email", "ops@example.com,,boss@example.org"), []string{"consolidated_report_email"}},
		{"report trailing comma", c, with(customer, "consolidated_report", "yes", "consolidated_report_email", "ops@example.com,"), []string{"consolidated_report_email"}},
		{"report not an email", c, with(customer, "consolidated_report", "yes", "consolidated_report_email", "ops@example.com,not-an-email"), []string{"consolidated_report_email"}},
		{"report display name", c, with(customer, "consolidated_report", "yes", "consolidated_report_email", "Ops <ops@example.com>"), []string{"consolidated_report_email"}},
		{"report no domain dot", c, with(customer, "consolidated_report", "yes", "consolidated_report_email", "ops@localhost"), []string{"consolidated_report_email"}},
		{"report no but bad email still checked", c, with(customer, "consolidated_report", "no", "consolidated_report_email", "nope"), []string{"consolidated_report_email"}},
		{"report no with emails", c, with(customer, "consolidated_report", "no", "consolidated_report_email", "ops@example.com"), nil},
		{"reseller report yes", r, with(reseller, "consolidated_report", "yes"), []string{"consolidated_report"}},
		{"reseller report no", r, with(reseller, "consolidated_report", "no"), nil},
		{"reseller report emails", r, with(reseller, "consolidated_report_email", "ops@example.com"), []string{"consolidated_report_email"}},

		// MCAL
		{"auto_mcal no without allot", c, with(customer, "auto_mcal", "no"), []string{"allot_mcal"}},
		{"auto_mcal no allot 3", c, with(customer, "auto_mcal", "no", "allot_mcal", "3"), nil},
		{"auto_mcal no allot 0", c, with(customer, "auto_mcal", "no", "allot_mcal", "0"), []string{"allot_mcal"}},
		{"auto_mcal yes allot bad still checked", c, with(customer, "auto_mcal", "yes", "allot_mcal", "x"), []string{"allot_mcal"}},
		{"allot_mcal too large", c, with(customer, "auto_mcal", "no", "allot_mcal", "9999999999999"), []string{"allot_mcal"}},

		// bandwidth throttling
		{"bandwidth GLOBAL", c, with(customer, "bandwidth_throttling", "GLOBAL"), nil},
		{"bandwidth custom", c, with(customer, "bandwidth_throttling", "custom"), []string{"bandwidth_throttling"}},
		{"throttle enabled with global", c, with(customer, "bandwidth_throttling", "global", "throttle_enabled", "yes", "restricted_rate", "2048"), []string{"throttle_enabled"}},
		{"throttle disabled with global", c, with(customer, "throttle_enabled", "no"), nil},
		{"new without throttle", c, with(customer, "bandwidth_throttling", "new"), nil},
		{"throttle always", c, with(throttled, "throttle_mode", "always", "throttle_from", "<unset>", "throttle_till", "<unset>"), nil},
		{"throttle_mode sometimes", c, with(throttled, "throttle_mode", "sometimes"), []string{"throttle_mode"}},
		{"scheduled without times", c, with(throttled, "throttle_from", "<unset>", "throttle_till", "<unset>"), []string{"throttle_from", "throttle_till"}},
		{"throttle_from 0000", c, with(throttled, "throttle_from", "0000"), nil},
		{"throttle_from 0130", c, with(throttled, "throttle_from", "0130"), nil},
		{"throttle_from 2359", c, with(throttled, "throttle_from", "2359"), nil},
		{"throttle_from 2400", c, with(throttled, "throttle_from", "2400"), []string{"throttle_from"}},
		{"throttle_from 0060", c, with(throttled, "throttle_from", "0060"), []string{"throttle_from"}},
		{"throttle_from 130", c, with(throttled, "throttle_from", "130"), []string{"throttle_from"}},
		{"throttle_from 01:30", c, with(throttled, "throttle_from", "01:30"), []string{"throttle_from"}},
		{"throttle_till 1740", c, with(throttled, "throttle_till", "1740"), nil},
		{"throttle_till 2500", c, with(throttled, "throttle_till", "2500"), []string{"throttle_till"}},
		{"throttle overnight", c, with(throttled, "throttle_from", "2200", "throttle_till", "0600"), nil},
		{"throttle from equals till", c, with(throttled, "throttle_from", "0130", "throttle_till", "0130"), []string{"throttle_till"}},
		{"times with always still checked", c, with(throttled, "throttle_mode", "always", "throttle_from", "2400"), []string{"throttle_from"}},
		{"restricted_rate missing", c, with(throttled, "restricted_rate", "<unset>"), []string{"restricted_rate"}},
		{"restricted_rate 1024", c, with(throttled, "restricted_rate", "1024"), []string{"restricted_rate"}},
		{"restricted_rate 1025", c, with(throttled, "restricted_rate", "1025"), nil},
		{"restricted_rate 9999 GB", c, with(throttled, "restricted_rate", strconv.FormatInt(9999*gb, 10)), []string{"restricted_rate"}},
		{"restricted_rate 9999 GB - 1", c, with(throttled, "restricted_rate", strconv.FormatInt(9999*gb-1, 10)), nil},
		{"restricted_rate not a number", c, with(throttled, "restricted_rate", "1MB"), []string{"restricted_rate"}},

		// pass key
		{"customer pass key", c, with(customer, "retrieve_pass_key", "yes"), nil},
		{"reseller pass key yes", r, with(reseller, "retrieve_pass_key", "yes"), []string{"retrieve_pass_key"}},
		{"reseller pass key no", r, with(reseller, "retrieve_pass_key", "no"), nil},

		// keys and several problems at once
		{"unknown key", c, with(customer, "storage_alloted", "5"), []string{"storage_alloted"}},
		{"every problem reported", c, map[string]string{"activation_status": "x", "throttle_mode": "y"},
			[]string{"activation_status", "reseller_name", "storage_allotted", "throttle_mode"}},

		// lifecycle actions accept the settings of either signup
		{"suspend with customer settings", events.Suspend, with(throttled, "retrieve_pass_key", "yes"), nil},
		{"suspend with reseller settings", events.Suspend, reseller, nil},
		{"change package checks formats", events.ChangePackage, with(reseller, "throttle_from", "2400"), []string{"throttle_from"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := storegrid.ValidateSettings(tt.action, tt.settings)
			if got := badFields(t, err); !slices.Equal(got, tt.bad) {
				t.Fatalf("ValidateSettings(%s, %v) names %v, want %v; err: %v", tt.action, tt.settings, got, tt.bad, err)
			}
			if err != nil && !errors.Is(err, storegrid.ErrInvalidSettings) {
				t.Fatalf("error does not match ErrInvalidSettings: %v", err)
			}
			for _, f := range tt.bad {
				if !strings.Contains(err.Error(), strconv.Quote(f)) {
					t.Fatalf("error text %q does not name %q", err, f)
				}
			}
		})
	}
}

func TestValidateSettingsUnknownAction(t *testing.T) {
	err := storegrid.ValidateSettings("signup_wizard", map[string]string{"storage_allotted": "1"})
	if !errors.Is(err, storegrid.ErrInvalidSettings) {
		t.Fatalf("unknown action: %v, want ErrInvalidSettings", err)
	}
}
