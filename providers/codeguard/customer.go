package codeguard

import (
	"strings"

	"github.com/hookworker/hookworker/events"
)

// Placeholders for required customers/signup.json fields WHMCS may lack.
const (
	placeholder     = "N/A"
	placeholderZip  = "00000"
	placeholderTel  = "0000000000"
	defaultPhoneCC  = "1"
	maxPasswordLen  = 15
	minPasswordLen  = 9
	passwordPadding = "aA1_" // one of each class LogicBoxes requires
)

// callingCodes maps ISO 3166-1 alpha-2 to the country calling code, for
// phone numbers WHMCS stores without the "+CC." prefix.
var callingCodes = map[string]string{
	"US": "1", "CA": "1", "GB": "44", "IE": "353", "DE": "49", "FR": "33", "NL": "31", "BE": "32", "LU": "352",
	"ES": "34", "PT": "351", "IT": "39", "CH": "41", "AT": "43", "DK": "45", "SE": "46", "NO": "47", "FI": "358",
	"PL": "48", "CZ": "420", "GR": "30", "TR": "90", "RU": "7", "UA": "380", "IN": "91", "CN": "86", "JP": "81",
	"KR": "82", "SG": "65", "MY": "60", "ID": "62", "PH": "63", "TH": "66", "VN": "84", "AU": "61", "NZ": "64",
	"ZA": "27", "NG": "234", "KE": "254", "EG": "20", "AE": "971", "SA": "966", "IL": "972", "BR": "55", "MX": "52",
	"AR": "54", "CL": "56", "CO": "57", "PK": "92", "BD": "880", "HK": "852", "TW": "886",
}

// splitPhone turns a WHMCS phone number into LogicBoxes phone-cc and phone.
// WHMCS's formatted numbers look like "+44.2071234567"; a number without the
// dot takes its calling code from a leading "+" matching the client's
// country, else from the country alone. Missing parts get placeholders.
func splitPhone(raw, country string) (cc, phone string) {
	raw = strings.TrimSpace(raw)
	cc = callingCodes[strings.ToUpper(country)]
	if strings.HasPrefix(raw, "+") {
		if a, b, ok := strings.Cut(raw[1:], "."); ok && digits(a) != "" {
			return digits(a), orDefault(digits(b), placeholderTel)
		}
		d := digits(raw)
		if cc != "" && strings.HasPrefix(d, cc) && len(d) > len(cc) {
			return cc, d[len(cc):]
		}
		if cc == "" {
			cc = defaultPhoneCC
		}
		return cc, orDefault(d, placeholderTel)
	}
	if cc == "" {
		cc = defaultPhoneCC
	}
	return cc, orDefault(digits(raw), placeholderTel)
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return strings.TrimSpace(s)
}

// signupFields builds customers/signup.json fields from the WHMCS client.
func signupFields(cl events.Client, password, lang string) CustomerSignup {
	username := strings.ToLower(strings.TrimSpace(cl.Email))
	name := strings.TrimSpace(cl.FirstName + " " + cl.LastName)
	if name == "" {
		local, _, _ := strings.Cut(strings.TrimSpace(cl.Email), "@")
		name = local
	}
	country := strings.ToUpper(strings.TrimSpace(cl.Country))
	cc, phone := splitPhone(cl.PhoneNumber, country)
	if l := strings.ToLower(strings.TrimSpace(cl.Language)); lang == "" && langPref.MatchString(l) {
		lang = l
	}
	return CustomerSignup{
		Username:     username,
		Password:     fitPassword(password),
		Name:         name,
		Company:      orDefault(cl.CompanyName, placeholder),
		AddressLine1: orDefault(cl.Address1, placeholder),
		AddressLine2: strings.TrimSpace(cl.Address2),
		City:         orDefault(cl.City, placeholder),
		State:        orDefault(cl.State, placeholder),
		Country:      country,
		Zipcode:      orDefault(cl.Postcode, placeholderZip),
		PhoneCC:      cc,
		Phone:        phone,
		LangPref:     orDefault(lang, "en"),
	}
}

// fitPassword makes a password LogicBoxes accepts under both of its
// published policies (8–15 characters, and 9–16 characters; lower, upper,
// digit and a symbol from the set both allow). A password that already
// fits is sent as it is; otherwise the first 11 characters (with '-' as '.'
// and other symbols dropped) get "aA1_" appended. The result is a pure
// function of the input, so a retried signup sends the same password.
func fitPassword(p string) string {
	if fits(p) {
		return p
	}
	var b strings.Builder
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.':
			b.WriteRune(r)
		case r == '-':
			b.WriteRune('.')
		}
		if b.Len() == maxPasswordLen-len(passwordPadding) {
			break
		}
	}
	return b.String() + passwordPadding
}

func fits(p string) bool {
	if len(p) < minPasswordLen || len(p) > maxPasswordLen {
		return false
	}
	var lower, upper, digit, sym bool
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= '0' && r <= '9':
			digit = true
		case strings.ContainsRune("@#$%_.*+", r):
			sym = true
		default:
			return false
		}
	}
	return lower && upper && digit && sym
}
