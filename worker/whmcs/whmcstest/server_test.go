package whmcstest

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func post(t *testing.T, s *Server, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(s.URL, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, m
}

func TestServer(t *testing.T) {
	s := NewServer()
	t.Cleanup(s.Close)
	auth := func(v url.Values) url.Values {
		v.Set("identifier", s.Identifier)
		v.Set("secret", s.Secret)
		v.Set("responsetype", "json")
		return v
	}
	cf := base64.StdEncoding.EncodeToString([]byte(`a:1:{i:7;s:4:"PK-1";}`))
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantResult string
		wantMsg    string
	}{
		{"bad secret", url.Values{"identifier": {s.Identifier}, "secret": {"x"}, "responsetype": {"json"}, "action": {"LogActivity"}},
			403, "error", "Authentication Failed"},
		{"no responsetype", url.Values{"identifier": {s.Identifier}, "secret": {s.Secret}, "action": {"LogActivity"}}, 400, "error", "responsetype"},
		{"unknown action", auth(url.Values{"action": {"Nope"}}), 200, "error", "Command Not Found"},
		{"Module action", auth(url.Values{"action": {"ModuleCreate"}, "serviceid": {"1"}}), 200, "error", "must never"},
		{"note needs a client", auth(url.Values{"action": {"AddClientNote"}, "notes": {"x"}}), 200, "error", "Client ID"},
		{"note needs text", auth(url.Values{"action": {"AddClientNote"}, "userid": {"3"}}), 200, "error", "Notes can not be empty"},
		{"note", auth(url.Values{"action": {"AddClientNote"}, "userid": {"3"}, "notes": {"hi"}, "sticky": {"1"}}), 200, "success", ""},
		{"bad status", auth(url.Values{"action": {"UpdateClientProduct"}, "serviceid": {"4"}, "status": {"Alive"}}), 200, "error", "Invalid status"},
		{"update product", auth(url.Values{"action": {"UpdateClientProduct"}, "serviceid": {"4"}, "status": {"Active"}}), 200, "success", ""},
		{"bad customfields", auth(url.Values{"action": {"UpdateClient"}, "clientid": {"3"}, "customfields": {"bm9wZQ=="}}), 200, "error", "customfields"},
		{"customfields", auth(url.Values{"action": {"UpdateClient"}, "clientid": {"3"}, "customfields": {cf}}), 200, "success", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := post(t, s, tt.form)
			if status != tt.wantStatus || m["result"] != tt.wantResult {
				t.Errorf("status %d result %v (%v), want %d %s", status, m["result"], m["message"], tt.wantStatus, tt.wantResult)
			}
			if msg, _ := m["message"].(string); !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("message %q, want %q", msg, tt.wantMsg)
			}
		})
	}
	if n := s.Notes(3); len(n) != 1 || !n[0].Sticky || n[0].Text != "hi" {
		t.Errorf("notes = %+v", n)
	}
	if p, _ := s.Product(4); p.Status != "Active" {
		t.Errorf("product = %+v", p)
	}
	if f := s.CustomFields(3); f[7] != "PK-1" {
		t.Errorf("fields = %v", f)
	}
	for _, c := range s.Calls() {
		if c.Params.Has("secret") || c.Params.Has("identifier") {
			t.Errorf("call %s records credentials", c.Action)
		}
	}
	resp, err := http.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET = %d", resp.StatusCode)
	}
}

func TestUnserialize(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{`a:0:{}`, map[string]string{}, false},
		{`a:2:{i:7;s:3:"a;b";s:1:"k";i:5;}`, map[string]string{"7": "a;b", "k": "5"}, false},
		{`a:1:{i:7;s:2:"é";}`, map[string]string{"7": "é"}, false},
		{`a:1:{i:7;N;}`, map[string]string{"7": ""}, false},
		{`a:1:{i:7;s:5:"abc";}`, nil, true},
		{`a:2:{i:7;s:1:"a";}`, nil, true},
		{`a:1:{i:7;s:1:"a";}x`, nil, true},
		{`s:1:"a";`, nil, true},
	}
	for _, tt := range tests {
		got, err := Unserialize(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("Unserialize(%s) error = %v", tt.in, err)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("Unserialize(%s)[%s] = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}
