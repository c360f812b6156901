package comettest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/providers/comet/comettest"
)

func newServer(t *testing.T) *comettest.Server {
	t.Helper()
	s := comettest.NewServer()
	t.Cleanup(s.Close)
	return s
}

// post calls op with the server's credentials plus fields, and returns the
// HTTP status and the decoded body.
func post(t *testing.T, s *comettest.Server, op string, fields url.Values) (int, map[string]any, error) {
	t.Helper()
	form := url.Values{"Username": {s.Username}, "AuthType": {"Password"}, "Password": {s.Password}}
	for k, v := range fields {
		form[k] = v
	}
	resp, err := http.PostForm(s.URL+"/api/v1/admin/"+op, form)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m, nil
}

func TestErrorStyles(t *testing.T) {
	s := newServer(t)
	if err := s.AddUser("someone", "password-1"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		setup      func()
		op         string
		fields     url.Values
		wantHTTP   int
		wantStatus float64
		wantMsg    string
	}{
		{"bad credentials", nil, "meta/version", url.Values{"Password": {"nope"}}, 403, 403, "Invalid username or password"},
		{"unknown endpoint", nil, "no-such-api", nil, 404, 404, "Unknown API"},
		{"missing user", nil, "get-user-profile", url.Values{"TargetUser": {"nobody1"}}, 200, 500, "User not found"},
		{"existing user", nil, "add-user", url.Values{"TargetUser": {"someone"}, "TargetPassword": {"password-2"}}, 200, 400, "User already exists"},
		{"stale hash", nil, "set-user-profile-hash", url.Values{"TargetUser": {"someone"}, "ProfileData": {`{"Username":"someone"}`}, "RequireHash": {"old"}}, 200, 400, "hash mismatch"},
		{"missing policy", nil, "policies/get", url.Values{"PolicyID": {"p"}}, 404, 404, "Policy not found"},
		{"injected HTTP", func() { s.FailNext(1, 502) }, "meta/version", nil, 502, 502, "injected failure"},
		{"injected body", func() { s.FailNextBody(1, 400) }, "meta/version", nil, 200, 400, "injected failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			code, body, err := post(t, s, tc.op, tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantHTTP || body["Status"] != tc.wantStatus || !strings.Contains(body["Message"].(string), tc.wantMsg) {
				t.Fatalf("HTTP %d %v, want HTTP %d Status %v %q", code, body, tc.wantHTTP, tc.wantStatus, tc.wantMsg)
			}
		})
	}
	for _, r := range s.Requests() {
		if r.Form.Get("Password") != "REDACTED" || strings.Contains(r.Form.Encode(), "password-2") {
			t.Fatalf("request log holds a secret: %v", r.Form)
		}
	}
}

func TestProfileHashAndConflict(t *testing.T) {
	s := newServer(t)
	if err := s.AddUser("someone", "password-1"); err != nil {
		t.Fatal(err)
	}
	_, got, _ := post(t, s, "get-user-profile-and-hash", url.Values{"TargetUser": {"someone"}})
	hash := got["ProfileHash"].(string)
	prof, _ := json.Marshal(got["Profile"])
	s.ConflictNext()
	_, rep, _ := post(t, s, "set-user-profile-hash", url.Values{"TargetUser": {"someone"}, "ProfileData": {string(prof)}, "RequireHash": {hash}})
	if rep["Status"] != float64(400) {
		t.Fatalf("write after ConflictNext: %v, want a hash mismatch", rep)
	}
	_, got, _ = post(t, s, "get-user-profile-and-hash", url.Values{"TargetUser": {"someone"}})
	if got["ProfileHash"] == hash || got["Profile"].(map[string]any)["ConcurrentEdits"] == nil {
		t.Fatalf("the concurrent edit did not happen: %v", got)
	}
	prof, _ = json.Marshal(got["Profile"])
	_, rep, _ = post(t, s, "set-user-profile-hash", url.Values{"TargetUser": {"someone"}, "ProfileData": {string(prof)}, "RequireHash": {got["ProfileHash"].(string)}})
	if rep["Status"] != float64(200) || rep["ProfileHash"] == got["ProfileHash"] {
		t.Fatalf("write with the fresh hash: %v, want OK and a new hash", rep)
	}
}

func TestDropAfterEffectAndDelay(t *testing.T) {
	s := newServer(t)
	s.DropAfterEffect()
	if _, _, err := post(t, s, "meta/version", nil); err != nil {
		t.Fatalf("a read was dropped: %v", err)
	}
	_, _, err := post(t, s, "add-user", url.Values{"TargetUser": {"someone"}, "TargetPassword": {"password-1"}})
	if err == nil {
		t.Fatal("add-user answered although the reply should be dropped")
	}
	if s.Created() != 1 || s.Users()[0] != "someone" {
		t.Fatalf("effect not applied: created %d, users %v", s.Created(), s.Users())
	}
	s.Delay(200 * time.Millisecond)
	c := &http.Client{Timeout: 20 * time.Millisecond}
	_, err = c.PostForm(s.URL+"/api/v1/admin/meta/version", url.Values{})
	var ue *url.Error
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("delayed call: %v, want a client timeout", err)
	}
}
