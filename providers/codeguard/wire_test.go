package codeguard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// op builds an operation the way the worker would.
func op(a events.Action, serviceID int, domain string) events.Operation {
	o := events.Operation{
		Key: events.ServiceKey("main", serviceID, a), EventID: "ev-" + string(a), Source: "main", Action: a,
		Provider: codeguard.Name, ProductID: 3, ServiceID: serviceID, ClientID: 7, Domain: domain,
		BillingCycle: "Annually", Months: 12, Reason: "Overdue on Payment",
		Client: &events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", Email: "Ada@Example.com",
			Address1: "1 Engine Way", City: "London", Country: "GB", Postcode: "N1 1AA", PhoneNumber: "+44.2071234567"},
		Settings: map[string]string{"plan_id": "229"},
	}
	if a == events.Renew {
		o.Key = events.RenewalKey("main", serviceID, 900)
	}
	return o
}

// prepared runs Prepare and keeps the plan in the operation.
func prepared(t *testing.T, p *codeguard.Provider, o events.Operation) events.Operation {
	t.Helper()
	plan, err := p.Prepare(testCtx(t), o)
	if err != nil {
		t.Fatalf("Prepare(%s): %v", o.Action, err)
	}
	o.Plan = plan
	return o
}

func apply(t *testing.T, p *codeguard.Provider, o events.Operation) events.Outcome {
	t.Helper()
	out, err := p.Apply(testCtx(t), o)
	if err != nil {
		t.Fatalf("Apply(%s): %v", o.Action, err)
	}
	return out
}

// rawRequest is a request as it arrived on the wire.
type rawRequest struct {
	Method, Path, RawQuery, Body string
}

// recorder wraps a handler and keeps every raw request.
type recorder struct {
	mu   sync.Mutex
	reqs []rawRequest
	next http.Handler
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, rawRequest{r.Method, strings.TrimPrefix(r.URL.Path, "/api/"), r.URL.RawQuery, string(b)})
	rc.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	rc.next.ServeHTTP(w, r)
}

func (rc *recorder) all() []rawRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// recordedFake is a fake behind a recorder of raw requests.
func recordedFake(t *testing.T) (*codeguardtest.Server, *recorder) {
	t.Helper()
	fake := codeguardtest.NewHandler()
	rc := &recorder{next: fake}
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	fake.URL = hs.URL + "/api"
	return fake, rc
}

func TestWirePathsMethodsAndParams(t *testing.T) {
	fake, rc := recordedFake(t)
	p := newProvider(t, fake, nil)
	signup := prepared(t, p, op(events.SignupCustomer, 1, "Example.COM"))
	out := apply(t, p, signup)
	renew := prepared(t, p, op(events.Renew, 1, "example.com"))
	apply(t, p, renew)
	apply(t, p, prepared(t, p, op(events.Suspend, 1, "example.com")))
	apply(t, p, prepared(t, p, op(events.Unsuspend, 1, "example.com")))
	cp := op(events.ChangePackage, 1, "example.com")
	cp.Settings = map[string]string{"plan_id": "231"}
	apply(t, p, prepared(t, p, cp))
	apply(t, p, prepared(t, p, op(events.Terminate, 1, "example.com")))
	if err := p.Check(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	wantMethod := map[string]string{
		codeguard.PathOrderID: "GET", codeguard.PathSearch: "GET", codeguard.PathDetails: "GET",
		codeguard.PathCustomerDetails: "GET", codeguard.PathPlanDetails: "GET",
		codeguard.PathCustomerSignup: "POST", codeguard.PathAdd: "POST", codeguard.PathRenew: "POST",
		codeguard.PathSuspend: "POST", codeguard.PathUnsuspend: "POST", codeguard.PathModify: "POST",
		codeguard.PathDelete: "POST",
	}
	seen := map[string]url.Values{}
	for _, r := range rc.all() {
		want, ok := wantMethod[r.Path]
		if !ok {
			t.Errorf("unexpected path %s", r.Path)
			continue
		}
		if r.Method != want {
			t.Errorf("%s sent with %s, want %s", r.Path, r.Method, want)
		}
		params, err := url.ParseQuery(r.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		if r.Method == "POST" {
			if r.RawQuery != "" {
				t.Errorf("POST %s carries a query %q; parameters (and the api-key) belong in the body", r.Path, r.RawQuery)
			}
			if params, err = url.ParseQuery(r.Body); err != nil {
				t.Fatal(err)
			}
		}
		if params.Get("auth-userid") != fake.AuthUserID || params.Get("api-key") != fake.APIKey {
			t.Errorf("%s lacks auth-userid / api-key", r.Path)
		}
		if _, dup := seen[r.Path]; !dup {
			seen[r.Path] = params
		}
	}
	for path := range wantMethod {
		if _, ok := seen[path]; !ok {
			t.Errorf("no request to %s", path)
		}
	}
	orderID := out.Reference
	for _, c := range []struct {
		path   string
		params map[string]string
	}{
		{codeguard.PathOrderID, map[string]string{"domain-name": "example.com"}},
		{codeguard.PathCustomerDetails, map[string]string{"username": "ada@example.com"}},
		{codeguard.PathCustomerSignup, map[string]string{"username": "ada@example.com", "name": "Ada Lovelace",
			"company": "N/A", "address-line-1": "1 Engine Way", "city": "London", "state": "Not Applicable", "country": "GB",
			"zipcode": "N1 1AA", "phone-cc": "44", "phone": "2071234567", "lang-pref": "en"}},
		{codeguard.PathAdd, map[string]string{"domain-name": "example.com", "customer-id": "20000001",
			"plan-id": "229", "months": "12", "invoice-option": "NoInvoice"}},
		{codeguard.PathRenew, map[string]string{"order-id": orderID, "months": "12", "auto-renew": "false", "invoice-option": "NoInvoice"}},
		{codeguard.PathSuspend, map[string]string{"order-id": orderID, "reason": "Overdue on Payment"}},
		{codeguard.PathUnsuspend, map[string]string{"order-id": orderID}},
		{codeguard.PathModify, map[string]string{"order-id": orderID, "new-plan-id": "231", "months": "12", "invoice-option": "NoInvoice"}},
		{codeguard.PathDelete, map[string]string{"order-id": orderID}},
		{codeguard.PathDetails, map[string]string{"order-id": orderID}},
	} {
		for k, want := range c.params {
			if got := seen[c.path].Get(k); got != want {
				t.Errorf("%s %s = %q, want %q", c.path, k, got, want)
			}
		}
	}
	if seen[codeguard.PathAdd].Has("auto-renew") {
		t.Error("add.json sent auto-renew although auto_renew is not yes")
	}
	if pw := seen[codeguard.PathCustomerSignup].Get("passwd"); len(pw) < 9 || len(pw) > 15 {
		t.Errorf("passwd has %d characters, want 9–15", len(pw))
	}
}

func TestSearchSendsArraysAsRepeatedKeys(t *testing.T) {
	fake, rc := recordedFake(t)
	p := newProvider(t, fake, nil)
	a := fake.AddOrder("a.example", 1, 229, codeguardtest.Active, time.Now())
	b := fake.AddOrder("b.example", 1, 229, codeguardtest.Suspended, time.Now())
	fake.AddOrder("c.example", 1, 229, codeguardtest.Deleted, time.Now())
	res, err := p.Client().Search(testCtx(t), codeguard.SearchRequest{
		Records: 5, Page: 1, OrderIDs: []int64{a, b}, Statuses: []string{"Active", "Suspended"}})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(rc.all()[0].RawQuery)
	if got := q["order-id"]; !slices.Equal(got, []string{strconv.FormatInt(a, 10), strconv.FormatInt(b, 10)}) {
		t.Errorf("order-id sent as %v", got)
	}
	if got := q["status"]; !slices.Equal(got, []string{"Active", "Suspended"}) {
		t.Errorf("status sent as %v", got)
	}
	if q.Get("no-of-records") != "5" || q.Get("page-no") != "1" {
		t.Errorf("paging params %v", q)
	}
	if res.InDB != 2 || len(res.Orders) != 2 || res.Orders[0].OrderID != a || res.Orders[1].Status != "Suspended" ||
		res.Orders[0].Domain != "a.example" || res.Orders[0].EndTime == 0 {
		t.Errorf("search result %+v", res)
	}
}

// canned serves fixed replies by path: status and body.
func canned(t *testing.T, replies map[string]struct {
	status int
	body   string
}) *codeguard.Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep, ok := replies[strings.TrimPrefix(r.URL.Path, "/api/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if rep.status == http.StatusServiceUnavailable || rep.status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(hs.Close)
	c, err := codeguard.NewClient(codeguard.Config{
		Settings:   providers.Settings{URL: hs.URL + "/api", Timeout: 2 * time.Second, MaxConcurrent: 2},
		AuthUserID: "42", APIKey: "sekrit-key-abc",
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type reply = struct {
	status int
	body   string
}

func TestBareAndStringNumbers(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       int64
	}{
		{"bare number", "80000001", 80000001},
		{"bare number with newline", "80000001\n", 80000001},
		{"number in a string", `"80000001"`, 80000001},
		{"float form", "80000001.0", 80000001},
		{"object", `{"entityid":"80000001"}`, 80000001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := canned(t, map[string]reply{
				codeguard.PathOrderID:        {200, tc.body},
				codeguard.PathCustomerSignup: {200, tc.body},
			})
			id, found, err := c.OrderID(testCtx(t), "example.com")
			if err != nil || !found || id != tc.want {
				t.Fatalf("OrderID = %d, %v, %v; want %d", id, found, err, tc.want)
			}
			cid, err := c.SignupCustomer(testCtx(t), codeguard.CustomerSignup{Username: "a@b.c", Password: "x"})
			if err != nil || cid != tc.want {
				t.Fatalf("SignupCustomer = %d, %v; want %d", cid, err, tc.want)
			}
		})
	}
	t.Run("not a number", func(t *testing.T) {
		c := canned(t, map[string]reply{codeguard.PathOrderID: {200, `"abc"`}})
		if _, _, err := c.OrderID(testCtx(t), "example.com"); err == nil || events.ClassOf(err) != events.Permanent {
			t.Fatalf("err = %v, want permanent", err)
		}
	})

	for _, tc := range []struct{ name, body string }{
		{"strings", `{"entityid":"5","currentstatus":"Active","planid":"229","endtime":"1735689600","customerid":"9","recurring":"true"}`},
		{"numbers", `{"entityid":5,"currentstatus":"Active","planid":229,"endtime":1735689600,"customerid":9,"recurring":true}`},
	} {
		t.Run("details with "+tc.name, func(t *testing.T) {
			c := canned(t, map[string]reply{codeguard.PathDetails: {200, tc.body}})
			d, err := c.Details(testCtx(t), 5)
			if err != nil {
				t.Fatal(err)
			}
			want := codeguard.OrderDetails{OrderID: 5, CurrentStatus: "Active", PlanID: 229, EndTime: 1735689600, CustomerID: 9, Recurring: true}
			if d != want {
				t.Fatalf("details = %+v, want %+v", d, want)
			}
		})
	}
	t.Run("bare booleans and success strings from actions", func(t *testing.T) {
		c := canned(t, map[string]reply{
			codeguard.PathSuspend:   {200, "true"},
			codeguard.PathUnsuspend: {200, `"Success: order unsuspended"`},
			codeguard.PathDelete:    {200, "false"},
		})
		if _, err := c.Suspend(testCtx(t), 5, "r"); err != nil {
			t.Errorf("bare true: %v", err)
		}
		if _, err := c.Unsuspend(testCtx(t), 5); err != nil {
			t.Errorf("Success string: %v", err)
		}
		if _, err := c.Delete(testCtx(t), 5); err == nil || events.ClassOf(err) != events.Permanent {
			t.Errorf("bare false: %v, want permanent", err)
		}
	})
	t.Run("pricing with string and number prices", func(t *testing.T) {
		c := canned(t, map[string]reply{codeguard.PathCustomerPrice: {200,
			`{"codeguard":{"plans":{"229":{"add":{"6":1.5,"12":"3.00"},"renew":{"12":"2.50"}}}},"domcno":{}}`}})
		prices, err := c.CustomerPrice(testCtx(t), 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := prices[229]; got.Add[6] != 1.5 || got.Add[12] != 3 || got.Renew[12] != 2.5 {
			t.Fatalf("prices = %+v", prices)
		}
	})
}

func TestErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		class      events.ErrorClass
		msg        string
		retryAfter time.Duration
	}{
		{"ERROR on 200", 200, `{"status":"ERROR","message":"Invalid plan-id"}`, events.Permanent, "Invalid plan-id", 0},
		{"ERROR on 400", 400, `{"status":"ERROR","message":"Invalid plan-id"}`, events.Permanent, "Invalid plan-id", 0},
		{"lowercase error with error key", 200, `{"status":"error","error":"Access denied"}`, events.Permanent, "Access denied", 0},
		{"Error on 403", 403, `{"status":"Error","message":"Authentication failed"}`, events.Permanent, "Authentication failed", 0},
		{"ERROR on 500", 500, `{"status":"ERROR","message":"Internal error"}`, events.Transient, "Internal error", 0},
		{"ERROR on 503 with Retry-After", 503, `{"status":"ERROR","message":"busy"}`, events.Transient, "busy", 7 * time.Second},
		{"ERROR on 429", 429, `{"status":"ERROR","message":"slow down"}`, events.Transient, "slow down", 7 * time.Second},
		{"HTML on 502", 502, `<html>Bad Gateway</html>`, events.Transient, "HTTP 502", 0},
		{"HTML on 401", 401, `<html>Unauthorized</html>`, events.Permanent, "HTTP 401", 0},
		{"echoed api-key is redacted", 400, `{"status":"ERROR","message":"bad api-key sekrit-key-abc"}`, events.Permanent, "[REDACTED]", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := canned(t, map[string]reply{codeguard.PathAdd: {tc.status, tc.body}})
			_, err := c.Add(testCtx(t), codeguard.AddRequest{DomainName: "example.com", CustomerID: 1, PlanID: 229, Months: 12, InvoiceOption: "NoInvoice"})
			if err == nil {
				t.Fatal("no error")
			}
			if got := events.ClassOf(err); got != tc.class {
				t.Errorf("class %s, want %s: %v", got, tc.class, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			if got := events.RetryAfterOf(err); got != tc.retryAfter {
				t.Errorf("retry after %s, want %s", got, tc.retryAfter)
			}
			var ae *codeguard.APIError
			if !errors.As(err, &ae) || ae.HTTPStatus != tc.status || ae.Path != codeguard.PathAdd {
				t.Errorf("APIError = %+v", ae)
			}
			if reply := events.ReplyOf(err); reply == "" {
				t.Error("no reply attached")
			}
			for _, s := range []string{err.Error(), events.ReplyOf(err)} {
				if strings.Contains(s, "sekrit-key-abc") || strings.Contains(s, "api-key=") {
					t.Errorf("secret or request leaked: %q", s)
				}
			}
		})
	}
}

func TestTransportErrorsHoldNoURL(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	base := hs.URL
	hs.Close() // connection refused from now on
	c, err := codeguard.NewClient(codeguard.Config{
		Settings: providers.Settings{URL: base + "/api", Timeout: time.Second, MaxConcurrent: 1}, AuthUserID: "42", APIKey: "sekrit-key-abc"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Details(testCtx(t), 5)
	if err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("err = %v, want transient", err)
	}
	if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "api-key") || strings.Contains(err.Error(), base) {
		t.Fatalf("transport error leaks the request: %v", err)
	}
}

func TestRenewTimeoutThatWentThroughIsNotRepeated(t *testing.T) {
	fake := newFake(t)
	cfg := configFor(fake)
	cfg.Timeout = 300 * time.Millisecond
	p, err := codeguard.New(cfg, passwords(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
	renew := prepared(t, p, op(events.Renew, 1, "example.com"))
	endBefore := renew.Plan["endtime_before"]

	// renew.json's reply comes after the client gave up; the renewal still happens
	fake.DelayOn(codeguard.PathRenew, time.Second)
	_, err = p.Apply(testCtx(t), renew)
	fake.DelayOn(codeguard.PathRenew, 0)
	if err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("timed-out renew = %v, want a transient error", err)
	}
	if !strings.Contains(err.Error(), "took effect") {
		t.Errorf("error does not say the renewal took effect: %v", err)
	}
	if n := fake.Renewals(); n != 1 {
		t.Fatalf("renewals after the timed-out call = %d, want 1", n)
	}
	for range 2 {
		out := apply(t, p, renew)
		if !out.AlreadyDone {
			t.Fatalf("retry after the timeout = %+v, want AlreadyDone", out)
		}
	}
	if _, found, err := p.Lookup(testCtx(t), renew); err != nil || !found {
		t.Fatalf("Lookup(renew) = %v, %v; want found", found, err)
	}
	if n := fake.Renewals(); n != 1 {
		t.Fatalf("renewals = %d, want 1", n)
	}
	if fake.Count(codeguard.PathRenew) != 1 {
		t.Fatalf("renew.json called %d times, want 1", fake.Count(codeguard.PathRenew))
	}
	// A later renewal (a new invoice, prepared afterwards) does renew again.
	next := op(events.Renew, 1, "example.com")
	next.Key = events.RenewalKey("main", 1, 901)
	next = prepared(t, p, next)
	if next.Plan["endtime_before"] == endBefore {
		t.Fatal("the next renewal's plan did not see the new expiry")
	}
	if out := apply(t, p, next); out.AlreadyDone {
		t.Fatal("second invoice's renewal reported AlreadyDone")
	}
	if n := fake.Renewals(); n != 2 {
		t.Fatalf("renewals = %d, want 2", n)
	}
}

func TestRenewNotAppliedIsRetried(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
	renew := prepared(t, p, op(events.Renew, 1, "example.com"))
	fake.FailNextOn(codeguard.PathRenew, 1, 502) // fails before taking effect
	if _, err := p.Apply(testCtx(t), renew); err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("err = %v, want transient", err)
	}
	out := apply(t, p, renew)
	if out.AlreadyDone || out.Details["endtime"] == "" {
		t.Fatalf("renew outcome %+v", out)
	}
	if fake.Renewals() != 1 {
		t.Fatalf("renewals = %d", fake.Renewals())
	}
}

func TestRenewWithoutPlanIsRefused(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
	_, err := p.Apply(testCtx(t), op(events.Renew, 1, "example.com"))
	if err == nil || events.ClassOf(err) != events.Permanent || fake.Renewals() != 0 {
		t.Fatalf("renew without a plan = %v, renewals %d; want a permanent error and no renewal", err, fake.Renewals())
	}
}

func TestExistingOrderIsNotAddedAgain(t *testing.T) {
	for _, tc := range []struct {
		name         string
		noOrderID    bool // codeguard/orderid.json missing: search.json decides
		existing     string
		wantNewOrder bool
	}{
		{"active order", false, codeguardtest.Active, false},
		{"suspended order", false, codeguardtest.Suspended, false},
		{"inactive order", false, codeguardtest.InActive, false},
		{"active order, orderid.json missing", true, codeguardtest.Active, false},
		{"only a deleted order", false, codeguardtest.Deleted, true},
		{"only a deleted order, orderid.json missing", true, codeguardtest.Deleted, true},
		{"no order, orderid.json missing", true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			if tc.noOrderID {
				fake.DisableOrderID()
			}
			var existing int64
			if tc.existing != "" {
				cust := fake.AddCustomer("someone@example.com", "Someone")
				existing = fake.AddOrder("example.com", cust, 230, tc.existing, time.Now().AddDate(1, 0, 0))
			}
			p := newProvider(t, fake, nil)
			o := prepared(t, p, op(events.SignupCustomer, 1, "example.com"))
			_, found, err := p.Lookup(testCtx(t), o)
			if err != nil || found == tc.wantNewOrder {
				t.Fatalf("Lookup = found %v, err %v", found, err)
			}
			out := apply(t, p, o)
			again := apply(t, p, o)
			if tc.wantNewOrder {
				if fake.Created() != 1 || out.AlreadyDone || out.Reference == strconv.FormatInt(existing, 10) {
					t.Fatalf("created %d, outcome %+v; want one new order", fake.Created(), out)
				}
			} else {
				if fake.Created() != 0 || fake.Count(codeguard.PathAdd) != 0 {
					t.Fatalf("add.json called %d times although the domain has an order", fake.Count(codeguard.PathAdd))
				}
				if !out.AlreadyDone || out.Reference != strconv.FormatInt(existing, 10) || out.Details["plan_id"] != "230" {
					t.Fatalf("outcome %+v, want AlreadyDone with order %d", out, existing)
				}
			}
			if again.Reference != out.Reference || !again.AlreadyDone {
				t.Fatalf("second Apply %+v, first %+v", again, out)
			}
		})
	}
}

func TestAddReplyLostIsNotRepeated(t *testing.T) {
	for _, noOrderID := range []bool{false, true} {
		t.Run("orderid.json missing="+strconv.FormatBool(noOrderID), func(t *testing.T) {
			fake := newFake(t)
			if noOrderID {
				fake.DisableOrderID()
			}
			p := newProvider(t, fake, nil)
			o := prepared(t, p, op(events.SignupCustomer, 1, "example.com"))
			fake.DropAfterEffectOn(codeguard.PathAdd)
			if _, err := p.Apply(testCtx(t), o); err == nil || events.ClassOf(err) != events.Transient {
				t.Fatalf("Apply with the add reply lost = %v, want transient", err)
			}
			out := apply(t, p, o)
			if !out.AlreadyDone || fake.Created() != 1 || fake.Count(codeguard.PathAdd) != 1 {
				t.Fatalf("outcome %+v, created %d, add calls %d; want the first order found", out, fake.Created(), fake.Count(codeguard.PathAdd))
			}
		})
	}
}

func TestCustomerReuse(t *testing.T) {
	fake := newFake(t)
	existing := fake.AddCustomer("ada@example.com", "Ada Lovelace")
	p := newProvider(t, fake, nil)
	a := apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "a.example")))
	b := apply(t, p, prepared(t, p, op(events.SignupCustomer, 2, "b.example")))
	if fake.Count(codeguard.PathCustomerSignup) != 0 || len(fake.Customers()) != 1 {
		t.Fatalf("signed up %d customers although one exists", fake.Count(codeguard.PathCustomerSignup))
	}
	want := strconv.FormatInt(existing, 10)
	if a.Details["customer_id"] != want || b.Details["customer_id"] != want {
		t.Fatalf("customer ids %q, %q; want %s", a.Details["customer_id"], b.Details["customer_id"], want)
	}
	if fake.Created() != 2 {
		t.Fatalf("created %d orders, want 2", fake.Created())
	}
}

func TestCustomerSignupReplyLostReusesCustomer(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	o := prepared(t, p, op(events.SignupCustomer, 1, "example.com"))
	fake.DropAfterEffectOn(codeguard.PathCustomerSignup)
	if _, err := p.Apply(testCtx(t), o); err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("err = %v, want transient", err)
	}
	apply(t, p, o)
	if n := len(fake.Customers()); n != 1 {
		t.Fatalf("%d customers, want 1", n)
	}
	if fake.Created() != 1 {
		t.Fatalf("created %d", fake.Created())
	}
}

func TestConcurrentSignupsShareOneCustomer(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, zap.NewNop())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			o := prepared(t, p, op(events.SignupCustomer, 10+i, "site"+strconv.Itoa(i)+".example"))
			if _, err := p.Apply(testCtx(t), o); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(fake.Customers()); n != 1 {
		t.Fatalf("%d customers for one client, want 1", n)
	}
	if fake.Created() != 4 {
		t.Fatalf("created %d orders, want 4", fake.Created())
	}
}

func TestLifecycleResolution(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	for _, tc := range []struct {
		action    events.Action
		wantClass events.ErrorClass // "" = success
		wantIs    error
	}{
		{events.Suspend, events.Permanent, codeguard.ErrNoOrder},
		{events.Unsuspend, events.Permanent, codeguard.ErrNoOrder},
		{events.ChangePackage, events.Permanent, codeguard.ErrNoOrder},
		{events.Terminate, "", nil}, // no order: already terminated
		{events.ChangePassword, events.Permanent, codeguard.ErrUnsupported},
		{events.SignupReseller, events.Permanent, codeguard.ErrUnsupported},
	} {
		t.Run(string(tc.action)+" without an order", func(t *testing.T) {
			out, err := p.Apply(testCtx(t), op(tc.action, 1, "nothing.example"))
			if tc.wantClass == "" {
				if err != nil || !out.AlreadyDone {
					t.Fatalf("Apply = %+v, %v; want AlreadyDone", out, err)
				}
				return
			}
			if err == nil || events.ClassOf(err) != tc.wantClass || !errors.Is(err, tc.wantIs) {
				t.Fatalf("Apply = %v (class %s), want %s and %v", err, events.ClassOf(err), tc.wantClass, tc.wantIs)
			}
		})
	}
	t.Run("change password message", func(t *testing.T) {
		_, err := p.Apply(testCtx(t), op(events.ChangePassword, 1, "example.com"))
		if err == nil || !strings.Contains(err.Error(), "not supported: CodeGuard orders have no password") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing domain", func(t *testing.T) {
		_, err := p.Apply(testCtx(t), op(events.Suspend, 1, ""))
		if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), "no domain") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("states and look-ups", func(t *testing.T) {
		out := apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
		id, _ := strconv.ParseInt(out.Reference, 10, 64)
		steps := []struct {
			a          events.Action
			wantStatus string
			wantDone   bool
		}{
			{events.Unsuspend, codeguardtest.Active, true},
			{events.Suspend, codeguardtest.Suspended, false},
			{events.Suspend, codeguardtest.Suspended, true},
			{events.Unsuspend, codeguardtest.Active, false},
			{events.ChangePackage, codeguardtest.Active, false},
			{events.ChangePackage, codeguardtest.Active, true},
			{events.Terminate, codeguardtest.Deleted, false},
			{events.Terminate, codeguardtest.Deleted, true},
		}
		for _, s := range steps {
			o := op(s.a, 1, "example.com")
			if s.a == events.ChangePackage {
				o.Settings = map[string]string{"plan_id": "232"}
				o.Months = 0 // months from the billing cycle
			}
			o = prepared(t, p, o)
			if _, found, err := p.Lookup(testCtx(t), o); err != nil || found != s.wantDone {
				t.Fatalf("Lookup(%s) = %v, %v; want %v", s.a, found, err, s.wantDone)
			}
			got := apply(t, p, o)
			order, _ := fake.Order(id)
			if got.AlreadyDone != s.wantDone || order.Status != s.wantStatus {
				t.Fatalf("%s: outcome %+v, status %s; want done=%v status %s", s.a, got, order.Status, s.wantDone, s.wantStatus)
			}
			if got.Reference != out.Reference {
				t.Fatalf("%s reference %q, want %q", s.a, got.Reference, out.Reference)
			}
		}
		order, _ := fake.Order(id)
		if order.PlanID != 232 || order.Modifications != 1 {
			t.Fatalf("order after change_package: %+v", order)
		}
		if fake.Count(codeguard.PathSuspend) != 1 || fake.Count(codeguard.PathUnsuspend) != 1 || fake.Count(codeguard.PathDelete) != 1 {
			t.Fatal("an idempotent step called the API again")
		}
		// Suspend of a deleted order is a permanent error, not a silent success.
		if _, err := p.Apply(testCtx(t), op(events.Suspend, 1, "example.com")); err == nil || events.ClassOf(err) != events.Permanent {
			t.Fatalf("suspend of a deleted order = %v", err)
		}
	})
	t.Run("default suspend reason", func(t *testing.T) {
		apply(t, p, prepared(t, p, op(events.SignupCustomer, 2, "reason.example")))
		o := op(events.Suspend, 2, "reason.example")
		o.Reason = ""
		apply(t, p, o)
		reqs := fake.Requests()
		last := reqs[len(reqs)-1]
		if last.Path != codeguard.PathSuspend || strings.TrimSpace(last.Params.Get("reason")) == "" {
			t.Fatalf("last request %+v, want a suspend with a default reason", last)
		}
	})
}

func TestSettingsReachTheWire(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	o := op(events.SignupCustomer, 1, "example.com")
	o.Settings = map[string]string{"plan_id": "230", "invoice_option": "KeepInvoice", "auto_renew": "yes", "lang_pref": "de"}
	o.Months, o.BillingCycle = 0, "Biennially"
	apply(t, p, prepared(t, p, o))
	var add, signup url.Values
	for _, r := range fake.Requests() {
		switch r.Path {
		case codeguard.PathAdd:
			add = r.Params
		case codeguard.PathCustomerSignup:
			signup = r.Params
		}
	}
	if add.Get("plan-id") != "230" || add.Get("invoice-option") != "KeepInvoice" || add.Get("auto-renew") != "true" || add.Get("months") != "24" {
		t.Fatalf("add params %v", add)
	}
	if signup.Get("lang-pref") != "de" {
		t.Fatalf("signup lang-pref %q", signup.Get("lang-pref"))
	}
	o.Months, o.BillingCycle = 0, "One Time"
	o.Domain, o.ServiceID = "other.example", 2
	if _, err := p.Apply(testCtx(t), o); err == nil || events.ClassOf(err) != events.Permanent {
		t.Fatalf("signup without months = %v, want permanent", err)
	}
}

func TestSecretsNeverLoggedOrReturned(t *testing.T) {
	fake := newFake(t)
	core, logs := observer.New(zapcore.DebugLevel)
	p := newProvider(t, fake, zap.New(core))
	pwSrc := passwords(t)
	o := prepared(t, p, op(events.SignupCustomer, 1, "example.com"))
	pw, _ := pwSrc.ServicePassword(context.Background(), o)
	var errs []error
	var outs []events.Outcome

	fake.FailNext(1, 500)
	_, err := p.Apply(testCtx(t), o)
	errs = append(errs, err)
	fake.DropAfterEffectOn(codeguard.PathCustomerSignup)
	_, err = p.Apply(testCtx(t), o)
	errs = append(errs, err)
	out, err := p.Apply(testCtx(t), o)
	errs, outs = append(errs, err), append(outs, out)
	// a customer signup that LogicBoxes rejects
	bad := op(events.SignupCustomer, 2, "bad.example")
	bad.Client = &events.Client{ID: 8, Email: "grace@example.com", Country: "ZZZ"}
	_, err = p.Apply(testCtx(t), bad)
	errs = append(errs, err)
	// wrong credentials
	cfg := configFor(fake)
	cfg.APIKey = "wrong-key-wrong-key"
	wrong, _ := codeguard.New(cfg, pwSrc, zap.New(core))
	errs = append(errs, wrong.Check(testCtx(t)))
	_, err = wrong.Apply(testCtx(t), o)
	errs = append(errs, err)

	sentPw := fake.CustomerPassword(fake.Customers()[0].ID)
	if sentPw == "" {
		t.Fatal("no password reached the fake")
	}
	secrets := []string{fake.APIKey, "wrong-key-wrong-key", pw, sentPw}
	check := func(where, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s contains a secret: %q", where, s)
			}
		}
	}
	for _, e := range logs.All() {
		check("log message", e.Message)
		for k, v := range e.ContextMap() {
			check("log field "+k, k+"="+toString(v))
		}
	}
	for _, err := range errs {
		if err == nil {
			continue
		}
		check("error", err.Error())
		check("error reply", events.ReplyOf(err))
	}
	for _, o := range outs {
		check("outcome", o.Reference)
		for k, v := range o.Details {
			check("outcome detail", k+"="+v)
		}
		for k, v := range o.WriteBack {
			check("outcome write-back", k+"="+v)
		}
	}
	for _, r := range fake.Requests() {
		check("fake request log", r.Params.Encode())
	}
	for _, v := range []any{codeguard.Config{APIKey: fake.APIKey}, codeguard.CustomerSignup{Password: pw}, p, p.Client()} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			check("formatted "+verb, fmt.Sprintf(verb, v))
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing was logged; the test would prove nothing")
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case error:
		return x.Error()
	}
	return fmt.Sprint(v)
}

func TestCheck(t *testing.T) {
	fake := newFake(t)
	if err := newProvider(t, fake, nil).Check(testCtx(t)); err != nil {
		t.Fatalf("Check with good credentials: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*codeguard.Config)
	}{
		{"wrong api key", func(c *codeguard.Config) { c.APIKey = "nope-nope-nope" }},
		{"wrong reseller id", func(c *codeguard.Config) { c.AuthUserID = "999" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configFor(fake)
			tc.mutate(&cfg)
			p, err := codeguard.New(cfg, passwords(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(testCtx(t))
			if err == nil || events.ClassOf(err) != events.Permanent {
				t.Fatalf("Check = %v, want permanent", err)
			}
			for _, want := range []string{"HOOKWORKER_CODEGUARD_API_KEY", "HOOKWORKER_CODEGUARD_AUTH_USERID", "whitelisted", "Authentication failed"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), cfg.APIKey) {
				t.Error("Check error shows the api-key")
			}
		})
	}
	t.Run("outage is transient", func(t *testing.T) {
		fake.FailNext(1, 503)
		if err := newProvider(t, fake, nil).Check(testCtx(t)); err == nil || events.ClassOf(err) != events.Transient {
			t.Fatalf("Check = %v, want transient", err)
		}
	})
	t.Run("plans readable", func(t *testing.T) {
		plans, found, err := newProvider(t, fake, nil).Client().PlanDetails(testCtx(t))
		if err != nil || !found || plans[229].Name != "CodeGuard Basic" || plans[229].Status != "Active" {
			t.Fatalf("plans = %+v, %v, %v", plans, found, err)
		}
	})
}

func TestValidateSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		action   events.Action
		settings map[string]string
		wantErr  string
	}{
		{"signup ok", events.SignupCustomer, map[string]string{"plan_id": "229"}, ""},
		{"signup all settings", events.SignupCustomer, map[string]string{"plan_id": "229", "invoice_option": "PayInvoice", "auto_renew": "yes", "lang_pref": "en"}, ""},
		{"signup missing plan", events.SignupCustomer, map[string]string{}, `setting "plan_id": is required`},
		{"signup empty plan", events.SignupCustomer, map[string]string{"plan_id": " "}, `setting "plan_id": is required`},
		{"plan not a number", events.SignupCustomer, map[string]string{"plan_id": "x"}, `setting "plan_id": must be a positive integer, got "x"`},
		{"plan zero", events.SignupCustomer, map[string]string{"plan_id": "0"}, `setting "plan_id": must be a positive integer, got "0"`},
		{"plan negative", events.ChangePackage, map[string]string{"plan_id": "-4"}, `setting "plan_id": must be a positive integer`},
		{"change package needs plan", events.ChangePackage, nil, `setting "plan_id": is required for change_package`},
		{"suspend needs nothing", events.Suspend, nil, ""},
		{"renew checks present plan", events.Renew, map[string]string{"plan_id": "abc"}, `setting "plan_id"`},
		{"bad invoice option", events.SignupCustomer, map[string]string{"plan_id": "1", "invoice_option": "noinvoice"}, `setting "invoice_option": must be one of NoInvoice, PayInvoice, KeepInvoice, OnlyAdd, got "noinvoice"`},
		{"bad auto renew", events.Renew, map[string]string{"auto_renew": "true"}, `setting "auto_renew": must be "yes" or "no", got "true"`},
		{"bad lang", events.SignupCustomer, map[string]string{"plan_id": "1", "lang_pref": "English"}, `setting "lang_pref"`},
		{"unknown key refused", events.SignupCustomer, map[string]string{"plan_id": "1", "color": "blue"}, `setting "color": unknown to the codeguard provider`},
		{"typo refused (issue 11.8)", events.Renew, map[string]string{"auto_renw": "yes"}, `setting "auto_renw": unknown to the codeguard provider (known: plan_id, invoice_option, auto_renew, lang_pref)`},
		{"unknown action", events.Action("bogus"), nil, `unknown action`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := codeguard.ValidateSettings(tc.action, tc.settings)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
		})
	}
	t.Run("Apply refuses bad settings permanently", func(t *testing.T) {
		p := newProvider(t, newFake(t), nil)
		o := op(events.SignupCustomer, 1, "example.com")
		o.Settings = map[string]string{"plan_id": "x"}
		if _, err := p.Prepare(testCtx(t), o); err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), `"plan_id"`) {
			t.Fatalf("Prepare = %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	good := codeguard.Config{
		Settings:   providers.Settings{URL: codeguard.DefaultURL, Timeout: 30 * time.Second, MaxConcurrent: 4, RatePerSecond: 10},
		AuthUserID: "123456", APIKey: "k3y-7f1c9e", InvoiceOption: "NoInvoice",
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*codeguard.Config)
		wantErr string
	}{
		{"good", func(*codeguard.Config) {}, ""},
		{"nothing set is disabled, not invalid", func(c *codeguard.Config) { *c = codeguard.Config{} }, ""},
		{"empty URL means the default", func(c *codeguard.Config) { c.URL = "" }, ""},
		{"test URL", func(c *codeguard.Config) { c.URL = codeguard.TestURL }, ""},
		{"loopback http", func(c *codeguard.Config) { c.URL = "http://127.0.0.1:8080/api" }, ""},
		{"plain http", func(c *codeguard.Config) { c.URL = "http://httpapi.com/api" }, "HOOKWORKER_CODEGUARD_URL: must be https"},
		{"not a URL", func(c *codeguard.Config) { c.URL = "httpapi.com" }, "HOOKWORKER_CODEGUARD_URL"},
		{"credentials in URL", func(c *codeguard.Config) { c.URL = "https://u:p@httpapi.com/api" }, "HOOKWORKER_CODEGUARD_URL"},
		{"no user id", func(c *codeguard.Config) { c.AuthUserID = "" }, "HOOKWORKER_CODEGUARD_AUTH_USERID: is required"},
		{"user id not numeric", func(c *codeguard.Config) { c.AuthUserID = "reseller" }, "HOOKWORKER_CODEGUARD_AUTH_USERID: must be the numeric reseller id"},
		{"no api key", func(c *codeguard.Config) { c.APIKey = "" }, "HOOKWORKER_CODEGUARD_API_KEY: is required"},
		{"bad invoice option", func(c *codeguard.Config) { c.InvoiceOption = "Free" }, "HOOKWORKER_CODEGUARD_INVOICE_OPTION"},
		{"zero timeout", func(c *codeguard.Config) { c.Timeout = 0 }, "HOOKWORKER_CODEGUARD_TIMEOUT"},
		{"zero concurrency", func(c *codeguard.Config) { c.MaxConcurrent = 0 }, "HOOKWORKER_CODEGUARD_MAX_CONCURRENT"},
		{"negative rate", func(c *codeguard.Config) { c.RatePerSecond = -1 }, "HOOKWORKER_CODEGUARD_RATE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mutate(&c)
			err := c.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), c.APIKey) && c.APIKey != "" {
				t.Fatalf("error shows the api key: %v", err)
			}
		})
	}
	t.Run("New refuses a nil password source", func(t *testing.T) {
		if _, err := codeguard.New(good, nil, nil); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("New refuses an invalid config", func(t *testing.T) {
		c := good
		c.APIKey = ""
		if _, err := codeguard.New(c, passwords(t), nil); err == nil || !strings.Contains(err.Error(), "HOOKWORKER_CODEGUARD_API_KEY") {
			t.Fatalf("err = %v", err)
		}
	})
}
