package storegrid_test

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/providertest"
	"github.com/hookworker/hookworker/providers/storegrid"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// opFor builds the operation the worker would for action a on service
// serviceID (a reseller's operations carry no service), prepared.
func opFor(t *testing.T, p *storegrid.Provider, a events.Action, serviceID int, settings map[string]string) events.Operation {
	t.Helper()
	op := providertest.Fixture{Provider: p, Settings: settings}.Op(a, serviceID)
	if a == events.SignupReseller || serviceID == 0 {
		op.ServiceID = 0
	}
	plan, err := p.Prepare(ctxT(t), op)
	if err != nil {
		t.Fatalf("Prepare(%s): %v", a, err)
	}
	op.Plan = plan
	return op
}

func apply(t *testing.T, p *storegrid.Provider, op events.Operation) events.Outcome {
	t.Helper()
	out, err := p.Apply(ctxT(t), op)
	if err != nil {
		t.Fatalf("Apply(%s): %v", op.Action, err)
	}
	return out
}

func actions(srv *storegridtest.Server) []string {
	var out []string
	for _, r := range srv.Requests() {
		out = append(out, r.Action)
	}
	return out
}

// TestWireEveryFieldSent pins the assumed wire format: the parameter name
// and value each setting becomes. A correction of internal/sgwire shows up
// here.
func TestWireEveryFieldSent(t *testing.T) {
	client := map[string]string{"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace",
		"companyName": "Analytical Ltd"}
	tests := []struct {
		name     string
		action   events.Action
		settings map[string]string
		want     map[string]string // the account's fields at the fake, besides the name and client
		active   bool
		requests []string
	}{
		{
			name:   "customer every field",
			action: events.SignupCustomer,
			settings: map[string]string{"reseller_name": testReseller, "activation_status": "no",
				"auto_authorization": "yes", "storage_allotted": "5368709120", "storage_location": "/backups/vol2",
				"consolidated_report": "yes", "consolidated_report_email": "ops@example.com, boss@example.org",
				"auto_mcal": "no", "allot_mcal": "7", "bandwidth_throttling": "new", "throttle_enabled": "yes",
				"throttle_mode": "scheduled", "throttle_from": "0130", "throttle_till": "1740",
				"restricted_rate": "2048", "send_mail": "yes", "retrieve_pass_key": "yes"},
			want: map[string]string{"resellerName": testReseller, "activationStatus": "0", "autoAuthorization": "1",
				"storageAllotted": "5368709120", "storageLocation": "/backups/vol2", "consolidatedReport": "1",
				"consolidatedReportEmail": "ops@example.com,boss@example.org", "autoMCAL": "0", "allotMCAL": "7",
				"bandwidthThrottling": "new", "throttleEnabled": "1", "throttleMode": "scheduled",
				"throttleFrom": "0130", "throttleTill": "1740", "restrictedRate": "2048", "sendMail": "1"},
			requests: []string{"getcustomer", "addcustomer", "getcustomerpasskey"},
		},
		{
			name:     "customer defaults",
			action:   events.SignupCustomer,
			settings: map[string]string{"reseller_name": testReseller, "storage_allotted": "1000"},
			want: map[string]string{"resellerName": testReseller, "activationStatus": "1", "autoAuthorization": "1",
				"storageAllotted": "1000", "consolidatedReport": "0", "autoMCAL": "1",
				"bandwidthThrottling": "global", "sendMail": "0"},
			active:   true,
			requests: []string{"getcustomer", "addcustomer"},
		},
		{
			name:   "customer switched-off details not sent",
			action: events.SignupCustomer,
			settings: map[string]string{"reseller_name": testReseller, "storage_allotted": "1000",
				"consolidated_report": "no", "consolidated_report_email": "ops@example.com", "auto_mcal": "yes",
				"allot_mcal": "3", "bandwidth_throttling": "new", "throttle_enabled": "no", "throttle_mode": "scheduled",
				"throttle_from": "0100", "throttle_till": "0200", "restricted_rate": "4096"},
			want: map[string]string{"resellerName": testReseller, "activationStatus": "1", "autoAuthorization": "1",
				"storageAllotted": "1000", "consolidatedReport": "0", "autoMCAL": "1",
				"bandwidthThrottling": "new", "throttleEnabled": "0", "sendMail": "0"},
			active:   true,
			requests: []string{"getcustomer", "addcustomer"},
		},
		{
			name:   "reseller every field",
			action: events.SignupReseller,
			settings: map[string]string{"activation_status": "yes", "auto_authorization": "no",
				"storage_allotted": "1099511627776", "storage_location": `D:\backups`, "auto_mcal": "no",
				"allot_mcal": "50", "bandwidth_throttling": "new", "throttle_enabled": "yes",
				"throttle_mode": "always", "restricted_rate": "1048576", "send_mail": "yes"},
			want: map[string]string{"activationStatus": "1", "autoAuthorization": "0",
				"storageAllotted": "1099511627776", "storageLocation": `D:\backups`, "autoMCAL": "0",
				"allotMCAL": "50", "bandwidthThrottling": "new", "throttleEnabled": "1", "throttleMode": "always",
				"restrictedRate": "1048576", "sendMail": "1"},
			active:   true,
			requests: []string{"getreseller", "addreseller"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.AddReseller(testReseller)
			p := newProvider(t, srv, nil)
			op := opFor(t, p, tt.action, 301, tt.settings)
			out := apply(t, p, op)
			acct, ok := srv.Account(out.Reference)
			if !ok {
				t.Fatalf("fake holds no account %q", out.Reference)
			}
			want := maps.Clone(tt.want)
			maps.Copy(want, client)
			if tt.action == events.SignupReseller {
				want["resellerName"] = out.Reference
				if acct.Kind != storegridtest.KindReseller {
					t.Fatalf("kind %q, want reseller", acct.Kind)
				}
			} else {
				want["customerName"] = out.Reference
				if acct.Kind != storegridtest.KindCustomer || acct.Reseller != testReseller {
					t.Fatalf("kind %q under %q, want a customer under %q", acct.Kind, acct.Reseller, testReseller)
				}
			}
			if !maps.Equal(acct.Fields, want) {
				t.Fatalf("fields sent:\n got %v\nwant %v", acct.Fields, want)
			}
			if acct.Active != tt.active {
				t.Fatalf("active = %v, want %v", acct.Active, tt.active)
			}
			if got := actions(srv); !slices.Equal(got, tt.requests) {
				t.Fatalf("requests %v, want %v", got, tt.requests)
			}
			for _, r := range srv.Requests() {
				if r.Params.Get("username") != srv.Username || r.Params.Has("password") {
					t.Fatalf("request log entry %v: want the admin username and no password", r.Params)
				}
			}
		})
	}
}

// TestWireTransport pins the request shape: POST of a form body to
// /cgi-bin/sgwhmcs.cgi under the console URL's path, credentials in the
// body and never in the URL.
func TestWireTransport(t *testing.T) {
	srv := storegridtest.NewServer()
	defer srv.Close()
	type seen struct{ method, path, query, ctype, body string }
	var (
		mu  sync.Mutex
		got []seen
	)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), string(b)})
		mu.Unlock()
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/console")
		r2.Body = io.NopCloser(strings.NewReader(string(b)))
		srv.ServeHTTP(w, r2)
	}))
	defer front.Close()
	cfg := config(srv)
	cfg.URL = front.URL + "/console/"
	p, err := storegrid.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ctxT(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	r := got[0]
	form, _ := url.ParseQuery(r.body)
	if r.method != http.MethodPost || r.path != "/console/cgi-bin/sgwhmcs.cgi" || r.query != "" ||
		r.ctype != "application/x-www-form-urlencoded" {
		t.Fatalf("request %s %s?%s (%s), want a form POST to /console/cgi-bin/sgwhmcs.cgi with no query", r.method, r.path, r.query, r.ctype)
	}
	want := url.Values{"action": {"getserverinfo"}, "username": {srv.Username}, "password": {srv.Password}}
	if !maps.EqualFunc(form, want, slices.Equal) {
		t.Fatalf("form %v, want action, username and password", form)
	}
}

func TestChangePackage(t *testing.T) {
	srv := newFake(t)
	srv.AddReseller(testReseller)
	p := newProvider(t, srv, nil)
	settings := map[string]string{"reseller_name": testReseller, "storage_allotted": "1000", "auto_mcal": "no", "allot_mcal": "2"}
	sop := opFor(t, p, events.SignupCustomer, 401, settings)
	ref := apply(t, p, sop).Reference
	apply(t, p, opFor(t, p, events.Suspend, 401, settings))

	bigger := map[string]string{"reseller_name": testReseller, "storage_allotted": "2000", "auto_mcal": "yes",
		"bandwidth_throttling": "new", "throttle_enabled": "yes", "restricted_rate": "8192",
		"consolidated_report": "yes", "consolidated_report_email": "ops@example.com",
		"activation_status": "yes", "storage_location": "/elsewhere", "send_mail": "yes"}
	op := opFor(t, p, events.ChangePackage, 401, bigger)
	if _, found, err := p.Lookup(ctxT(t), op); err != nil || found {
		t.Fatalf("Lookup before the change = found %v, err %v; want not found", found, err)
	}
	before := len(srv.Requests())
	out := apply(t, p, op)
	if out.AlreadyDone || out.Reference != ref {
		t.Fatalf("outcome %+v, want the change applied to %q", out, ref)
	}
	reqs := srv.Requests()[before:]
	if got := []string{reqs[0].Action, reqs[1].Action}; len(reqs) != 2 || got[1] != "editcustomer" {
		t.Fatalf("requests %v, want getcustomer, editcustomer", got)
	}
	edit := reqs[1].Params
	for _, k := range []string{"activationStatus", "storageLocation", "sendMail", "email"} {
		if edit.Has(k) {
			t.Errorf("edit sent signup-only parameter %s", k)
		}
	}
	acct, _ := srv.Account(ref)
	for k, v := range map[string]string{"storageAllotted": "2000", "autoMCAL": "1", "bandwidthThrottling": "new",
		"throttleEnabled": "1", "throttleMode": "always", "restrictedRate": "8192", "consolidatedReport": "1",
		"consolidatedReportEmail": "ops@example.com"} {
		if acct.Fields[k] != v {
			t.Errorf("after the change %s = %q, want %q", k, acct.Fields[k], v)
		}
	}
	if acct.Active {
		t.Error("a package change re-activated a suspended account")
	}
	if _, found, err := p.Lookup(ctxT(t), op); err != nil || !found {
		t.Fatalf("Lookup after the change = found %v, err %v; want found", found, err)
	}
	if again := apply(t, p, op); !again.AlreadyDone {
		t.Fatalf("second change %+v, want AlreadyDone", again)
	}
	if n := strings.Count(strings.Join(actions(srv), " "), "editcustomer"); n != 1 {
		t.Fatalf("%d edit requests, want 1", n)
	}
}

func TestLifecycleErrors(t *testing.T) {
	settings := customerSettings()
	tests := []struct {
		name   string
		action events.Action
		signup bool // sign the account up first
		is     error
	}{
		{"suspend missing account", events.Suspend, false, storegrid.ErrNotFound},
		{"unsuspend missing account", events.Unsuspend, false, storegrid.ErrNotFound},
		{"terminate missing account", events.Terminate, false, storegrid.ErrNotFound},
		{"renew missing account", events.Renew, false, storegrid.ErrNotFound},
		{"change package missing account", events.ChangePackage, false, storegrid.ErrNotFound},
		{"change password", events.ChangePassword, true, storegrid.ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFake(t)
			srv.AddReseller(testReseller)
			p := newProvider(t, srv, nil)
			if tt.signup {
				apply(t, p, opFor(t, p, events.SignupCustomer, 501, settings))
			}
			op := opFor(t, p, tt.action, 501, settings)
			if _, found, err := p.Lookup(ctxT(t), op); err != nil || found {
				t.Fatalf("Lookup = found %v, err %v; want not found", found, err)
			}
			_, err := p.Apply(ctxT(t), op)
			if !errors.Is(err, tt.is) || events.ClassOf(err) != events.Permanent {
				t.Fatalf("Apply = %v (class %s), want permanent %v", err, events.ClassOf(err), tt.is)
			}
		})
	}
}

func TestRenewChangesNothing(t *testing.T) {
	srv := newFake(t)
	srv.AddReseller(testReseller)
	p := newProvider(t, srv, nil)
	settings := customerSettings()
	ref := apply(t, p, opFor(t, p, events.SignupCustomer, 601, settings)).Reference
	apply(t, p, opFor(t, p, events.Suspend, 601, settings))
	before := srv.Accounts()
	n := len(srv.Requests())
	out := apply(t, p, opFor(t, p, events.Renew, 601, settings))
	if out.Reference != ref || out.Details["active"] != "false" {
		t.Fatalf("renew outcome %+v", out)
	}
	if got := actions(srv)[n:]; !slices.Equal(got, []string{"getcustomer"}) {
		t.Fatalf("renew sent %v, want only getcustomer", got)
	}
	if after := srv.Accounts(); !slices.EqualFunc(before, after, func(a, b storegridtest.Account) bool {
		return a.Name == b.Name && a.Active == b.Active && maps.Equal(a.Fields, b.Fields)
	}) {
		t.Fatal("renew changed an account")
	}
}

func TestCustomerOfMissingReseller(t *testing.T) {
	srv := newFake(t)
	p := newProvider(t, srv, nil)
	_, err := p.Apply(ctxT(t), opFor(t, p, events.SignupCustomer, 701, customerSettings()))
	if !errors.Is(err, storegrid.ErrNotFound) || events.ClassOf(err) != events.Permanent {
		t.Fatalf("signup under a missing reseller = %v (class %s), want permanent ErrNotFound", err, events.ClassOf(err))
	}
	if !strings.Contains(events.ReplyOf(err), testReseller) {
		t.Fatalf("reply %q does not name the reseller", events.ReplyOf(err))
	}
	if srv.Created() != 0 {
		t.Fatal("an account was created")
	}
}

func TestConcurrentSignupCreatesOne(t *testing.T) {
	srv := newFake(t)
	srv.AddReseller(testReseller)
	p := newProvider(t, srv, nil)
	op := opFor(t, p, events.SignupCustomer, 801, customerSettings())
	var wg sync.WaitGroup
	refs := make([]string, 8)
	for i := range refs {
		wg.Go(func() {
			out, err := p.Apply(context.Background(), op)
			if err != nil {
				t.Errorf("Apply: %v", err)
			}
			refs[i] = out.Reference
		})
	}
	wg.Wait()
	if srv.Created() != 1 {
		t.Fatalf("created %d accounts, want 1", srv.Created())
	}
	for _, r := range refs {
		if r != refs[0] {
			t.Fatalf("references differ: %v", refs)
		}
	}
}

func TestPrepare(t *testing.T) {
	srv := newFake(t)
	p := newProvider(t, srv, nil)
	tests := []struct {
		name     string
		op       func() events.Operation
		kind     string
		prefix   string
		reseller string
		bad      string // the setting an error names, or "" for any permanent error
		fail     bool
	}{
		{name: "customer", op: func() events.Operation {
			return providertest.Fixture{Provider: p, Settings: customerSettings()}.Op(events.SignupCustomer, 9)
		}, kind: "customer", prefix: "hwc", reseller: testReseller},
		{name: "reseller", op: func() events.Operation {
			o := providertest.Fixture{Provider: p, Settings: resellerSettings()}.Op(events.SignupReseller, 9)
			return o
		}, kind: "reseller", prefix: "hwr"},
		{name: "reseller suspend", op: func() events.Operation {
			o := providertest.Fixture{Provider: p}.Op(events.Suspend, 0)
			return o
		}, kind: "reseller", prefix: "hwr"},
		{name: "whmcs username", op: func() events.Operation {
			o := providertest.Fixture{Provider: p, Settings: customerSettings()}.Op(events.SignupCustomer, 9)
			o.Username = "ada42"
			return o
		}, kind: "customer", prefix: "ada42", reseller: testReseller},
		{name: "bad settings", op: func() events.Operation {
			s := customerSettings()
			s["throttle_from"] = "2400"
			return providertest.Fixture{Provider: p, Settings: s}.Op(events.SignupCustomer, 9)
		}, fail: true, bad: "throttle_from"},
		{name: "customer suspend without reseller_name", op: func() events.Operation {
			return providertest.Fixture{Provider: p}.Op(events.Suspend, 9)
		}, fail: true, bad: "reseller_name"},
		{name: "customer signup without service", op: func() events.Operation {
			o := providertest.Fixture{Provider: p, Settings: customerSettings()}.Op(events.SignupCustomer, 9)
			o.ServiceID = 0
			return o
		}, fail: true},
		{name: "unknown action", op: func() events.Operation {
			return providertest.Fixture{Provider: p}.Op("explode", 9)
		}, fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := tt.op()
			plan, err := p.Prepare(ctxT(t), op)
			if tt.fail {
				if err == nil || events.ClassOf(err) != events.Permanent {
					t.Fatalf("Prepare = %v, %v; want a permanent error", plan, err)
				}
				if tt.bad != "" && !slices.Contains(badFields(t, err), tt.bad) {
					t.Fatalf("error %v does not name %s", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			if plan["kind"] != tt.kind || !strings.HasPrefix(plan["account"], tt.prefix) || plan["reseller"] != tt.reseller {
				t.Fatalf("plan %v, want kind %s, account %s…, reseller %q", plan, tt.kind, tt.prefix, tt.reseller)
			}
			again, _ := p.Prepare(ctxT(t), op)
			if !maps.Equal(plan, again) {
				t.Fatalf("plan not deterministic: %v then %v", plan, again)
			}
		})
	}
}
