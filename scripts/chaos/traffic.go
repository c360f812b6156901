package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
)

// source is the WHMCS instance every valid event comes from.
const source = "main"

// Products of the chaos catalog (see catalogYAML).
const (
	productComet         = 10
	productCodeGuard     = 22 // provisioned on acceptance
	productCodeGuardPaid = 20 // provisioned when the first invoice is paid
	productStoreGrid     = 30
	storegridReseller    = "acme-backup"
	catalogYAML          = `unknown_products: ignore
client_added:
  - provider: storegrid
    action: signup_reseller
    settings: {storage_allotted: 1099511627776, activation_status: yes, auto_authorization: no, auto_mcal: yes}
products:
  - {id: 10, name: Comet Backup, provider: comet}
  - {id: 20, name: CodeGuard Basic, provider: codeguard, provision_on: invoice.paid, settings: {plan_id: 229}}
  - {id: 22, name: CodeGuard Basic (on acceptance), provider: codeguard, settings: {plan_id: 229}}
  - id: 30
    name: StoreGrid customer 100 GB
    provider: storegrid
    settings: {reseller_name: acme-backup, storage_allotted: 107374182400, activation_status: yes, auto_mcal: yes, retrieve_pass_key: yes}
`
)

// Kinds of event the ledger accounts for.
const (
	kindComet         = "signup/comet"
	kindStoreGrid     = "signup/storegrid"
	kindCodeGuard     = "signup/codeguard"
	kindCodeGuardNoop = "accept/codeguard-on-invoice" // AcceptOrder of a product provisioned on payment: no operation
	kindCodeGuardPaid = "invoice-paid/codeguard"
	kindReseller      = "client-added/storegrid"
	kindRenewal       = "renewal/codeguard"
)

// malformedKind is one kind of bad input of issue 10. Each must end as a
// dead-letter entry and a provisioning.dead_lettered result.
type malformedKind struct {
	name string
	what string
	// build returns the subject and body; sid is a service id no valid
	// event uses.
	build func(sid int) (subject string, body []byte)
}

var malformedKinds = []malformedKind{
	{"long-type", "5,000-character type on whmcs.main.order.accepted", func(sid int) (string, []byte) {
		return orderSubject(), mustEnvelope(events.Type(strings.Repeat("t", 5000)), source, sid, orderData(sid, productComet, domainOf(sid)))
	}},
	{"long-source", "5,000-character source on whmcs.main.order.accepted", func(sid int) (string, []byte) {
		return orderSubject(), mustEnvelope(events.OrderAccepted, strings.Repeat("s", 5000), sid, orderData(sid, productComet, domainOf(sid)))
	}},
	{"big-raw", "~800 KB non-JSON body", func(sid int) (string, []byte) {
		return orderSubject(), bytes.Repeat([]byte("not json "), 800*1024/9)
	}},
	{"empty-token-type", "type order..accepted", func(sid int) (string, []byte) {
		return orderSubject(), mustEnvelope("order..accepted", source, sid, orderData(sid, productComet, domainOf(sid)))
	}},
	{"trailing-dot-type", "type order.accepted.", func(sid int) (string, []byte) {
		return orderSubject(), mustEnvelope("order.accepted.", source, sid, orderData(sid, productComet, domainOf(sid)))
	}},
	{"bad-utf8-source", "invalid UTF-8 in source", func(sid int) (string, []byte) {
		return orderSubject(), rawUTF8(mustEnvelope(events.OrderAccepted, "ma@@in", sid, orderData(sid, productComet, domainOf(sid))))
	}},
	{"bad-utf8-domain", "invalid UTF-8 in a CodeGuard domain", func(sid int) (string, []byte) {
		return orderSubject(), rawUTF8(mustEnvelope(events.OrderAccepted, source, sid, orderData(sid, productCodeGuard, fmt.Sprintf("bad@@%d.example.com", sid))))
	}},
	{"no-type-subject", "a valid order on subject whmcs.chaos", func(sid int) (string, []byte) {
		return events.InboundPrefix + ".chaos", mustEnvelope(events.OrderAccepted, source, sid, orderData(sid, productComet, domainOf(sid)))
	}},
}

func kindNames() []string {
	var out []string
	for _, k := range malformedKinds {
		out = append(out, k.name)
	}
	return out
}

func orderSubject() string { return events.InboundSubject(source, events.OrderAccepted) }

func domainOf(sid int) string { return fmt.Sprintf("site%d.example.com", sid) }

// rawUTF8 replaces each "@@" by the byte 0xff (never valid UTF-8).
func rawUTF8(b []byte) []byte { return bytes.ReplaceAll(b, []byte("@@"), []byte{0xff}) }

// clientOf is the WHMCS client that ordered service sid, shaped as
// GetClientsDetails gives it to the hook.
func clientOf(id int) events.Client {
	return events.Client{ID: id, FirstName: "Ada", LastName: fmt.Sprintf("Chaos%d", id), CompanyName: "Analytical Engines Ltd",
		Email: fmt.Sprintf("client%d@example.com", id), Address1: "12 Engine Row", City: "London", State: "Greater London",
		Postcode: "N1 9GU", Country: "GB", PhoneNumber: "+44.2079460000", Language: "english"}
}

func clientOfService(sid int) int { return 100000 + sid }

func orderData(sid, product int, domain string) events.OrderAcceptedData {
	return events.OrderAcceptedData{OrderID: 1000 + sid, InvoiceID: 5000 + sid, Client: clientOf(clientOfService(sid)),
		Services: []events.OrderedService{{ServiceID: sid, ProductID: product, Domain: domain, BillingCycle: "Annually"}}}
}

// mustEnvelope encodes an envelope without validating it (malformed events
// are the point); the id is the hook's AcceptOrder id.
func mustEnvelope(t events.Type, src string, sid int, data any) []byte {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(events.Envelope{ID: fmt.Sprintf("whmcs:%s:AcceptOrder:%d", source, 1000+sid), Type: t,
		SpecVersion: events.SpecVersion, OccurredAt: time.Now().UTC(), Source: src, Data: raw})
	if err != nil {
		panic(err)
	}
	return b
}

// event is one logical event: every publish of it carries the same
// Nats-Msg-Id, as the hook's retries and spool do.
type event struct {
	kind      string
	malformed bool
	msgID     string
	envID     string // "" when the body is not an envelope
	subject   string
	body      []byte
	ops       []string // operation keys a valid event must produce results for
	provider  string
	sid       int
	clientID  int
	invoiceID int

	mu        sync.Mutex
	publishes int
	inWindow  int      // publishes JetStream dropped as duplicates
	stored    []uint64 // stream sequences acknowledged as stored
	rejected  string   // last publish error, when no publish was ever acknowledged
}

func newEvent(kind string, env events.Envelope, ops []string, provider string, sid, clientID, invoiceID int) *event {
	b, err := json.Marshal(env)
	if err != nil {
		panic(err)
	}
	return &event{kind: kind, msgID: env.ID, envID: env.ID, subject: events.InboundSubject(env.Source, env.Type), body: b,
		ops: ops, provider: provider, sid: sid, clientID: clientID, invoiceID: invoiceID}
}

func envelope(id string, t events.Type, data any) events.Envelope {
	env, err := events.NewEnvelope(id, t, source, time.Now(), data)
	if err != nil {
		panic(err)
	}
	return env
}

func signupEvent(kind, provider string, sid, product int) *event {
	return newEvent(kind, envelope(fmt.Sprintf("whmcs:%s:AcceptOrder:%d", source, 1000+sid), events.OrderAccepted,
		orderData(sid, product, domainOf(sid))), []string{events.ServiceKey(source, sid, events.SignupCustomer)}, provider, sid, clientOfService(sid), 0)
}

func noopAcceptEvent(sid int) *event {
	return newEvent(kindCodeGuardNoop, envelope(fmt.Sprintf("whmcs:%s:AcceptOrder:%d", source, 1000+sid), events.OrderAccepted,
		orderData(sid, productCodeGuardPaid, domainOf(sid))), nil, "codeguard", sid, clientOfService(sid), 0)
}

// invoicePaidEvent is InvoicePaid of the order's first invoice, as the
// hook sends it (item type Hosting, not a renewal).
func invoicePaidEvent(sid int) *event {
	inv, cl := 5000+sid, clientOf(clientOfService(sid))
	return newEvent(kindCodeGuardPaid, envelope(fmt.Sprintf("whmcs:%s:InvoicePaid:%d", source, inv), events.InvoicePaid, events.InvoicePaidData{
		InvoiceID: inv, ClientID: cl.ID, Client: &cl, Items: []events.InvoiceItem{{ID: inv*10 + 1, Type: "Hosting", RelID: sid,
			ProductID: productCodeGuardPaid, Description: fmt.Sprintf("CodeGuard - %s (01/01/2026 - 31/12/2026)", domainOf(sid)),
			Amount: "59.00", Domain: domainOf(sid), BillingCycle: "Annually"}}}),
		[]string{events.ServiceKey(source, sid, events.SignupCustomer)}, "codeguard", sid, cl.ID, inv)
}

func renewalEvent(sid, product, invoiceID int) *event {
	return newEvent(kindRenewal, envelope(fmt.Sprintf("whmcs:%s:RenewalPaid:%d:%d", source, invoiceID, sid), events.ServiceRenewalPaid,
		events.RenewalPaidData{ServiceID: sid, ProductID: product, ClientID: clientOfService(sid), InvoiceID: invoiceID, Months: 12,
			Domain: domainOf(sid), BillingCycle: "Annually"}),
		[]string{events.RenewalKey(source, sid, invoiceID)}, "codeguard", sid, clientOfService(sid), invoiceID)
}

func resellerEvent(clientID int) *event {
	return newEvent(kindReseller, envelope(fmt.Sprintf("whmcs:%s:ClientAdd:%d", source, clientID), events.ClientAdded,
		events.ClientAddedData{Client: clientOf(clientID)}), []string{events.ClientKey(source, clientID, events.SignupReseller)}, "storegrid", 0, clientID, 0)
}

func malformedEvent(k malformedKind, sid int) *event {
	subj, body := k.build(sid)
	e := &event{kind: "malformed/" + k.name, malformed: true, subject: subj, body: body, sid: sid}
	var env struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &env) == nil && env.ID != "" {
		e.envID = env.ID
	}
	e.msgID = fmt.Sprintf("chaos:malformed:%s:%d", k.name, sid)
	return e
}

// publish publishes e once (one "hook call"), retrying through NATS
// outages with the same Nats-Msg-Id for up to a minute.
func publish(ctx context.Context, js jetstream.JetStream, e *event) {
	e.mu.Lock()
	e.publishes++
	e.mu.Unlock()
	deadline := time.Now().Add(time.Minute)
	var lastErr error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 4*time.Second)
		msg := nats.NewMsg(e.subject)
		msg.Data = e.body
		ack, err := js.PublishMsg(pctx, msg, jetstream.WithMsgID(e.msgID))
		cancel()
		if err == nil {
			e.mu.Lock()
			if ack.Duplicate {
				e.inWindow++
			} else {
				e.stored = append(e.stored, ack.Sequence)
			}
			e.rejected = ""
			e.mu.Unlock()
			return
		}
		lastErr = err
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code >= 400 && apiErr.Code < 500 && apiErr.ErrorCode != 0 {
			break // the stream refused it (e.g. too large): a retry will not help
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	e.mu.Lock()
	if len(e.stored) == 0 && e.inWindow == 0 {
		e.rejected = fmt.Sprint(lastErr)
	}
	e.mu.Unlock()
}
