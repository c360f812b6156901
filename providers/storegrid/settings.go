package storegrid

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/storegrid/internal/sgwire"
)

// Catalog setting keys: one per field of the WHMCS module (seed 001). Their
// rules are listed in the package documentation.
const (
	SettingResellerName            = "reseller_name"             // Signup Customer only: the reseller customers are created under
	SettingActivationStatus        = "activation_status"         // yes|no, default yes
	SettingAutoAuthorization       = "auto_authorization"        // yes|no, default yes
	SettingStorageAllotted         = "storage_allotted"          // bytes, positive integer, required
	SettingStorageLocation         = "storage_location"          // optional; empty = the server assigns one
	SettingConsolidatedReport      = "consolidated_report"       // yes|no, default no; Signup Customer only
	SettingConsolidatedReportEmail = "consolidated_report_email" // comma-separated emails; required with consolidated_report=yes
	SettingAutoMCAL                = "auto_mcal"                 // yes|no, default yes
	SettingAllotMCAL               = "allot_mcal"                // positive integer; required with auto_mcal=no
	SettingBandwidthThrottling     = "bandwidth_throttling"      // global|new, default global
	SettingThrottleEnabled         = "throttle_enabled"          // yes|no, default no; yes only with bandwidth_throttling=new
	SettingThrottleMode            = "throttle_mode"             // always|scheduled, default always
	SettingThrottleFrom            = "throttle_from"             // HHMM; required when throttling is scheduled
	SettingThrottleTill            = "throttle_till"             // HHMM; required when throttling is scheduled
	SettingRestrictedRate          = "restricted_rate"           // bytes, > 1024 and < 9999 GB; required when throttling is enabled
	SettingSendMail                = "send_mail"                 // yes|no, default no
	SettingRetrievePassKey         = "retrieve_pass_key"         // yes|no, default no; Signup Customer only
)

// settingOrder is the order settings are checked and reported in: the
// module's field order.
var settingOrder = []string{
	SettingResellerName, SettingActivationStatus, SettingAutoAuthorization, SettingStorageAllotted,
	SettingStorageLocation, SettingConsolidatedReport, SettingConsolidatedReportEmail, SettingAutoMCAL,
	SettingAllotMCAL, SettingBandwidthThrottling, SettingThrottleEnabled, SettingThrottleMode,
	SettingThrottleFrom, SettingThrottleTill, SettingRestrictedRate, SettingSendMail, SettingRetrievePassKey,
}

// Byte limits of restricted_rate: more than MinRestrictedRate and less than
// MaxRestrictedRate (9999 GB, with GB = 1024³ bytes).
const (
	MinRestrictedRate int64 = 1024
	MaxRestrictedRate int64 = 9999 << 30
)

// ErrInvalidSettings is matched (errors.Is) by every *SettingError.
var ErrInvalidSettings = errors.New("invalid storegrid product settings")

// SettingError says which catalog setting is wrong and why.
type SettingError struct {
	Field  string
	Reason string
}

// Error names the field.
func (e *SettingError) Error() string { return fmt.Sprintf("setting %q: %s", e.Field, e.Reason) }

// Is makes every SettingError match ErrInvalidSettings.
func (e *SettingError) Is(target error) bool { return target == ErrInvalidSettings }

// scope says which fields apply.
type scope int

const (
	scopeReseller scope = iota // Signup Reseller: customer-only fields are refused
	scopeCustomer              // Signup Customer: reseller_name is required
	scopeAny                   // lifecycle actions: the rules common to both
)

func scopeOf(a events.Action) (scope, error) {
	switch {
	case a == events.SignupReseller:
		return scopeReseller, nil
	case a == events.SignupCustomer:
		return scopeCustomer, nil
	case a.Valid():
		return scopeAny, nil
	}
	return 0, fmt.Errorf("%w: unknown action %q", ErrInvalidSettings, a)
}

// ValidateSettings checks a catalog product's module settings for the
// action: SignupReseller or SignupCustomer, for which the product is
// configured; lifecycle actions accept the same settings, checked by the
// rules the two signups share. Every problem is reported (errors.Join), each
// as a *SettingError naming the field; unknown keys are refused, so a typo
// cannot silently drop a setting.
func ValidateSettings(a events.Action, settings map[string]string) error {
	sc, err := scopeOf(a)
	if err != nil {
		return err
	}
	_, err = parseSettings(sc, settings)
	return err
}

// product is a product's settings, parsed.
type product struct {
	reseller string // customers only
	signup   sgwire.Signup
	passKey  bool // retrieve the customer's pass key
}

func parseSettings(sc scope, settings map[string]string) (product, error) {
	var (
		p    product
		errs []error
	)
	bad := func(field, format string, args ...any) {
		errs = append(errs, &SettingError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	get := func(k string) string { return strings.TrimSpace(settings[k]) }
	yesNo := func(k string, def bool) bool {
		switch v := strings.ToLower(get(k)); v {
		case "":
			return def
		case "yes":
			return true
		case "no":
			return false
		default:
			bad(k, "must be yes or no, got %q", settings[k])
			return def
		}
	}
	// posInt parses a positive decimal integer; present reports whether the
	// setting was given at all.
	posInt := func(k string) (n int64, present bool) {
		v := get(k)
		if v == "" {
			return 0, false
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || !isDigits(v) {
			bad(k, "must be a positive whole number, got %q", settings[k])
			return 0, true
		}
		return n, true
	}

	// reseller_name
	p.reseller = get(SettingResellerName)
	switch {
	case sc == scopeCustomer && p.reseller == "":
		bad(SettingResellerName, "is required for Signup Customer (the reseller new customers are created under)")
	case sc == scopeReseller && p.reseller != "":
		bad(SettingResellerName, "applies only to Signup Customer; remove it from a Signup Reseller product")
	case hasControl(p.reseller):
		bad(SettingResellerName, "must not contain control characters")
	}

	s := &p.signup
	s.Active = yesNo(SettingActivationStatus, true)
	s.AutoAuthorization = yesNo(SettingAutoAuthorization, true)

	if n, ok := posInt(SettingStorageAllotted); !ok {
		bad(SettingStorageAllotted, "is required (allotted space in bytes)")
	} else {
		s.StorageAllotted = n
	}

	s.StorageLocation = get(SettingStorageLocation)
	if hasControl(s.StorageLocation) {
		bad(SettingStorageLocation, "must not contain control characters")
	}

	// consolidated_report, consolidated_report_email
	s.ConsolidatedReport = yesNo(SettingConsolidatedReport, false)
	emails := get(SettingConsolidatedReportEmail)
	switch {
	case sc == scopeReseller && s.ConsolidatedReport:
		bad(SettingConsolidatedReport, "applies only to Signup Customer; set it to no or remove it")
	case sc == scopeReseller && emails != "":
		bad(SettingConsolidatedReportEmail, "applies only to Signup Customer; remove it")
	case s.ConsolidatedReport && emails == "":
		bad(SettingConsolidatedReportEmail, "is required when consolidated_report is yes")
	case emails != "":
		list, err := parseEmails(emails)
		if err != nil {
			bad(SettingConsolidatedReportEmail, "%v", err)
		}
		if s.ConsolidatedReport {
			s.ConsolidatedReportEmail = list
		}
	}

	// auto_mcal, allot_mcal
	s.AutoMCAL = yesNo(SettingAutoMCAL, true)
	mcal, ok := posInt(SettingAllotMCAL)
	switch {
	case !s.AutoMCAL && !ok:
		bad(SettingAllotMCAL, "is required when auto_mcal is no")
	case mcal > int64(^uint32(0)>>1):
		bad(SettingAllotMCAL, "is too large: %d", mcal)
	case !s.AutoMCAL:
		s.AllotMCAL = int(mcal)
	}

	// bandwidth_throttling and the throttle details
	switch v := strings.ToLower(get(SettingBandwidthThrottling)); v {
	case "", sgwire.ThrottlingGlobal:
	case sgwire.ThrottlingNew:
		s.BandwidthNew = true
	default:
		bad(SettingBandwidthThrottling, "must be global or new, got %q", settings[SettingBandwidthThrottling])
	}
	throttle := yesNo(SettingThrottleEnabled, false)
	if throttle && !s.BandwidthNew {
		bad(SettingThrottleEnabled, "can be yes only with bandwidth_throttling=new")
	}
	s.ThrottleEnabled = throttle && s.BandwidthNew
	switch v := strings.ToLower(get(SettingThrottleMode)); v {
	case "", sgwire.ThrottleAlways:
	case sgwire.ThrottleScheduled:
		s.ThrottleScheduled = true
	default:
		bad(SettingThrottleMode, "must be always or scheduled, got %q", settings[SettingThrottleMode])
	}
	scheduled := s.ThrottleEnabled && s.ThrottleScheduled
	from, fromOK := hhmm(bad, SettingThrottleFrom, get(SettingThrottleFrom), scheduled)
	till, tillOK := hhmm(bad, SettingThrottleTill, get(SettingThrottleTill), scheduled)
	if fromOK && tillOK && from != "" && from == till {
		bad(SettingThrottleTill, "must differ from throttle_from (%s)", from)
	}
	if scheduled {
		s.ThrottleFrom, s.ThrottleTill = from, till
	}
	rate, ok := posInt(SettingRestrictedRate)
	switch {
	case !ok && s.ThrottleEnabled:
		bad(SettingRestrictedRate, "is required when throttle_enabled is yes")
	case ok && rate > 0 && (rate <= MinRestrictedRate || rate >= MaxRestrictedRate):
		bad(SettingRestrictedRate, "must be more than %d bytes and less than 9999 GB (%d bytes), got %d",
			MinRestrictedRate, MaxRestrictedRate, rate)
	case s.ThrottleEnabled:
		s.RestrictedRate = rate
	}

	s.SendMail = yesNo(SettingSendMail, false)
	p.passKey = yesNo(SettingRetrievePassKey, false)
	if sc == scopeReseller && p.passKey {
		bad(SettingRetrievePassKey, "applies only to Signup Customer; set it to no or remove it")
	}

	var unknown []string
	for k := range settings {
		if !slices.Contains(settingOrder, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		bad(k, "is not a storegrid setting")
	}
	return p, errors.Join(errs...)
}

// hhmm checks a "hundred time hours" value: four digits, hours 00–23,
// minutes 00–59. ok is false when the value is present and wrong.
func hhmm(bad func(string, string, ...any), field, v string, required bool) (string, bool) {
	if v == "" {
		if required {
			bad(field, "is required when throttle_mode is scheduled (HHMM, e.g. 0130)")
		}
		return "", !required
	}
	if len(v) != 4 || !isDigits(v) {
		bad(field, "must be four digits HHMM (e.g. 0130, 1740), got %q", v)
		return "", false
	}
	h, _ := strconv.Atoi(v[:2])
	m, _ := strconv.Atoi(v[2:])
	if h > 23 || m > 59 {
		bad(field, "must be a time of day HHMM with hours 00-23 and minutes 00-59, got %q", v)
		return "", false
	}
	return v, true
}

// parseEmails splits a comma-separated list and checks each address: a bare
// address (no display name), none empty.
func parseEmails(v string) ([]string, error) {
	var out []string
	for i, e := range strings.Split(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("entry %d of the list is empty", i+1)
		}
		a, err := mail.ParseAddress(e)
		if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
			return nil, fmt.Errorf("%q is not an email address", e)
		}
		out = append(out, e)
	}
	return out, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }
