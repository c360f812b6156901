package codeguardtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
)

type client struct {
	t   *testing.T
	srv *codeguardtest.Server
}

func newClient(t *testing.T) client {
	t.Helper()
	srv := codeguardtest.NewServer()
	t.Cleanup(srv.Close)
	return client{t, srv}
}

// do sends a request with the fake's credentials (unless params overrides
// them) and returns the status and body.
func (c client) do(method, path string, params url.Values) (int, string) {
	c.t.Helper()
	q := url.Values{"auth-userid": {c.srv.AuthUserID}, "api-key": {c.srv.APIKey}}
	for k, v := range params {
		q[k] = v
	}
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, c.srv.URL+"/"+path+"?"+q.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, c.srv.URL+"/"+path, strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func isError(body string) bool {
	var m map[string]string
	return json.Unmarshal([]byte(body), &m) == nil && m["status"] == "ERROR" && m["message"] != ""
}

func TestMethodsAndAuth(t *testing.T) {
	c := newClient(t)
	for _, tc := range []struct {
		name, method, path string
		params             url.Values
		status             int
	}{
		{"read with POST", "POST", "codeguard/details.json", url.Values{"order-id": {"1"}}, 405},
		{"write with GET", "GET", "codeguard/add.json", nil, 405},
		{"wrong api key", "GET", "products/plan-details.json", url.Values{"api-key": {"nope"}}, 403},
		{"wrong user id", "GET", "products/plan-details.json", url.Values{"auth-userid": {"1"}}, 403},
		{"unknown order", "GET", "codeguard/details.json", url.Values{"order-id": {"1"}}, 400},
		{"no customer", "GET", "customers/details.json", url.Values{"username": {"x@example.com"}}, 400},
		{"no order for domain", "GET", "codeguard/orderid.json", url.Values{"domain-name": {"example.com"}}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := c.do(tc.method, tc.path, tc.params)
			if status != tc.status || !isError(body) {
				t.Fatalf("%s %s = %d %s; want %d with an error object", tc.method, tc.path, status, body, tc.status)
			}
		})
	}
	if status, body := c.do("GET", "codeguard/nothing.json", nil); status != 404 || isError(body) {
		t.Fatalf("unknown path = %d %s", status, body)
	}
}

func TestReplyShapes(t *testing.T) {
	c := newClient(t)
	status, body := c.do("POST", "customers/signup.json", url.Values{
		"username": {"ada@example.com"}, "passwd": {"Abcdefgh1_"}, "name": {"Ada"}, "company": {"N/A"},
		"address-line-1": {"1 Way"}, "city": {"London"}, "state": {"N/A"}, "country": {"GB"}, "zipcode": {"N1"},
		"phone-cc": {"44"}, "phone": {"2071234567"}, "lang-pref": {"en"}})
	if status != 200 || body != "20000001" {
		t.Fatalf("signup = %d %s, want a bare customer id", status, body)
	}
	status, body = c.do("POST", "codeguard/add.json", url.Values{"domain-name": {"example.com"}, "customer-id": {body},
		"plan-id": {"229"}, "months": {"12"}, "invoice-option": {"NoInvoice"}})
	var act map[string]any
	if status != 200 || json.Unmarshal([]byte(body), &act) != nil {
		t.Fatalf("add = %d %s", status, body)
	}
	for _, k := range []string{"entityid", "eaqid", "actionstatus", "actiontype", "actiontypedesc", "actionstatusdesc", "description"} {
		if _, ok := act[k].(string); !ok {
			t.Errorf("add reply lacks string %s: %s", k, body)
		}
	}
	if _, ok := act["invoiceid"]; ok {
		t.Errorf("NoInvoice add reply carries invoice fields: %s", body)
	}
	if status, body = c.do("GET", "codeguard/orderid.json", url.Values{"domain-name": {"example.com"}}); body != "80000001" {
		t.Fatalf("orderid = %d %s, want a bare number", status, body)
	}
	_, body = c.do("GET", "codeguard/details.json", url.Values{"order-id": {"80000001"}})
	var det map[string]any
	_ = json.Unmarshal([]byte(body), &det)
	if det["currentstatus"] != "Active" || det["endtime"] == nil || det["planid"] != "229" {
		t.Fatalf("details = %s", body)
	}
	if _, ok := det["endtime"].(string); !ok {
		t.Fatalf("endtime is not a string: %s", body)
	}
	if c.srv.Created() != 1 {
		t.Fatalf("created = %d", c.srv.Created())
	}
	for _, r := range c.srv.Requests() {
		if r.Params.Has("api-key") || (r.Params.Has("passwd") && r.Params.Get("passwd") != "[REDACTED]") {
			t.Fatalf("request log holds a secret: %v", r.Params)
		}
	}
}

func TestFaults(t *testing.T) {
	c := newClient(t)
	c.srv.FailNext(2, 503)
	for range 2 {
		if status, body := c.do("GET", "products/plan-details.json", nil); status != 503 || !isError(body) {
			t.Fatalf("FailNext: %d %s", status, body)
		}
	}
	if status, _ := c.do("GET", "products/plan-details.json", nil); status != 200 {
		t.Fatalf("after FailNext: %d", status)
	}

	id := c.srv.AddCustomer("ada@example.com", "Ada")
	c.srv.DropAfterEffect()
	// GETs are answered normally while a drop is armed.
	if status, _ := c.do("GET", "customers/details.json", url.Values{"username": {"ada@example.com"}}); status != 200 {
		t.Fatalf("details while a drop is armed: %d", status)
	}
	q := url.Values{"auth-userid": {c.srv.AuthUserID}, "api-key": {c.srv.APIKey}, "domain-name": {"example.com"},
		"customer-id": {itoa(id)}, "plan-id": {"229"}, "months": {"12"}, "invoice-option": {"NoInvoice"}}
	resp, err := http.PostForm(c.srv.URL+"/codeguard/add.json", q)
	if err == nil {
		resp.Body.Close()
		t.Fatal("dropped request got a reply")
	}
	if c.srv.Created() != 1 {
		t.Fatalf("the dropped add did not take effect: created %d", c.srv.Created())
	}

	c.srv.Delay(200 * time.Millisecond)
	start := time.Now()
	c.do("GET", "products/plan-details.json", nil)
	if time.Since(start) < 200*time.Millisecond {
		t.Fatal("Delay did not delay")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
