package storegridtest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
)

type reply struct {
	Status  string            `json:"status"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Data    map[string]string `json:"data"`
}

func newServer(t *testing.T) *storegridtest.Server {
	t.Helper()
	s := storegridtest.NewServer()
	t.Cleanup(s.Close)
	return s
}

// post sends one request with the fake's credentials (unless form sets
// them) and decodes the reply.
func post(t *testing.T, s *storegridtest.Server, form url.Values) (int, reply, error) {
	t.Helper()
	if !form.Has("username") {
		form.Set("username", s.Username)
	}
	if !form.Has("password") {
		form.Set("password", s.Password)
	}
	resp, err := http.PostForm(s.URL+"/cgi-bin/sgwhmcs.cgi", form)
	if err != nil {
		return 0, reply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("reply %q is not JSON: %v", b, err)
	}
	return resp.StatusCode, r, nil
}

func form(kv ...string) url.Values {
	f := url.Values{}
	for i := 0; i < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

func TestServer(t *testing.T) {
	s := newServer(t)
	steps := []struct {
		name   string
		form   url.Values
		status int
		code   string // "" = ok
	}{
		{"wrong password", form("action", "getserverinfo", "password", "nope"), 401, "AUTH_FAILED"},
		{"server info", form("action", "getserverinfo"), 200, ""},
		{"unknown action", form("action", "format"), 200, "INVALID_REQUEST"},
		{"customer of missing reseller", form("action", "addcustomer", "resellerName", "r1", "customerName", "c1", "storageAllotted", "10"), 200, "NOT_FOUND"},
		{"add reseller", form("action", "addreseller", "resellerName", "r1", "storageAllotted", "10", "activationStatus", "1"), 200, ""},
		{"add reseller again", form("action", "addreseller", "resellerName", "r1", "storageAllotted", "10"), 200, "ALREADY_EXISTS"},
		{"add without storage", form("action", "addreseller", "resellerName", "r2"), 200, "INVALID_REQUEST"},
		{"unknown parameter", form("action", "addreseller", "resellerName", "r2", "storageAllotted", "1", "quota", "5"), 200, "INVALID_REQUEST"},
		{"bad boolean", form("action", "addreseller", "resellerName", "r2", "storageAllotted", "1", "sendMail", "yes"), 200, "INVALID_REQUEST"},
		{"bad time", form("action", "addreseller", "resellerName", "r2", "storageAllotted", "1", "throttleFrom", "2400"), 200, "INVALID_REQUEST"},
		{"report for a reseller", form("action", "addreseller", "resellerName", "r2", "storageAllotted", "1", "consolidatedReport", "1"), 200, "INVALID_REQUEST"},
		{"add customer", form("action", "addcustomer", "resellerName", "r1", "customerName", "c1", "storageAllotted", "10"), 200, ""},
		{"customer under another reseller", form("action", "getcustomer", "resellerName", "r9", "customerName", "c1"), 200, "NOT_FOUND"},
		{"deactivate customer", form("action", "deactivatecustomer", "resellerName", "r1", "customerName", "c1"), 200, ""},
		{"edit activation refused", form("action", "editcustomer", "resellerName", "r1", "customerName", "c1", "activationStatus", "1"), 200, "INVALID_REQUEST"},
		{"edit customer", form("action", "editcustomer", "resellerName", "r1", "customerName", "c1", "storageAllotted", "20"), 200, ""},
		{"activate missing", form("action", "activatereseller", "resellerName", "nobody"), 200, "NOT_FOUND"},
	}
	for _, st := range steps {
		status, r, err := post(t, s, st.form)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		wantStatus := "ok"
		if st.code != "" {
			wantStatus = "error"
		}
		if status != st.status || r.Status != wantStatus || r.Code != st.code {
			t.Fatalf("%s: HTTP %d %+v, want HTTP %d status %s code %q", st.name, status, r, st.status, wantStatus, st.code)
		}
	}
	c, ok := s.Account("c1")
	if !ok || c.Kind != storegridtest.KindCustomer || c.Reseller != "r1" || c.Active || c.Fields["storageAllotted"] != "20" || c.PassKey == "" {
		t.Fatalf("customer c1 = %+v", c)
	}
	_, r, _ := post(t, s, form("action", "getcustomer", "resellerName", "r1", "customerName", "c1"))
	if r.Data["activationStatus"] != "0" || r.Data["customerName"] != "c1" || r.Data["storageAllotted"] != "20" {
		t.Fatalf("getcustomer data %v", r.Data)
	}
	_, r, _ = post(t, s, form("action", "getcustomerpasskey", "resellerName", "r1", "customerName", "c1"))
	if r.Data["passKey"] != c.PassKey {
		t.Fatalf("pass key reply %v, want %q", r.Data, c.PassKey)
	}
	if s.Created() != 2 || len(s.Accounts()) != 2 {
		t.Fatalf("created %d, accounts %v", s.Created(), s.Accounts())
	}
	for _, req := range s.Requests() {
		if req.Params.Has("password") {
			t.Fatalf("request log holds a password: %v", req.Params)
		}
	}
	if reqs := s.Requests(); reqs[0].Status != 401 || reqs[0].Action != "getserverinfo" {
		t.Fatalf("first logged request %+v", reqs[0])
	}
}

func TestServerWrongPathAndMethod(t *testing.T) {
	s := newServer(t)
	resp, err := http.PostForm(s.URL+"/api", form("action", "getserverinfo", "username", s.Username, "password", s.Password))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("wrong path: HTTP %d, want 404", resp.StatusCode)
	}
	resp, err = http.Get(s.URL + "/cgi-bin/sgwhmcs.cgi?action=getserverinfo&username=" + s.Username + "&password=" + s.Password)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("GET with credentials in the URL: HTTP %d, want 400", resp.StatusCode)
	}
}

func TestServerFaults(t *testing.T) {
	s := newServer(t)
	s.FailNext(2, 503)
	for range 2 {
		if status, r, _ := post(t, s, form("action", "getserverinfo")); status != 503 || r.Code != "INJECTED_FAILURE" {
			t.Fatalf("injected failure: HTTP %d %+v", status, r)
		}
	}
	if status, _, _ := post(t, s, form("action", "getserverinfo")); status != 200 {
		t.Fatalf("after the failures: HTTP %d", status)
	}
	s.FailNextReply(1, 200, "SERVER_BUSY", "busy")
	if _, r, _ := post(t, s, form("action", "getserverinfo")); r.Code != "SERVER_BUSY" {
		t.Fatalf("injected busy reply: %+v", r)
	}

	// A read is not state-changing: the drop waits for the add.
	s.DropAfterEffect()
	if status, _, err := post(t, s, form("action", "getreseller", "resellerName", "r1")); err != nil || status != 200 {
		t.Fatalf("read while a drop is armed: %d %v", status, err)
	}
	_, _, err := post(t, s, form("action", "addreseller", "resellerName", "r1", "storageAllotted", "1"))
	if err == nil {
		t.Fatal("the add was answered although the connection was to be dropped")
	}
	if _, ok := s.Account("r1"); !ok || s.Created() != 1 {
		t.Fatal("the dropped add was not applied")
	}
	reqs := s.Requests()
	if last := reqs[len(reqs)-1]; !last.Dropped || last.Action != "addreseller" {
		t.Fatalf("last request %+v, want a dropped addreseller", last)
	}

	s.Delay(300 * time.Millisecond)
	client := &http.Client{Timeout: 50 * time.Millisecond}
	_, err = client.PostForm(s.URL+"/cgi-bin/sgwhmcs.cgi", form("action", "getserverinfo", "username", s.Username, "password", s.Password))
	var ue *url.Error
	if !errors.As(err, &ue) || !ue.Timeout() {
		t.Fatalf("delayed reply: %v, want a client timeout", err)
	}
	s.Delay(0)
	if status, _, _ := post(t, s, form("action", "getserverinfo")); status != 200 {
		t.Fatalf("after the delay is off: HTTP %d", status)
	}
}
