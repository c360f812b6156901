package codeguard

import (
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
)

// Issue 8 point 5: phone-cc and phone come from WHMCS's phonecc and
// phonenumber (GetClientsDetails, lib/Client.php formatPhoneNumber in 8.7:
// phonenumber = the national digits, phonecc = the calling code,
// telephoneNumber / phonenumberformatted = "+CC.NUMBER"), never from a
// country table.
func TestSplitPhone(t *testing.T) {
	for _, tc := range []struct {
		name              string
		cl                events.Client
		cc, phone, errHas string
	}{
		{"WHMCS phonecc + phonenumber", events.Client{PhoneCC: "44", PhoneNumber: "2071234567", Country: "GB"}, "44", "2071234567", ""},
		{"phonecc with a trunk zero", events.Client{PhoneCC: "44", PhoneNumber: "02071234567", Country: "GB"}, "44", "2071234567", ""},
		{"Italy keeps its zero", events.Client{PhoneCC: "39", PhoneNumber: "0612345678", Country: "IT"}, "39", "0612345678", ""},
		{"telephoneNumber +CC.NUMBER", events.Client{PhoneNumber: "+44.1234567890", Country: "GB"}, "44", "1234567890", ""},
		{"calling code differs from the country", events.Client{PhoneCC: "1", PhoneNumber: "5551234567", Country: "GB"}, "1", "5551234567", ""},
		{"+CC.NUMBER of another country", events.Client{PhoneNumber: "+91.98 7654 3210", Country: "GB"}, "91", "9876543210", ""},
		{"+CC without a dot, phonecc given", events.Client{PhoneCC: "44", PhoneNumber: "+44 20 7123 4567"}, "44", "2071234567", ""},
		{"no phone at all", events.Client{Country: "DE"}, "1", "0000000000", ""},
		{"no calling code", events.Client{ID: 7, PhoneNumber: "020 7123 4567", Country: "GB"}, "", "", `"phonecc" is missing`},
		{"+ without a dot or phonecc", events.Client{ID: 7, PhoneNumber: "+442071234567", Country: "GB"}, "", "", `"phonecc" is missing`},
		{"no digits", events.Client{ID: 7, PhoneCC: "44", PhoneNumber: "n/a"}, "", "", `"phonenumber" holds no digits`},
	} {
		cc, phone, err := splitPhone(tc.cl)
		switch {
		case tc.errHas != "":
			if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: err %v, want a permanent error containing %q", tc.name, err, tc.errHas)
			}
		case err != nil || cc != tc.cc || phone != tc.phone:
			t.Errorf("%s: splitPhone = %q, %q, %v; want %q, %q", tc.name, cc, phone, err, tc.cc, tc.phone)
		}
	}
}

func TestFitPassword(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"Ab3_efghij", "Ab3_efghij"},                    // fits: sent as it is
		{"abcdefghijklmnopqrstuvwx", "abcdefghijkaA1_"}, // too long
		{"Zq-8_x-Y9pLmN0aB2cD4eF6g", "Zq.8_x.Y9pLaA1_"}, // '-' becomes '.'
		{"short", "shortaA1_"},                          // too short, still 9
		{"pässwörd!&'ok12", "psswrdok12aA1_"},           // unusual symbols dropped
	} {
		got := fitPassword(tc.in)
		if got != tc.want {
			t.Errorf("fitPassword(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !fits(got) {
			t.Errorf("fitPassword(%q) = %q does not fit the policy", tc.in, got)
		}
		if fitPassword(tc.in) != got {
			t.Errorf("fitPassword(%q) is not deterministic", tc.in)
		}
	}
}

func TestSignupFieldsPlaceholders(t *testing.T) {
	f, err := signupFields(events.Client{Email: " Grace@Example.com ", Country: "us"}, "Abcdefgh1_", "")
	// state: "Not Applicable", the value LogicBoxes documents for no state (issue 8 point 5)
	want := CustomerSignup{Username: "grace@example.com", Password: "Abcdefgh1_", Name: "Grace", Company: "N/A",
		AddressLine1: "N/A", City: "N/A", State: "Not Applicable", Country: "US", Zipcode: "00000", PhoneCC: "1",
		Phone: "0000000000", LangPref: "en"}
	if err != nil || f != want {
		t.Fatalf("signupFields = %+v\nwant %+v", f, want)
	}
	if s := f.String(); strings.Contains(s, "Abcdefgh1_") {
		t.Fatalf("String() shows the password: %s", s)
	}
}

func TestNotFoundPhrases(t *testing.T) {
	for msg, want := range map[string]bool{
		"Website doesn't exist for example.com":  true,
		"No Entity found for Entityid: 5":        true,
		"Customer ada@example.com not found":     true,
		"Invalid plan-id 7":                      false,
		"Authentication failed: invalid api-key": false,
	} {
		if got := isNotFound(&APIError{Path: PathOrderID, HTTPStatus: 400, Message: msg}); got != want {
			t.Errorf("isNotFound(%q) = %v, want %v", msg, got, want)
		}
	}
}
