package codeguard

import (
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
)

func TestSplitPhone(t *testing.T) {
	for _, tc := range []struct {
		raw, country, cc, phone string
	}{
		{"+44.2071234567", "GB", "44", "2071234567"},
		{"+1.5551234567", "US", "1", "5551234567"},
		{"+91.98 7654 3210", "IN", "91", "9876543210"},
		{"+44 20 7123 4567", "GB", "44", "2071234567"},
		{"020 7123 4567", "GB", "44", "02071234567"},
		{"555-123-4567", "", "1", "5551234567"},
		{"", "DE", "49", "0000000000"},
		{"", "", "1", "0000000000"},
		{"+.", "FR", "33", "0000000000"},
	} {
		cc, phone := splitPhone(tc.raw, tc.country)
		if cc != tc.cc || phone != tc.phone {
			t.Errorf("splitPhone(%q, %q) = %q, %q; want %q, %q", tc.raw, tc.country, cc, phone, tc.cc, tc.phone)
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
	f := signupFields(events.Client{Email: " Grace@Example.com ", Country: "us"}, "Abcdefgh1_", "")
	want := CustomerSignup{Username: "grace@example.com", Password: "Abcdefgh1_", Name: "Grace", Company: "N/A",
		AddressLine1: "N/A", City: "N/A", State: "N/A", Country: "US", Zipcode: "00000", PhoneCC: "1",
		Phone: "0000000000", LangPref: "en"}
	if f != want {
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
