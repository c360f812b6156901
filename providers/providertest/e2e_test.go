package providertest_test

// End-to-end tests, one table entry per provider: a real embedded JetStream
// server, the provider's fake server, the real provider client and a
// worker.Worker, fed WHMCS events built the way the PHP hooks
// (deploy/whmcs/hookworker.php) build them.

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
	"github.com/hookworker/hookworker/providers/storegrid"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

// source is the WHMCS instance name every test event comes from.
const source = "main"

// passwordSecret derives the service passwords (providers.DerivedPasswords).
const passwordSecret = "e2e-password-secret-0123456789abcdef"

// testReseller is the StoreGrid reseller the customer products name; the
// fake holds it from the start, as an administrator would have made it.
const testReseller = "acme-backup"

// client is the WHMCS client of every order, as GetClientsDetails gives it.
var client = events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", CompanyName: "Analytical Engines Ltd",
	Email: "ada@example.com", Address1: "12 Engine Row", City: "London", State: "Greater London",
	Postcode: "N1 9GU", Country: "GB", PhoneNumber: "+44.2079460000", Language: "english"}

// States fakeServer.state reports.
const (
	stateActive    = "active"
	stateSuspended = "suspended"
	stateInactive  = "inactive" // StoreGrid: de-activated (suspend and terminate alike)
	stateDeleted   = "deleted"
	stateAbsent    = "" // the fake holds nothing by that name
)

// fakeServer is one provider's fake with the real provider client wired to
// it, and the fake's view of what happened.
type fakeServer struct {
	provider  worker.Provider
	validator catalog.Validator
	// secrets returns every secret the worker must never log: provider
	// credentials, and the customer passwords and pass keys the fake holds.
	secrets func() []string
	// credentials are the provider's own credentials (never in a log nor
	// in a result event).
	credentials []string
	// created counts accounts or orders ever created through the API.
	created func() int
	// held counts the accounts or orders the fake holds for WHMCS services
	// (not counting what a test seeded).
	held func() int
	// state is the state of the account or order ref names.
	state func(ref string) string
	// pkg is what a package change alters (device limit, plan, storage).
	pkg func(ref string) string
	// renewals counts renewals applied at the provider.
	renewals func() int
	// failNext makes the next n requests fail with the HTTP status.
	failNext func(n, status int)
	// dropAfterEffect makes the request creating the account or order
	// take effect and lose its reply.
	dropAfterEffect func()
	// ref is the reference the signup of service sid must report: the
	// account name, or the id of the order for its domain.
	ref func(sid int) string
	// passKey is the pass key the fake gave account ref ("" when the
	// provider has none).
	passKey func(ref string) string
}

// providerCase is one provider's entry in the end-to-end table.
type providerCase struct {
	name    string
	catalog string
	// product is ordered; upgrade is the product after a package change.
	product, upgrade int
	// orderOpts are the ordered configurable options; upgradeOpts the ones
	// after the package change.
	orderOpts, upgradeOpts map[string]string
	// onInvoicePaid: the product is provisioned when its first invoice is
	// paid (AcceptOrder alone does nothing).
	onInvoicePaid bool
	// renewals is how many renewals one paid renewal applies at the fake.
	renewals int
	// suspended and terminated are the states after those events.
	suspended, terminated string
	// pkgBefore and pkgAfter are fakeServer.pkg before and after the
	// package change.
	pkgBefore, pkgAfter string
	// writeBack is the WHMCS field the signup result writes back ("" = none).
	writeBack string
	start     func(t *testing.T, log *zap.Logger) *fakeServer
}

func derivedPasswords(t testing.TB) *providers.DerivedPasswords {
	t.Helper()
	pw, err := providers.NewDerivedPasswords(passwordSecret)
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

// servicePassword is the derived password of service sid's signup.
func servicePassword(t testing.TB, sid int) string {
	t.Helper()
	pw, err := derivedPasswords(t).ServicePassword(context.Background(),
		events.Operation{Source: source, Action: events.SignupCustomer, ServiceID: sid})
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

func providerSettings(url string) providers.Settings {
	return providers.Settings{URL: url, Timeout: 5 * time.Second, MaxConcurrent: 4}
}

func cometFake(t *testing.T, srv *comettest.Server, url string, log *zap.Logger) *fakeServer {
	t.Helper()
	p, err := comet.New(comet.Config{Settings: providerSettings(url), Username: srv.Username, Password: srv.Password},
		derivedPasswords(t), log.Named("comet"))
	if err != nil {
		t.Fatalf("comet.New: %v", err)
	}
	return &fakeServer{
		provider: p, validator: comet.ValidateSettings, credentials: []string{srv.Password},
		secrets: func() []string { return []string{srv.Password} },
		created: srv.Created,
		held:    func() int { return len(srv.Users()) },
		state: func(ref string) string {
			u, ok := srv.User(ref)
			switch {
			case !ok:
				return stateAbsent
			case u.Suspended():
				return stateSuspended
			}
			return stateActive
		},
		pkg: func(ref string) string {
			u, ok := srv.User(ref)
			if !ok {
				return ""
			}
			return fmt.Sprint(u.Profile["MaximumDevices"])
		},
		renewals: func() int { return 0 }, // billing lives in WHMCS
		// A signup's Prepare looks names up first; the fault hits the
		// first write, as it did when Prepare called nothing.
		failNext:        func(n, status int) { srv.FailNextOp("add-user", n, status) },
		dropAfterEffect: srv.DropAfterEffect,
		// The signup chooses the name (the client's e-mail, suffixed when
		// taken) and marks the user as the service's.
		ref: func(sid int) string {
			marker := comet.ServiceMarker(events.Operation{Source: source, ServiceID: sid})
			for _, name := range srv.Users() {
				if u, ok := srv.User(name); ok && strings.Contains(fmt.Sprint(u.Profile["AccountName"]), marker) {
					return name
				}
			}
			return "(no user marked for service " + strconv.Itoa(sid) + ")"
		},
		passKey: func(string) string { return "" },
	}
}

func codeguardFake(t *testing.T, srv *codeguardtest.Server, url string, log *zap.Logger) *fakeServer {
	t.Helper()
	p, err := codeguard.New(codeguard.Config{Settings: providerSettings(url), AuthUserID: srv.AuthUserID, APIKey: srv.APIKey,
		InvoiceOption: codeguard.NoInvoice}, derivedPasswords(t), log.Named("codeguard"))
	if err != nil {
		t.Fatalf("codeguard.New: %v", err)
	}
	return &fakeServer{
		provider: p, validator: codeguard.ValidateSettings, credentials: []string{srv.APIKey},
		secrets: func() []string {
			s := []string{srv.APIKey}
			for _, c := range srv.Customers() {
				s = append(s, srv.CustomerPassword(c.ID))
			}
			return s
		},
		created: srv.Created,
		held:    func() int { return len(srv.Orders()) },
		state: func(ref string) string {
			o, ok := srv.OrderByRef(ref)
			if !ok {
				return stateAbsent
			}
			return strings.ToLower(o.Status)
		},
		pkg: func(ref string) string {
			o, ok := srv.OrderByRef(ref)
			if !ok {
				return ""
			}
			return strconv.FormatInt(o.PlanID, 10)
		},
		renewals:        srv.Renewals,
		failNext:        srv.FailNext,
		dropAfterEffect: func() { srv.DropAfterEffectOn("codeguard/add.json") },
		ref: func(sid int) string {
			for _, o := range srv.Orders() {
				if o.Domain == domainOf(sid) {
					return strconv.FormatInt(o.ID, 10)
				}
			}
			return "(no order for " + domainOf(sid) + ")"
		},
		passKey: func(string) string { return "" },
	}
}

func storegridFake(t *testing.T, srv *storegridtest.Server, url string, log *zap.Logger) *fakeServer {
	t.Helper()
	p, err := storegrid.New(storegrid.Config{Settings: providerSettings(url), Username: srv.Username, Password: srv.Password},
		log.Named("storegrid"))
	if err != nil {
		t.Fatalf("storegrid.New: %v", err)
	}
	customers := func() []storegridtest.Account {
		var out []storegridtest.Account
		for _, a := range srv.Accounts() {
			if a.Kind == storegridtest.KindCustomer {
				out = append(out, a)
			}
		}
		return out
	}
	return &fakeServer{
		provider: p, validator: storegrid.ValidateSettings, credentials: []string{srv.Password},
		secrets: func() []string {
			s := []string{srv.Password}
			for _, a := range customers() {
				s = append(s, a.PassKey)
			}
			return s
		},
		created: srv.Created,
		held:    func() int { return len(customers()) },
		state: func(ref string) string {
			a, ok := srv.Account(ref)
			switch {
			case !ok:
				return stateAbsent
			case a.Active:
				return stateActive
			}
			return stateInactive
		},
		pkg: func(ref string) string {
			a, ok := srv.Account(ref)
			if !ok {
				return ""
			}
			return a.Fields["storageAllotted"]
		},
		renewals:        func() int { return 0 }, // billed in WHMCS
		failNext:        srv.FailNext,
		dropAfterEffect: srv.DropAfterEffect,
		ref: func(sid int) string {
			return providers.AccountName(events.Operation{Source: source, Action: events.SignupCustomer, ServiceID: sid}, "hwc", 16)
		},
		passKey: func(ref string) string {
			a, _ := srv.Account(ref)
			return a.PassKey
		},
	}
}

const cometCatalog = `
products:
  - id: 10
    name: Comet Backup
    provider: comet
    settings: {create_policy_group: yes, policy_group_id: WHMCS_e2e, storage_vault_template: comettest-vault-template, require_password_change: no}
`

const codeguardCatalog = `
products:
  - id: 20
    name: CodeGuard Basic
    provider: codeguard
    provision_on: invoice.paid
    settings: {plan_id: 229}
  - id: 21
    name: CodeGuard Professional
    provider: codeguard
    provision_on: invoice.paid
    settings: {plan_id: 230}
  - id: 22
    name: CodeGuard Basic (provisioned on acceptance)
    provider: codeguard
    settings: {plan_id: 229}
  - id: 23
    name: CodeGuard Professional (provisioned on acceptance)
    provider: codeguard
    settings: {plan_id: 230}
`

const storegridCatalog = `
client_added:
  - provider: storegrid
    action: signup_reseller
    settings: {storage_allotted: 1099511627776, activation_status: yes, auto_authorization: no, auto_mcal: yes}
products:
  - id: 30
    name: StoreGrid customer 100 GB
    provider: storegrid
    settings: {reseller_name: acme-backup, storage_allotted: 107374182400, activation_status: yes, auto_mcal: yes, retrieve_pass_key: yes}
  - id: 31
    name: StoreGrid customer 200 GB
    provider: storegrid
    settings: {reseller_name: acme-backup, storage_allotted: 214748364800, activation_status: yes, auto_mcal: yes, retrieve_pass_key: yes}
`

func cometCase() providerCase {
	return providerCase{
		name: comet.Name, catalog: cometCatalog, product: 10, upgrade: 10,
		orderOpts:   map[string]string{"number_of_devices": "5"},
		upgradeOpts: map[string]string{"number_of_devices": "10"},
		suspended:   stateSuspended, terminated: stateAbsent, pkgBefore: "5", pkgAfter: "10",
		start: func(t *testing.T, log *zap.Logger) *fakeServer {
			srv := comettest.NewServer()
			t.Cleanup(srv.Close)
			return cometFake(t, srv, srv.URL, log)
		},
	}
}

// codeguardCase provisions on acceptance: see TestCodeGuardProvisionOnInvoicePaid
// for the invoice.paid path.
func codeguardCase() providerCase {
	return providerCase{
		name: codeguard.Name, catalog: codeguardCatalog, product: 22, upgrade: 23,
		renewals: 1, suspended: stateSuspended, terminated: stateDeleted, pkgBefore: "229", pkgAfter: "230",
		start: func(t *testing.T, log *zap.Logger) *fakeServer {
			srv := codeguardtest.NewServer()
			t.Cleanup(srv.Close)
			return codeguardFake(t, srv, srv.URL, log)
		},
	}
}

func storegridCase() providerCase {
	return providerCase{
		name: storegrid.Name, catalog: storegridCatalog, product: 30, upgrade: 31,
		suspended: stateInactive, terminated: stateInactive, pkgBefore: "107374182400", pkgAfter: "214748364800",
		writeBack: storegrid.PassKeyField,
		start: func(t *testing.T, log *zap.Logger) *fakeServer {
			srv := storegridtest.NewServer()
			t.Cleanup(srv.Close)
			srv.AddReseller(testReseller)
			return storegridFake(t, srv, srv.URL, log)
		},
	}
}

func providerCases() []providerCase {
	return []providerCase{cometCase(), codeguardCase(), storegridCase()}
}

// --- events, built as deploy/whmcs/hookworker.php builds them ---

func domainOf(sid int) string { return fmt.Sprintf("site%d.example.com", sid) }

func envelope(t testing.TB, typ events.Type, id string, data any) events.Envelope {
	t.Helper()
	env, err := events.NewEnvelope(id, typ, source, time.Now(), data)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// acceptOrder is AcceptOrder for one service of order orderID.
func acceptOrder(t testing.TB, orderID, invoiceID int, s events.OrderedService) events.Envelope {
	t.Helper()
	return envelope(t, events.OrderAccepted, fmt.Sprintf("whmcs:%s:AcceptOrder:%d", source, orderID), events.OrderAcceptedData{
		OrderID: orderID, InvoiceID: invoiceID, Client: client, Services: []events.OrderedService{s}})
}

// invoicePaid is InvoicePaid of the order's first invoice (no renewal).
func invoicePaid(t testing.TB, invoiceID, sid, productID int) events.Envelope {
	t.Helper()
	c := client
	return envelope(t, events.InvoicePaid, fmt.Sprintf("whmcs:%s:InvoicePaid:%d", source, invoiceID), events.InvoicePaidData{
		InvoiceID: invoiceID, ClientID: client.ID, Client: &c, Items: []events.InvoiceItem{{
			ID: invoiceID*10 + 1, Type: "Hosting", RelID: sid, ProductID: productID,
			Description: fmt.Sprintf("Backup - %s (01/01/2026 - 31/12/2026)", domainOf(sid)), Amount: "59.00", Renewal: false,
			Domain: domainOf(sid), BillingCycle: "Annually"}}})
}

// renewalPaid is the service.renewal_paid InvoicePaid publishes for a
// renewed service.
func renewalPaid(t testing.TB, invoiceID, sid, productID int) events.Envelope {
	t.Helper()
	return envelope(t, events.ServiceRenewalPaid, fmt.Sprintf("whmcs:%s:RenewalPaid:%d:%d", source, invoiceID, sid), events.RenewalPaidData{
		ServiceID: sid, ProductID: productID, ClientID: client.ID, InvoiceID: invoiceID, Months: 12,
		Domain: domainOf(sid), BillingCycle: "Annually"})
}

var requestSeq atomic.Int64

// serviceEvent is what an AfterModule* hook publishes; its id carries the
// WHMCS request id, so every call is a new event.
func serviceEvent(t testing.TB, typ events.Type, sid, productID int, opts map[string]string) events.Envelope {
	t.Helper()
	hook := map[events.Type]string{events.ServiceSuspended: "AfterModuleSuspend", events.ServiceUnsuspended: "AfterModuleUnsuspend",
		events.ServiceTerminated: "AfterModuleTerminate", events.ServicePasswordChanged: "AfterModuleChangePassword",
		events.ServicePackageChanged: "AfterModuleChangePackage"}[typ]
	d := events.ServiceEventData{ServiceID: sid, ProductID: productID, ClientID: client.ID, Domain: domainOf(sid)}
	if typ == events.ServiceSuspended {
		d.Reason = "Overdue on Payment"
	}
	if typ == events.ServicePackageChanged {
		d.ConfigOptions, d.BillingCycle = opts, "Annually" // the hook looks the cycle up for a package change
	}
	id := fmt.Sprintf("whmcs:%s:%s:%d:req%d-%d", source, hook, sid, time.Now().UnixNano(), requestSeq.Add(1))
	return envelope(t, typ, id, d)
}

func clientAdded(t testing.TB, c events.Client) events.Envelope {
	t.Helper()
	return envelope(t, events.ClientAdded, fmt.Sprintf("whmcs:%s:ClientAdd:%d", source, c.ID), events.ClientAddedData{Client: c})
}

func signupKey(sid int) string { return events.ServiceKey(source, sid, events.SignupCustomer) }

// --- the pipeline ---

// e2e is one provider's fake, a JetStream server and a running worker.
type e2e struct {
	t       *testing.T
	pc      providerCase
	f       *fakeServer
	js      jetstream.JetStream
	opts    worker.Options
	results *workertest.Results
	logs    *observer.ObservedLogs
	sids    []int
}

func testOptions() worker.Options {
	o := worker.DefaultOptions()
	o.Concurrency, o.AckWait, o.RetryBase, o.RetryMax = 4, 2*time.Second, 100*time.Millisecond, time.Second
	o.AttemptBudget, o.StatsInterval, o.ProviderCheck, o.FetchWait = 2*time.Second, 200*time.Millisecond, 0, 200*time.Millisecond
	o.ShutdownTimeout = 5 * time.Second
	return o
}

// newE2E starts everything for pc; tune may change the worker options.
func newE2E(t *testing.T, pc providerCase, tune func(*worker.Options)) *e2e {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zapcore.InfoLevel)).Core()))
	e := &e2e{t: t, pc: pc, logs: logs, opts: testOptions()}
	if tune != nil {
		tune(&e.opts)
	}
	// Registered first, so it runs last: after the worker has stopped.
	t.Cleanup(e.checkNoSecrets)

	e.f = pc.start(t, log)
	ns := workertest.Server(t)
	_, e.js = workertest.Connect(t, ns.ClientURL())
	cat, err := catalog.Parse([]byte(pc.catalog), pc.name+" e2e catalog", map[string]catalog.Validator{pc.name: e.f.validator})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := worker.Setup(workertest.Context(t, 10*time.Second), e.js, e.opts); err != nil {
		t.Fatal(err)
	}
	e.results = workertest.CollectResults(t, e.js)

	_, wjs := workertest.Connect(t, ns.ClientURL())
	w, err := worker.New(wjs, cat, map[string]worker.Provider{pc.name: e.f.provider}, e.opts, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("worker Run did not return within 20s of cancellation")
		}
	})
	return e
}

func (e *e2e) publish(env events.Envelope) *jetstream.PubAck {
	e.t.Helper()
	return workertest.Publish(e.t, e.js, env)
}

// publishAs publishes env with another Nats-Msg-Id: the same event again,
// after JetStream's duplicate window (or from a hook that fired again).
func (e *e2e) publishAs(env events.Envelope, msgID string) {
	e.t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.js.Publish(workertest.Context(e.t, 5*time.Second), events.InboundSubject(env.Source, env.Type), b,
		jetstream.WithMsgID(msgID)); err != nil {
		e.t.Fatal(err)
	}
}

// service is the ordered service sid.
func (e *e2e) service(sid int) events.OrderedService {
	return events.OrderedService{ServiceID: sid, ProductID: e.pc.product, Domain: domainOf(sid), BillingCycle: "Annually",
		ConfigOptions: e.pc.orderOpts}
}

// signupEvents are the events WHMCS publishes for a new order of service
// sid; the last one provisions it.
func (e *e2e) signupEvents(sid int) []events.Envelope {
	e.sids = append(e.sids, sid)
	order := acceptOrder(e.t, 1000+sid, 5000+sid, e.service(sid))
	if !e.pc.onInvoicePaid {
		return []events.Envelope{order}
	}
	return []events.Envelope{order, invoicePaid(e.t, 5000+sid, sid, e.pc.product)}
}

// signup publishes the order of service sid and waits for its result.
func (e *e2e) signup(sid int) events.ResultData {
	e.t.Helper()
	for _, env := range e.signupEvents(sid) {
		e.publish(env)
	}
	return e.wait(events.ProvisioningSucceeded, signupKey(sid))
}

// wait waits for a result of type typ for the operation key and fails the
// test when none comes, or when the operation ends otherwise (dead-lettered
// while a success was awaited).
func (e *e2e) wait(typ events.Type, opKey string) events.ResultData {
	e.t.Helper()
	r, ok := e.await(typ, opKey)
	if !ok {
		e.t.FailNow()
	}
	return r
}

// await is wait that reports a missing result with t.Errorf and returns
// false, so that a test can go on with its next step.
func (e *e2e) await(typ events.Type, opKey string) (events.ResultData, bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, r := range e.results.All() {
			if r.Data.OperationKey != opKey {
				continue
			}
			if r.Envelope.Type == typ {
				return r.Data, true
			}
			if r.Envelope.Type == events.ProvisioningDeadLettered {
				e.t.Errorf("operation %s was dead-lettered while %s was awaited: %s (results:%s)", opKey, typ, r.Data.Error, e.describeResults())
				return r.Data, false
			}
		}
		if time.Now().After(deadline) {
			e.t.Errorf("no %s result for operation %s within 20s; results:%s", typ, opKey, e.describeResults())
			return events.ResultData{}, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// resultsFor returns the results of type typ for the operation key.
// resultsAtLeast is resultsFor once n of them have arrived, or whatever has
// after 10 s: results reach the collector asynchronously, so a drained
// consumer does not mean the collector has the last re-published result yet.
func (e *e2e) resultsAtLeast(typ events.Type, opKey string, n int) []events.ResultData {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rs := e.resultsFor(typ, opKey)
		if len(rs) >= n || time.Now().After(deadline) {
			return rs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *e2e) resultsFor(typ events.Type, opKey string) []events.ResultData {
	var out []events.ResultData
	for _, r := range e.results.Of(typ) {
		if r.Data.OperationKey == opKey {
			out = append(out, r.Data)
		}
	}
	return out
}

func (e *e2e) describeResults() string {
	var b strings.Builder
	for _, r := range e.results.All() {
		d := r.Data
		fmt.Fprintf(&b, "\n  %s op=%s ref=%q already_done=%v attempt=%d will_retry=%v class=%s error=%q",
			r.Envelope.Type, d.OperationKey, d.Reference, d.AlreadyDone, d.Attempt, d.WillRetry, d.ErrorClass, d.Error)
	}
	return b.String()
}

// drained waits until every event was acked or terminated.
func (e *e2e) drained() {
	e.t.Helper()
	drained(e.t, e.js, e.opts.ConsumerName)
}

func drained(t *testing.T, js jetstream.JetStream, consumer string) {
	t.Helper()
	workertest.Eventually(t, 20*time.Second, "the consumer to drain", func() bool {
		c, err := js.Consumer(workertest.Context(t, 5*time.Second), worker.EventsStream, consumer)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := c.Info(workertest.Context(t, 5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0
	})
}

func deadLetters(t *testing.T, js jetstream.JetStream) []worker.Entry {
	t.Helper()
	d, err := worker.OpenDeadLetters(workertest.Context(t, 5*time.Second), js)
	if err != nil {
		t.Fatal(err)
	}
	list, err := d.List(workertest.Context(t, 5*time.Second), worker.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// secrets returns every secret of the test: the fake's, and the service
// passwords derived for the services the test ordered.
func (e *e2e) secrets() []string {
	s := e.f.secrets()
	for _, sid := range e.sids {
		s = append(s, servicePassword(e.t, sid))
	}
	return s
}

// checkNoSecrets fails the test when a log entry holds a secret, or a
// result event or dead letter holds a provider credential.
func (e *e2e) checkNoSecrets() {
	if e.f == nil {
		return
	}
	secrets := e.secrets()
	for _, entry := range e.logs.All() {
		line := fmt.Sprintf("%s %s %s %v", entry.Level, entry.LoggerName, entry.Message, entry.ContextMap())
		for _, s := range secrets {
			if s != "" && strings.Contains(line, s) {
				e.t.Errorf("a log entry holds a secret (%d characters): %s", len(s), strings.ReplaceAll(line, s, "<SECRET>"))
			}
		}
	}
	for _, r := range e.results.All() {
		b, _ := json.Marshal(r.Envelope)
		for _, s := range e.f.credentials {
			if strings.Contains(string(b), s) {
				e.t.Errorf("result event %s holds a provider credential", r.Envelope.ID)
			}
		}
	}
}

// --- the tests ---

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, pc := range providerCases() {
		t.Run(pc.name, func(t *testing.T) {
			t.Parallel()
			t.Run("Lifecycle", func(t *testing.T) { t.Parallel(); testLifecycle(t, pc) })
			t.Run("ReplyLostAfterEffect", func(t *testing.T) { t.Parallel(); testReplyLost(t, pc) })
			t.Run("ServerErrorRetriedInProcess", func(t *testing.T) { t.Parallel(); testServerErrorInProcess(t, pc) })
			t.Run("ServerErrorRetriedByRedelivery", func(t *testing.T) { t.Parallel(); testServerErrorRedelivery(t, pc) })
			t.Run("ClientErrorDeadLettered", func(t *testing.T) { t.Parallel(); testClientError(t, pc) })
			t.Run("SameEventTwice", func(t *testing.T) { t.Parallel(); testSameEventTwice(t, pc) })
		})
	}
}

func testLifecycle(t *testing.T, pc providerCase) {
	e := newE2E(t, pc, nil)
	const sid = 100

	// Signup.
	res := e.signup(sid)
	ref := e.f.ref(sid)
	if res.Reference != ref || res.Provider != pc.name || res.ServiceID != sid || res.ClientID != client.ID ||
		res.ProductID != pc.product || res.Action != events.SignupCustomer || res.AlreadyDone {
		t.Errorf("signup result %+v; want reference %q, provider %s, service %d, a new effect", res, ref, pc.name, sid)
	}
	if pc.writeBack != "" {
		key := res.WriteBack[pc.writeBack]
		if key == "" {
			t.Errorf("signup result writes back %v; want %q", res.WriteBack, pc.writeBack)
		}
		if want := e.f.passKey(ref); key != want {
			t.Errorf("written-back %s %q is not the fake's %q", pc.writeBack, key, want)
		}
	} else if len(res.WriteBack) != 0 {
		t.Errorf("signup result writes back %v; want nothing", res.WriteBack)
	}
	if n := e.f.held(); n != 1 {
		t.Fatalf("the fake holds %d accounts/orders after one signup, want 1", n)
	}
	if n := e.f.created(); n != 1 {
		t.Fatalf("the fake created %d accounts/orders, want 1", n)
	}
	if s := e.f.state(ref); s != stateActive {
		t.Fatalf("state after signup = %q, want %q", s, stateActive)
	}
	if p := e.f.pkg(ref); p != pc.pkgBefore {
		t.Errorf("package after signup = %q, want %q", p, pc.pkgBefore)
	}

	// Renewal: applied once, even when the same renewal arrives again.
	renewal := renewalPaid(t, 6100, sid, pc.product)
	e.publish(renewal)
	rr := e.wait(events.ProvisioningSucceeded, events.RenewalKey(source, sid, 6100))
	if rr.Action != events.Renew || (pc.renewals > 0 && rr.Reference != ref) {
		t.Errorf("renewal result %+v", rr)
	}
	e.publishAs(renewal, renewal.ID+":again")
	e.drained()
	if n := e.f.renewals(); n != pc.renewals {
		t.Errorf("renewals at the fake = %d, want %d", n, pc.renewals)
	}
	if s := e.f.state(ref); s != stateActive {
		t.Errorf("state after renewal = %q, want %q", s, stateActive)
	}

	// Suspend, unsuspend, package change, terminate: each a result and the
	// right state at the fake.
	steps := []struct {
		typ    events.Type
		action events.Action
		pid    int
		check  func() string
		want   string
	}{
		{events.ServiceSuspended, events.Suspend, pc.product, func() string { return e.f.state(ref) }, pc.suspended},
		{events.ServiceUnsuspended, events.Unsuspend, pc.product, func() string { return e.f.state(ref) }, stateActive},
		{events.ServicePackageChanged, events.ChangePackage, pc.upgrade, func() string { return e.f.pkg(ref) }, pc.pkgAfter},
		{events.ServiceTerminated, events.Terminate, pc.upgrade, func() string { return e.f.state(ref) }, pc.terminated},
	}
	for _, st := range steps {
		env := serviceEvent(t, st.typ, sid, st.pid, pc.upgradeOpts)
		e.publish(env)
		r, ok := e.await(events.ProvisioningSucceeded, events.EventKey(env.ID, st.action, sid))
		if !ok {
			continue // reported; the next step still runs
		}
		if r.Action != st.action || r.SourceEventType != st.typ || r.Provider != pc.name || r.AlreadyDone {
			t.Errorf("%s result %+v", st.typ, r)
		}
		if r.Reference != ref {
			t.Errorf("%s result reference %q, want %q", st.typ, r.Reference, ref)
		}
		if got := st.check(); got != st.want {
			t.Errorf("after %s: %q at the fake, want %q", st.typ, got, st.want)
		}
	}
	e.drained()
	if n := e.f.created(); n != 1 {
		t.Errorf("the fake created %d accounts/orders over the lifecycle, want 1", n)
	}
	if f := e.results.Of(events.ProvisioningFailed); len(f) != 0 {
		t.Errorf("failed results in a clean lifecycle: %s", e.describeResults())
	}
	for _, d := range deadLetters(t, e.js) {
		t.Errorf("dead letter in a clean lifecycle: %s: %s", d.EventID, d.Reason)
	}
}

func testReplyLost(t *testing.T, pc providerCase) {
	e := newE2E(t, pc, nil)
	const sid = 110
	e.f.dropAfterEffect()
	res := e.signup(sid)
	if ref := e.f.ref(sid); res.Reference != ref {
		t.Errorf("signup result reference %q, want %q", res.Reference, ref)
	}
	e.drained()
	if n := e.f.held(); n != 1 {
		t.Fatalf("the fake holds %d accounts/orders after a lost reply and a retry, want 1", n)
	}
	if n := e.f.created(); n != 1 {
		t.Fatalf("the fake created %d accounts/orders, want 1", n)
	}
	if n := len(e.resultsFor(events.ProvisioningSucceeded, signupKey(sid))); n != 1 {
		t.Errorf("%d succeeded results, want 1", n)
	}
	if res.Attempt < 2 {
		t.Errorf("attempt = %d; the lost reply should have cost an attempt", res.Attempt)
	}
}

func testServerErrorInProcess(t *testing.T, pc providerCase) {
	e := newE2E(t, pc, nil)
	const sid = 120
	e.f.failNext(1, 500)
	res := e.signup(sid)
	e.drained()
	if res.Attempt != 2 {
		t.Errorf("attempt = %d, want 2 (one 500, then success)", res.Attempt)
	}
	if n := e.f.created(); n != 1 {
		t.Fatalf("the fake created %d accounts/orders, want 1", n)
	}
	if f := e.results.Of(events.ProvisioningFailed); len(f) != 0 {
		t.Errorf("in-process retry published failed results: %s", e.describeResults())
	}
}

func testServerErrorRedelivery(t *testing.T, pc providerCase) {
	e := newE2E(t, pc, func(o *worker.Options) { o.AttemptBudget = 0 }) // one attempt per delivery
	const sid = 130
	e.f.failNext(1, 503)
	res := e.signup(sid)
	e.drained()
	failed := e.resultsFor(events.ProvisioningFailed, signupKey(sid))
	if len(failed) != 1 {
		t.Fatalf("%d failed results, want 1: %s", len(failed), e.describeResults())
	}
	if f := failed[0]; !f.WillRetry || f.ErrorClass != events.Transient || !strings.Contains(f.Error, pc.name) ||
		!strings.Contains(f.Error, "503") {
		t.Errorf("failed result %+v: want will_retry, transient, naming %s and the 503", f, pc.name)
	}
	if res.Attempt != 2 {
		t.Errorf("attempt = %d, want 2", res.Attempt)
	}
	if n := e.f.created(); n != 1 {
		t.Fatalf("the fake created %d accounts/orders, want 1", n)
	}
}

func testClientError(t *testing.T, pc providerCase) {
	e := newE2E(t, pc, nil)
	const sid = 140
	e.f.failNext(1, 400)
	for _, env := range e.signupEvents(sid) {
		e.publish(env)
	}
	dl := e.wait(events.ProvisioningDeadLettered, signupKey(sid))
	e.drained()
	if dl.ErrorClass != events.Permanent || !strings.Contains(dl.Error, pc.name) || !strings.Contains(dl.Error, "injected failure") {
		t.Errorf("dead-lettered result %+v: want permanent, naming %s and the provider's error", dl, pc.name)
	}
	if n := len(e.results.Of(events.ProvisioningSucceeded)); n != 0 {
		t.Errorf("%d succeeded results after a 400", n)
	}
	entries := deadLetters(t, e.js)
	if len(entries) != 1 {
		t.Fatalf("%d dead letters, want 1", len(entries))
	}
	if d := entries[0]; d.ErrorClass != events.Permanent || len(d.Operations) != 1 || d.Operations[0] != signupKey(sid) ||
		len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Reply+d.Attempts[0].Error, "injected failure") {
		t.Errorf("dead letter %+v", d)
	}
	if n := e.f.created(); n != 0 {
		t.Errorf("the fake created %d accounts/orders after a 400, want 0", n)
	}
}

func testSameEventTwice(t *testing.T, pc providerCase) {
	e := newE2E(t, pc, nil)
	const sid = 150
	envs := e.signupEvents(sid)
	for _, env := range envs[:len(envs)-1] {
		e.publish(env)
	}
	last := envs[len(envs)-1]
	first := e.publish(last)
	second := e.publish(last)
	if !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second publish ack %+v: JetStream did not drop the copy with the same Nats-Msg-Id", second)
	}
	res := e.wait(events.ProvisioningSucceeded, signupKey(sid))
	// The same event again once the duplicate window has passed (another
	// Nats-Msg-Id): answered from the operation record.
	e.publishAs(last, last.ID+":after-window")
	e.drained()
	// The copy delivered after the window re-publishes the recorded result
	// (a second message with the same content, so that followers see it).
	if rs := e.resultsAtLeast(events.ProvisioningSucceeded, signupKey(sid), 2); len(rs) != 2 || !reflect.DeepEqual(rs[0], rs[1]) {
		t.Errorf("succeeded results for one signup: %+v; want the result and its re-published copy", rs)
	}
	if ref := e.f.ref(sid); res.Reference != ref {
		t.Errorf("reference %q, want %q", res.Reference, ref)
	}
	if n := e.f.created(); n != 1 {
		t.Fatalf("the fake created %d accounts/orders for one event delivered twice, want 1", n)
	}
	if n := e.f.held(); n != 1 {
		t.Fatalf("the fake holds %d accounts/orders, want 1", n)
	}
}

// A CodeGuard product with provision_on: invoice.paid is ordered
// (AcceptOrder does nothing) and provisioned when the first invoice is
// paid, with the events exactly as the InvoicePaid hook publishes them.
func TestCodeGuardProvisionOnInvoicePaid(t *testing.T) {
	t.Parallel()
	pc := codeguardCase()
	pc.product, pc.upgrade, pc.onInvoicePaid = 20, 21, true
	e := newE2E(t, pc, nil)
	const sid = 200
	envs := e.signupEvents(sid)
	e.publish(envs[0]) // AcceptOrder
	e.drained()
	if n := e.f.created(); n != 0 || len(e.results.All()) != 0 {
		t.Fatalf("AcceptOrder of a product provisioned on payment created %d orders, results:%s", n, e.describeResults())
	}
	e.publish(envs[1]) // InvoicePaid
	res := e.wait(events.ProvisioningSucceeded, signupKey(sid))
	e.drained()
	if ref := e.f.ref(sid); res.Reference != ref || res.SourceEventType != events.InvoicePaid || res.ProductID != 20 {
		t.Errorf("signup result %+v; want order %s from invoice.paid", res, ref)
	}
	if n := e.f.created(); n != 1 {
		t.Errorf("the fake created %d orders, want 1", n)
	}
	if p := e.f.pkg(res.Reference); p != "229" {
		t.Errorf("order plan %q, want 229", p)
	}
	// The same invoice paid event again (a second hook run) changes nothing.
	e.publishAs(envs[1], envs[1].ID+":again")
	e.drained()
	if n := e.f.created(); n != 1 {
		t.Errorf("the fake created %d orders after the invoice event came twice, want 1", n)
	}
}

// A CodeGuard renewal whose reply is lost after LogicBoxes applied it is
// not applied a second time by the worker's retry.
func TestCodeGuardRenewalReplyLost(t *testing.T) {
	t.Parallel()
	srv := codeguardtest.NewServer()
	t.Cleanup(srv.Close)
	pc := codeguardCase()
	pc.start = func(t *testing.T, log *zap.Logger) *fakeServer { return codeguardFake(t, srv, srv.URL, log) }
	e := newE2E(t, pc, nil)
	const sid = 210
	ref := e.signup(sid).Reference
	before, _ := srv.OrderByRef(ref)
	srv.DropAfterEffectOn("codeguard/renew.json")
	e.publish(renewalPaid(t, 6210, sid, pc.product))
	res := e.wait(events.ProvisioningSucceeded, events.RenewalKey(source, sid, 6210))
	e.drained()
	if n := srv.Renewals(); n != 1 {
		t.Fatalf("renewals at the fake = %d after one renewal whose reply was lost, want 1", n)
	}
	after, _ := srv.OrderByRef(ref)
	if after.End <= before.End {
		t.Errorf("order expiry %d → %d: not renewed", before.End, after.End)
	}
	if res.Reference != ref || res.Attempt < 2 {
		t.Errorf("renewal result %+v; want order %s after a failed attempt", res, ref)
	}
}

// ClientAdd becomes one StoreGrid reseller, however often the hook fires.
func TestStoreGridClientAddedReseller(t *testing.T) {
	t.Parallel()
	srv := storegridtest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddReseller(testReseller)
	pc := storegridCase()
	pc.start = func(t *testing.T, log *zap.Logger) *fakeServer { return storegridFake(t, srv, srv.URL, log) }
	e := newE2E(t, pc, nil)
	c := client
	c.ID = 8
	env := clientAdded(t, c)
	first := e.publish(env)
	if second := e.publish(env); !second.Duplicate || second.Sequence != first.Sequence {
		t.Fatalf("second publish ack %+v: not de-duplicated", second)
	}
	e.publishAs(env, env.ID+":again")
	key := events.ClientKey(source, c.ID, events.SignupReseller)
	res := e.wait(events.ProvisioningSucceeded, key)
	e.drained()
	name := providers.AccountName(events.Operation{Source: source, Action: events.SignupReseller, ClientID: c.ID}, "hwr", 16)
	if res.Reference != name || res.Action != events.SignupReseller || res.ClientID != c.ID || len(res.WriteBack) != 0 {
		t.Errorf("reseller signup result %+v; want reseller %q without write-back", res, name)
	}
	if n := srv.Created(); n != 1 {
		t.Fatalf("the fake created %d accounts for one ClientAdd, want 1", n)
	}
	a, ok := srv.Account(name)
	if !ok || a.Kind != storegridtest.KindReseller || !a.Active || a.Fields["storageAllotted"] != "1099511627776" {
		t.Errorf("reseller at the fake: %+v (found %v)", a, ok)
	}
	// the copy with another Nats-Msg-Id re-publishes the recorded result
	if rs := e.resultsAtLeast(events.ProvisioningSucceeded, key, 2); len(rs) != 2 || !reflect.DeepEqual(rs[0], rs[1]) {
		t.Errorf("succeeded results %+v; want the result and its re-published copy", rs)
	}
}
