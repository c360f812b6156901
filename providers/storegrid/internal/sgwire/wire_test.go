package sgwire

import (
	"errors"
	"net/url"
	"slices"
	"testing"
)

func TestDecodeReply(t *testing.T) {
	tests := []struct {
		body string
		ok   bool // decodes
		busy bool
	}{
		{`{"status":"ok"}`, true, false},
		{`{"status":"ok","data":{"passKey":"x"}}`, true, false},
		{`{"status":"error","code":"NOT_FOUND","message":"gone"}`, true, false},
		{`{"status":"error","code":"SERVER_BUSY"}`, true, true},
		{`{"status":"error","message":"Server Busy"}`, true, true},
		{`{"status":"error"}`, false, false},
		{`{"status":"fine"}`, false, false},
		{`{"status":"ok","data":{"n":1}}`, false, false},
		{`<html></html>`, false, false},
		{``, false, false},
	}
	for _, tt := range tests {
		r, err := DecodeReply([]byte(tt.body))
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrUnrecognised)) {
			t.Errorf("DecodeReply(%s) error %v, want decoded %v", tt.body, err, tt.ok)
		}
		if err == nil && r.Busy() != tt.busy {
			t.Errorf("DecodeReply(%s).Busy() = %v", tt.body, r.Busy())
		}
	}
}

func TestActionsAndDiffers(t *testing.T) {
	for _, k := range []Kind{Reseller, Customer} {
		for _, v := range []Verb{Get, Add, Edit, Activate, Deactivate} {
			a := Action(k, v)
			gk, gv, ok := Lookup(a)
			if a == "" || !ok || gk != k || gv != v {
				t.Errorf("Action(%s, %s) = %q does not look up back", k, v, a)
			}
			if StateChanging(a) != (v != Get) {
				t.Errorf("StateChanging(%s) = %v", a, StateChanging(a))
			}
		}
	}
	if Action(Reseller, PassKey) != "" || StateChanging(Action(Customer, PassKey)) || StateChanging(ActionServerInfo) {
		t.Error("pass key and server info must be reads, pass key customers only")
	}
	want := url.Values{"a": {"1"}, "b": {"2"}, "c": {"3"}}
	if d := Differs(want, map[string]string{"a": "1", "b": "9", "x": "y"}); !slices.Equal(d, []string{"b", "c"}) {
		t.Errorf("Differs = %v, want [b c]", d)
	}
	if r := Redact(NewForm("x", "u", "p")); r.Has(ParamPassword) || r.Get(ParamUsername) != "u" {
		t.Errorf("Redact = %v", r)
	}
}
