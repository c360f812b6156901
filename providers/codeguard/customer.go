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

// stateNotApplicable is the state LogicBoxes documents for an address
// without one; drzigman/WWW-LogicBoxes (lib/WWW/LogicBoxes/Role/Command/
// Customer.pm @748735e, create_customer) sends it the same way.
const stateNotApplicable = "Not Applicable"

// italyCC is the one calling code whose numbers keep their leading zero.
const italyCC = "39"

// splitPhone turns a WHMCS client's phone into LogicBoxes phone-cc and
// phone the way WHMCS itself splits it (lib/Client.php formatPhoneNumber,
// WHMCS 8.7): the calling code is WHMCS's "phonecc" (which WHMCS derives
// from the client's country when the number has no prefix), else the part
// of a "+CC.NUMBER" number (WHMCS's telephoneNumber / phonenumberformatted)
// before the dot; the number is its digits, without leading zeros except
// for Italy. No calling code is guessed: a number without one is a
// permanent error naming the field. A client without any phone number gets
// the placeholders LogicBoxes accepts.
func splitPhone(cl events.Client) (cc, phone string, err error) {
	raw := strings.TrimSpace(cl.PhoneNumber)
	cc = digits(cl.PhoneCC)
	number := raw
	if strings.HasPrefix(raw, "+") {
		if a, b, ok := strings.Cut(raw[1:], "."); ok && digits(a) != "" {
			if cc == "" {
				cc = digits(a)
			}
			number = b
		} else if d := digits(raw); cc != "" && strings.HasPrefix(d, cc) && len(d) > len(cc) {
			number = d[len(cc):]
		} else {
			cc, number = "", d
		}
	}
	phone = digits(number)
	if cc != italyCC {
		phone = strings.TrimLeft(phone, "0")
	}
	switch {
	case phone == "" && raw == "":
		return orDefault(cc, defaultPhoneCC), placeholderTel, nil
	case phone == "":
		return "", "", events.Permanentf(`client %d: field "phonenumber" holds no digits`, cl.ID)
	case cc == "":
		return "", "", events.Permanentf(`client %d: field "phonecc" is missing and field "phonenumber" is not "+CC.NUMBER": no country calling code to send as phone-cc`, cl.ID)
	}
	return cc, phone, nil
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
// It fails (permanently, naming the field) only when the phone cannot be
// split.
func signupFields(cl events.Client, password, lang string) (CustomerSignup, error) {
	username := strings.ToLower(strings.TrimSpace(cl.Email))
	name := strings.TrimSpace(cl.FirstName + " " + cl.LastName)
	if name == "" {
		local, _, _ := strings.Cut(strings.TrimSpace(cl.Email), "@")
		name = local
	}
	country := strings.ToUpper(strings.TrimSpace(cl.Country))
	cc, phone, err := splitPhone(cl)
	if err != nil {
		return CustomerSignup{}, err
	}
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
		State:        orDefault(cl.State, stateNotApplicable),
		Country:      country,
		Zipcode:      orDefault(cl.Postcode, placeholderZip),
		PhoneCC:      cc,
		Phone:        phone,
		LangPref:     orDefault(lang, "en"),
	}, nil
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
