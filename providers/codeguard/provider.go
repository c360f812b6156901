package codeguard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// PasswordSource gives the password of the LogicBoxes customer a signup
// creates (customers/signup.json passwd). It must return the same password
// for the same operation on every call, so a retried signup sends the same
// one. The password is never logged, returned in an error, or put in an
// Outcome. *providers.DerivedPasswords satisfies it.
type PasswordSource interface {
	ServicePassword(ctx context.Context, op events.Operation) (string, error)
}

// Errors callers can match with errors.Is.
var (
	// ErrNoOrder: a lifecycle operation found no live CodeGuard order for the
	// service's domain (permanent).
	ErrNoOrder = errors.New("no CodeGuard order for the domain")
	// ErrUnsupported: the action has no CodeGuard equivalent (permanent).
	ErrUnsupported = errors.New("not supported")
)

// Plan keys Prepare records for a renewal. PlanEndtimeBefore is the end
// time before this invoice's renewal and PlanEndtimeExpected the end time it
// must leave (before + its months): the renewal is in place exactly when the
// order's endtime has reached the expected one (issue 8 point 4).
const (
	PlanOrderID         = "order_id"
	PlanEndtimeBefore   = "endtime_before"
	PlanEndtimeExpected = "endtime_expected"
	PlanDomain          = "domain"
)

// Provider provisions CodeGuard orders through the LogicBoxes HTTP API and
// honours the provider contract (package providers): it looks before it
// creates, never places a second order for a domain, never applies one
// renewal twice, and treats a lifecycle target already reached as done. It
// is safe for concurrent use.
type Provider struct {
	c         *Client
	cfg       Config
	passwords PasswordSource
	log       *zap.Logger
	locks     keyedLocks
	memory    *providers.MemoryReservations // until UseReservations is called
	shared    atomic.Pointer[providers.Reservations]
}

// New returns a provider for cfg. It fails when cfg does not validate or
// passwords is nil. A nil log discards logs.
func New(cfg Config, passwords PasswordSource, log *zap.Logger) (*Provider, error) {
	if passwords == nil {
		return nil, errors.New("codeguard: a PasswordSource is required (customers/signup.json needs passwd)")
	}
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("provider", Name))
	cfg = cfg.withDefaults()
	c, err := NewClient(cfg, log)
	if err != nil {
		return nil, err
	}
	return &Provider{c: c, cfg: cfg, passwords: passwords, log: log,
		memory: providers.NewMemoryReservations(renewalMemory)}, nil
}

// UseReservations makes the provider keep the renewals it has planned but
// not yet confirmed in r, shared with every replica (the worker passes its
// NATS key-value reservations when it sets up). Without it they are kept in
// this process only. Call it before the first Prepare.
func (p *Provider) UseReservations(r providers.Reservations) {
	if r != nil {
		p.shared.Store(&r)
	}
}

func (p *Provider) reservations() providers.Reservations {
	if r := p.shared.Load(); r != nil {
		return *r
	}
	return p.memory
}

// Client returns the typed API client the provider uses (for operators'
// tools and tests); it shares the provider's limiter.
func (p *Provider) Client() *Client { return p.c }

// String names the provider and its API; it never prints credentials.
func (p *Provider) String() string { return "codeguard.Provider{" + p.c.String() + "}" }

// GoString never prints credentials.
func (p *Provider) GoString() string { return p.String() }

// Name returns "codeguard".
func (p *Provider) Name() string { return Name }

// Prepare validates op and, for a renewal, records the order, the end time
// before this renewal and the end time it must leave ({"order_id",
// "endtime_before", "endtime_expected", "domain"}). endtime_before is the
// order's current expiry, or, when another renewal of the same order was
// planned (by any replica sharing the provider's Reservations) and has not
// been confirmed, the expiry that one will leave. The renewal stays claimed
// among the order's renewals until it is confirmed or fails for good; a
// second Prepare of the same operation returns the same plan. Apply compares against endtime_expected, so a renewal that
// went through unseen is never repeated and a second renewal is never taken
// for the first. Other actions record {"domain"}. Errors are classified.
func (p *Provider) Prepare(ctx context.Context, op events.Operation) (map[string]string, error) {
	if err := unsupported(op); err != nil {
		return nil, err
	}
	if _, err := settingsOf(op, p.cfg.InvoiceOption); err != nil {
		return nil, err
	}
	domain, err := domainOf(op)
	if err != nil {
		return nil, err
	}
	if op.Action != events.Renew {
		return map[string]string{PlanDomain: domain}, nil
	}
	if _, err := monthsOf(op); err != nil {
		return nil, err
	}
	months, _ := monthsOf(op)
	unlock := p.locks.lock(domain)
	defer unlock()
	d, found, err := p.findOrder(ctx, domain)
	switch {
	case err != nil:
		return nil, fmt.Errorf("codeguard renew %q: %w", domain, err)
	case !found || d.CurrentStatus == StatusDeleted:
		return nil, events.Permanentf("codeguard renew %q: %w", domain, ErrNoOrder)
	}
	// A renewal planned while an earlier one of the same order is still in
	// flight starts where that one will end, not at today's expiry. The
	// claim is the arbiter between replicas planning at the same time; the
	// expiry it is planned from is read after the claims (planFrom), not
	// the one findOrder read before them.
	v, err := p.reservations().Reserve(ctx, renewalsOf(d.OrderID), op.Key, p.planFrom(ctx, d.OrderID, months, nil))
	if err != nil {
		return nil, fmt.Errorf("codeguard renew %q: claiming its place among the renewals of order %d: %w", domain, d.OrderID, err)
	}
	before, expected, ok := parseClaim(v)
	if !ok {
		return nil, events.Permanentf("codeguard renew %q: the claim of order %d holds %q, not two end times", domain, d.OrderID, v)
	}
	return map[string]string{PlanOrderID: itoa(d.OrderID), PlanEndtimeBefore: itoa(before),
		PlanEndtimeExpected: itoa(expected), PlanDomain: domain}, nil
}

// Lookup reports whether op's effect is already in place at LogicBoxes: a
// live order for the domain (signup), the renewal noted confirmed, or sent
// and the expiry moved past where it would leave it without another
// renewal confirmed from the same start (renew; see ledger.go), the target
// state (suspend, unsuspend, terminate), or the plan (change_package). It
// changes nothing at LogicBoxes; a renewal that lost its place in its
// order's chain (failed for good, dead-lettered, now replayed) takes it
// again, planned from today's expiry.
func (p *Provider) Lookup(ctx context.Context, op events.Operation) (events.Outcome, bool, error) {
	if err := unsupported(op); err != nil {
		return events.Outcome{}, false, err
	}
	domain, err := domainOf(op)
	if err != nil {
		return events.Outcome{}, false, err
	}
	if op.Action == events.Renew {
		rp, err := renewPlan(op)
		if err != nil {
			return events.Outcome{}, false, err
		}
		d, err := p.c.Details(ctx, rp.orderID)
		if err != nil {
			return events.Outcome{}, false, fmt.Errorf("codeguard renew order %d: %w", rp.orderID, err)
		}
		months, err := monthsOf(op)
		if err != nil {
			return events.Outcome{}, false, err
		}
		if _, inPlace, err := p.place(ctx, op, rp, &d, months); err != nil || !inPlace {
			return events.Outcome{}, false, err
		}
		p.confirmed(ctx, rp.orderID, op.Key)
		return done(d, domain), true, nil
	}
	d, found, err := p.findOrder(ctx, domain)
	if err != nil {
		return events.Outcome{}, false, fmt.Errorf("codeguard %s %q: %w", op.Action, domain, err)
	}
	live := found && d.CurrentStatus != StatusDeleted
	switch op.Action {
	case events.SignupCustomer:
		if live {
			return done(d, domain), true, nil
		}
	case events.Suspend:
		if live && d.CurrentStatus == StatusSuspended {
			return done(d, domain), true, nil
		}
	case events.Unsuspend:
		if live && d.CurrentStatus != StatusSuspended {
			return done(d, domain), true, nil
		}
	case events.Terminate:
		if !live {
			out := events.Outcome{AlreadyDone: true, Details: map[string]string{"domain": domain}}
			if found {
				out = done(d, domain)
			}
			return out, true, nil
		}
	case events.ChangePackage:
		s, err := settingsOf(op, p.cfg.InvoiceOption)
		if err != nil {
			return events.Outcome{}, false, err
		}
		if live && d.PlanID == s.planID {
			return done(d, domain), true, nil
		}
	}
	return events.Outcome{}, false, nil
}

// Apply performs op and is safe to call again after any failure:
//
//   - signup_customer: an existing live order for the domain is success
//     (AlreadyDone); otherwise the customer is found by email or signed up,
//     and codeguard/add.json places one order. Reference = order id.
//   - renew: if the expiry has reached the planned endtime_expected (the
//     end time before this invoice's renewal plus its months), the renewal
//     went through already (AlreadyDone); if it is short of the planned
//     endtime_before, an earlier renewal of the order has not taken effect
//     yet and this one waits (transient); otherwise renew.json. A renewal
//     whose reply is lost is never sent again, and one renewal's effect is
//     never mistaken for another's. Each renewal is noted in its order's
//     ledger as sent before renew.json and as confirmed after it (see
//     ledger.go); a renewal replayed after it left its order's chain is
//     planned again from today's expiry.
//   - suspend / unsuspend / terminate: the order is resolved by domain; a
//     target state already reached (or no order, for terminate) is
//     AlreadyDone.
//   - change_package: modify.json to the product's plan_id, unless the
//     order is on that plan already.
//   - change_password and signup_reseller: permanent ErrUnsupported.
//
// Every error is classified (events.ClassOf) and never holds the api-key or
// the customer password.
func (p *Provider) Apply(ctx context.Context, op events.Operation) (events.Outcome, error) {
	if err := unsupported(op); err != nil {
		return events.Outcome{}, err
	}
	s, err := settingsOf(op, p.cfg.InvoiceOption)
	if err != nil {
		return events.Outcome{}, err
	}
	domain, err := domainOf(op)
	if err != nil {
		return events.Outcome{}, err
	}
	switch op.Action {
	case events.SignupCustomer:
		return p.signup(ctx, op, s, domain)
	case events.Renew:
		unlock := p.locks.lock(domain) // read expiry → renew, one renewal of an order at a time
		defer unlock()
		out, err := p.renew(ctx, op, s, domain)
		if err != nil && events.ClassOf(err) == events.Permanent {
			// It will not take effect unless an operator replays it: later
			// renewals of the order no longer start where it would end.
			if rp, perr := renewPlan(op); perr == nil {
				p.confirmed(ctx, rp.orderID, op.Key)
			}
		}
		return out, err
	case events.Suspend, events.Unsuspend, events.Terminate:
		return p.lifecycle(ctx, op, domain)
	case events.ChangePackage:
		return p.changePackage(ctx, op, s, domain)
	}
	return events.Outcome{}, events.Permanentf("codeguard %s: %w", op.Action, ErrUnsupported)
}

// Check calls products/plan-details.json. Rejected credentials (or a host
// whose IP is not whitelisted) give a permanent error naming the variables
// to check; an outage gives a transient one.
func (p *Provider) Check(ctx context.Context) error {
	plans, found, err := p.c.PlanDetails(ctx)
	if err != nil {
		if events.ClassOf(err) == events.Permanent {
			return fmt.Errorf("codeguard check: LogicBoxes refused the call; check %[1]s_AUTH_USERID, %[1]s_API_KEY "+
				"and that this host's IP is whitelisted in the reseller control panel: %[2]w", EnvPrefix, err)
		}
		return fmt.Errorf("codeguard check: %w", err)
	}
	if !found || len(plans) == 0 {
		p.log.Warn("codeguard check: products/plan-details.json lists no CodeGuard plans; is the reseller signed up for CodeGuard?")
	}
	return nil
}

func (p *Provider) signup(ctx context.Context, op events.Operation, s productSettings, domain string) (events.Outcome, error) {
	months, err := monthsOf(op)
	if err != nil {
		return events.Outcome{}, err
	}
	// One signup per domain at a time in this process; across processes the
	// order look-up below is the guard.
	unlock := p.locks.lock(domain)
	defer unlock()

	d, found, err := p.findOrder(ctx, domain)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("codeguard add %q: looking for an existing order: %w", domain, err)
	}
	if found && d.CurrentStatus != StatusDeleted {
		p.log.Info("codeguard order already exists", zap.String("domain", domain), zap.Int64("order_id", d.OrderID),
			zap.String("op_key", op.Key))
		return done(d, domain), nil
	}
	if op.Client == nil {
		return events.Outcome{}, events.Permanentf("codeguard add %q: the operation carries no client details (needed for the LogicBoxes customer)", domain)
	}
	customerID, err := p.customer(ctx, op)
	if err != nil {
		return events.Outcome{}, err
	}
	act, err := p.c.Add(ctx, AddRequest{DomainName: domain, CustomerID: customerID, PlanID: s.planID,
		Months: months, InvoiceOption: s.invoiceOption, AutoRenew: s.autoRenew})
	if err != nil {
		return events.Outcome{}, fmt.Errorf("codeguard add %q: %w", domain, err)
	}
	orderID := act.OrderID
	if orderID <= 0 {
		d, found, err := p.findOrder(ctx, domain)
		if err != nil || !found {
			return events.Outcome{}, events.AsTransient(fmt.Errorf("codeguard add %q: accepted (action %d, %s) but the order id is not known yet", domain, act.ActionID, act.ActionStatus), 0)
		}
		orderID = d.OrderID
	}
	p.log.Info("codeguard order added", zap.String("domain", domain), zap.Int64("order_id", orderID),
		zap.Int64("customer_id", customerID), zap.Int64("plan_id", s.planID), zap.Int("months", months),
		zap.String("action_status", act.ActionStatus), zap.String("op_key", op.Key))
	return events.Outcome{Reference: itoa(orderID), Details: map[string]string{
		"customer_id": itoa(customerID), "domain": domain, "plan_id": itoa(s.planID),
		"months": strconv.Itoa(months), "action_status": act.ActionStatus,
	}}, nil
}

// customer finds the LogicBoxes customer by the client's email or signs one
// up, and returns its id.
func (p *Provider) customer(ctx context.Context, op events.Operation) (int64, error) {
	email := strings.ToLower(strings.TrimSpace(op.Client.Email))
	if email == "" {
		return 0, events.Permanentf("codeguard customer for client %d: the client has no email address", op.ClientID)
	}
	cu, found, err := p.c.CustomerByUsername(ctx, email)
	if err != nil {
		return 0, fmt.Errorf("codeguard customer for client %d: %w", op.ClientID, err)
	}
	if found {
		return cu.ID, nil
	}
	pw, err := p.passwords.ServicePassword(ctx, op)
	if err != nil {
		return 0, fmt.Errorf("codeguard customer for client %d: getting the service password: %w", op.ClientID, err)
	}
	if len(pw) < 8 {
		return 0, events.Permanentf("codeguard customer for client %d: the service password is shorter than 8 characters", op.ClientID)
	}
	fields, err := signupFields(*op.Client, pw, op.Setting(SettingLangPref, ""))
	if err != nil {
		return 0, fmt.Errorf("codeguard customer signup: %w", err)
	}
	if len(fields.Country) != 2 {
		return 0, events.Permanentf("codeguard customer for client %d: LogicBoxes needs the client's country (ISO 3166 alpha-2), got %q", op.ClientID, op.Client.Country)
	}
	id, err := p.c.SignupCustomer(ctx, fields)
	if err != nil {
		// A concurrent signup, or an earlier one whose reply was lost, may
		// have created the customer: a username is unique at LogicBoxes.
		if events.ClassOf(err) == events.Permanent {
			if cu, found, lerr := p.c.CustomerByUsername(ctx, email); lerr == nil && found {
				return cu.ID, nil
			}
		}
		return 0, fmt.Errorf("codeguard customer signup for client %d: %w", op.ClientID, err)
	}
	p.log.Info("codeguard customer created", zap.Int64("customer_id", id), zap.Int("client_id", op.ClientID), zap.String("op_key", op.Key))
	return id, nil
}

func (p *Provider) renew(ctx context.Context, op events.Operation, s productSettings, domain string) (events.Outcome, error) {
	months, err := monthsOf(op)
	if err != nil {
		return events.Outcome{}, err
	}
	rp, err := renewPlan(op)
	if err != nil {
		return events.Outcome{}, err
	}
	orderID := rp.orderID
	d, err := p.c.Details(ctx, orderID)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("codeguard renew order %d: reading its expiry: %w", orderID, err)
	}
	rp, inPlace, err := p.place(ctx, op, rp, &d, months)
	if err != nil {
		return events.Outcome{}, err
	}
	log := p.log.With(zap.Int64("order_id", orderID), zap.Int64("endtime_before", rp.before),
		zap.Int64("endtime_expected", rp.expected), zap.Int64("endtime", d.EndTime), zap.String("op_key", op.Key))
	switch {
	case inPlace:
		log.Info("codeguard renewal already applied: the expiry has reached the one this renewal expects")
		p.confirmed(ctx, orderID, op.Key)
		return done(d, domain), nil
	case d.CurrentStatus == StatusDeleted:
		return events.Outcome{}, events.Permanentf("codeguard renew order %d (%q): the order is deleted", orderID, domain)
	case rp.waiting(d.EndTime):
		// An earlier renewal of this order (planned first) has not taken
		// effect yet: renewing now would let that one mistake this one's
		// effect for its own.
		return events.Outcome{}, events.AsTransient(fmt.Errorf("codeguard renew order %d: waiting for the earlier renewal of this order (endtime %d, this renewal starts at %d)",
			orderID, d.EndTime, rp.before), 5*time.Second)
	}
	// Noted before it is sent: whatever happens to the reply, to this
	// worker or to this operation (dead-lettered, replayed days later),
	// every replica can tell later whether the end time moved for it.
	sent := renewalNote{at: d.EndTime, end: addMonths(d.EndTime, months)}
	if err := p.note(ctx, orderID, op.Key, func([]providers.Claim) (string, error) { return sent.String(), nil }); err != nil {
		return events.Outcome{}, fmt.Errorf("codeguard renew order %d: noting the renewal before sending it: %w", orderID, err)
	}
	act, err := p.c.Renew(ctx, RenewRequest{OrderID: orderID, Months: months, AutoRenew: s.autoRenew, InvoiceOption: s.invoiceOption})
	if err != nil {
		if events.ClassOf(err) != events.Transient {
			// LogicBoxes refused it: not applied, so nothing to attribute.
			p.forgetNote(ctx, orderID, op.Key)
			return events.Outcome{}, fmt.Errorf("codeguard renew order %d: %w", orderID, err)
		}
		// The renewal may have gone through although the reply was lost:
		// re-read the expiry (even if ctx has ended) so the error says so.
		// The next attempt compares with endtime_expected again and never
		// renews twice.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
		defer cancel()
		after, rerr := p.c.Details(rctx, orderID)
		switch {
		case rerr != nil:
			return events.Outcome{}, fmt.Errorf("codeguard renew order %d: outcome unknown (re-reading the expiry failed: %v): %w", orderID, rerr, err)
		case rp.reached(after.EndTime):
			log.Warn("codeguard renew reply lost but the renewal took effect", zap.Int64("endtime_after", after.EndTime))
			return events.Outcome{}, fmt.Errorf("codeguard renew order %d: reply lost, but the renewal took effect (endtime %d → %d, expected %d); the next attempt reports it done without renewing again: %w",
				orderID, d.EndTime, after.EndTime, rp.expected, err)
		default:
			return events.Outcome{}, fmt.Errorf("codeguard renew order %d: not applied (endtime %d, expected %d); the next attempt checks again before renewing: %w",
				orderID, after.EndTime, rp.expected, err)
		}
	}
	out := events.Outcome{Reference: itoa(orderID), Details: map[string]string{
		"domain": domain, "months": strconv.Itoa(months), "action_status": act.ActionStatus,
		"endtime_expected": itoa(rp.expected),
	}}
	conf := renewalNote{confirmed: true, at: sent.at, end: sent.end}
	if after, err := p.c.Details(ctx, orderID); err == nil {
		out.Details["endtime"] = itoa(after.EndTime)
		conf.end = after.EndTime
	}
	// It was applied: confirmed whatever else the ledger says (a failure to
	// note it leaves "sent", which a later look-up attributes the same way).
	if err := p.note(ctx, orderID, op.Key, func([]providers.Claim) (string, error) { return conf.String(), nil }); err != nil {
		log.Warn("codeguard: could not note a renewal as confirmed; it stays noted as sent", zap.Error(err))
	}
	p.confirmed(ctx, orderID, op.Key)
	log.Info("codeguard order renewed", zap.Int("months", months))
	return out, nil
}

func (p *Provider) lifecycle(ctx context.Context, op events.Operation, domain string) (events.Outcome, error) {
	verb := map[events.Action]string{events.Suspend: "suspend", events.Unsuspend: "unsuspend", events.Terminate: "delete"}[op.Action]
	d, found, err := p.findOrder(ctx, domain)
	if err != nil {
		return events.Outcome{}, fmt.Errorf("codeguard %s %q: %w", verb, domain, err)
	}
	if op.Action == events.Terminate && (!found || d.CurrentStatus == StatusDeleted) {
		if !found {
			return events.Outcome{AlreadyDone: true, Details: map[string]string{"domain": domain}}, nil
		}
		return done(d, domain), nil
	}
	switch {
	case !found:
		return events.Outcome{}, events.Permanentf("codeguard %s %q: %w", verb, domain, ErrNoOrder)
	case d.CurrentStatus == StatusDeleted:
		return events.Outcome{}, events.Permanentf("codeguard %s %q: order %d is deleted", verb, domain, d.OrderID)
	case op.Action == events.Suspend && d.CurrentStatus == StatusSuspended,
		op.Action == events.Unsuspend && d.CurrentStatus != StatusSuspended:
		return done(d, domain), nil
	}
	var act Action
	switch op.Action {
	case events.Suspend:
		reason := strings.TrimSpace(op.Reason)
		if reason == "" {
			reason = "Suspended by the billing system"
		}
		act, err = p.c.Suspend(ctx, d.OrderID, reason)
	case events.Unsuspend:
		act, err = p.c.Unsuspend(ctx, d.OrderID)
	default:
		act, err = p.c.Delete(ctx, d.OrderID)
	}
	if err != nil {
		return events.Outcome{}, fmt.Errorf("codeguard %s order %d (%q): %w", verb, d.OrderID, domain, err)
	}
	p.log.Info("codeguard order "+verb, zap.Int64("order_id", d.OrderID), zap.String("domain", domain), zap.String("op_key", op.Key))
	return events.Outcome{Reference: itoa(d.OrderID), Details: map[string]string{
		"domain": domain, "customer_id": itoa(d.CustomerID), "action_status": act.ActionStatus,
	}}, nil
}

func (p *Provider) changePackage(ctx context.Context, op events.Operation, s productSettings, domain string) (events.Outcome, error) {
	months, err := monthsOf(op)
	if err != nil {
		return events.Outcome{}, err
	}
	d, found, err := p.findOrder(ctx, domain)
	switch {
	case err != nil:
		return events.Outcome{}, fmt.Errorf("codeguard modify %q: %w", domain, err)
	case !found || d.CurrentStatus == StatusDeleted:
		return events.Outcome{}, events.Permanentf("codeguard modify %q: %w", domain, ErrNoOrder)
	case d.PlanID == s.planID:
		return done(d, domain), nil
	}
	act, err := p.c.Modify(ctx, ModifyRequest{OrderID: d.OrderID, NewPlanID: s.planID, Months: months, InvoiceOption: s.invoiceOption})
	if err != nil {
		return events.Outcome{}, fmt.Errorf("codeguard modify order %d to plan %d: %w", d.OrderID, s.planID, err)
	}
	p.log.Info("codeguard order plan changed", zap.Int64("order_id", d.OrderID), zap.Int64("from_plan", d.PlanID),
		zap.Int64("to_plan", s.planID), zap.String("op_key", op.Key))
	return events.Outcome{Reference: itoa(d.OrderID), Details: map[string]string{
		"domain": domain, "plan_id": itoa(s.planID), "previous_plan_id": itoa(d.PlanID), "action_status": act.ActionStatus,
	}}, nil
}

// findOrder resolves the domain's CodeGuard order: codeguard/orderid.json,
// then details.json. When orderid.json knows no order, is missing at this
// API, or names a deleted order, codeguard/search.json (domain-name, live
// statuses) decides: a live order found there wins; otherwise a deleted
// order is returned as found with CurrentStatus Deleted, and no order at
// all as not found.
func (p *Provider) findOrder(ctx context.Context, domain string) (OrderDetails, bool, error) {
	id, found, err := p.c.OrderID(ctx, domain)
	if err != nil && !errors.Is(err, ErrOrderIDUnavailable) {
		return OrderDetails{}, false, err
	}
	if err != nil || !found {
		return p.searchLive(ctx, domain)
	}
	d, err := p.c.Details(ctx, id)
	if err != nil {
		return OrderDetails{}, false, err
	}
	if d.CurrentStatus != StatusDeleted {
		return d, true, nil
	}
	if live, ok, err := p.searchLive(ctx, domain); err != nil || ok {
		return live, ok, err
	}
	return d, true, nil
}

// searchLive finds the newest live (not deleted) order for domain with
// codeguard/search.json.
func (p *Provider) searchLive(ctx context.Context, domain string) (OrderDetails, bool, error) {
	res, err := p.c.Search(ctx, SearchRequest{Records: 50, Page: 1, DomainName: domain,
		Statuses: []string{StatusActive, StatusInActive, StatusSuspended}})
	if err != nil {
		return OrderDetails{}, false, err
	}
	var best SearchOrder
	for _, o := range res.Orders {
		if o.Status == StatusDeleted || (o.Domain != "" && !strings.EqualFold(o.Domain, domain)) {
			continue
		}
		if o.OrderID > best.OrderID {
			best = o
		}
	}
	if best.OrderID == 0 {
		return OrderDetails{}, false, nil
	}
	d, err := p.c.Details(ctx, best.OrderID)
	if err != nil {
		return OrderDetails{}, false, err
	}
	return d, d.CurrentStatus != StatusDeleted, nil
}

func done(d OrderDetails, domain string) events.Outcome {
	det := map[string]string{"domain": domain, "status": d.CurrentStatus}
	if d.CustomerID > 0 {
		det["customer_id"] = itoa(d.CustomerID)
	}
	if d.PlanID > 0 {
		det["plan_id"] = itoa(d.PlanID)
	}
	if d.EndTime > 0 {
		det["endtime"] = itoa(d.EndTime)
	}
	return events.Outcome{Reference: itoa(d.OrderID), AlreadyDone: true, Details: det}
}

func unsupported(op events.Operation) error {
	switch op.Action {
	case events.ChangePassword:
		return events.Permanentf("codeguard %s: %w: CodeGuard orders have no password", op.Action, ErrUnsupported)
	case events.SignupReseller:
		return events.Permanentf("codeguard %s: %w: CodeGuard orders belong to customers; use signup_customer", op.Action, ErrUnsupported)
	}
	if !op.Action.Valid() {
		return events.Permanentf("codeguard: unknown action %q", op.Action)
	}
	return nil
}

// domainOf returns op's domain, lowercased, without a trailing dot.
func domainOf(op events.Operation) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(op.Domain)), ".")
	if d == "" {
		d = op.Plan[PlanDomain]
	}
	if d == "" {
		return "", events.Permanentf("codeguard %s: service %d has no domain; CodeGuard orders are per domain", op.Action, op.ServiceID)
	}
	if strings.ContainsAny(d, " /:?#@") {
		return "", events.Permanentf("codeguard %s: service %d: %q is not a domain name", op.Action, op.ServiceID, d)
	}
	return d, nil
}

// monthsOf is op.Months, or the months of op.BillingCycle.
func monthsOf(op events.Operation) (int, error) {
	if op.Months > 0 {
		return op.Months, nil
	}
	if m, ok := events.MonthsOf(op.BillingCycle); ok {
		return m, nil
	}
	return 0, events.Permanentf("codeguard %s: service %d: no months and billing cycle %q does not renew", op.Action, op.ServiceID, op.BillingCycle)
}

// renewalPlan is what Prepare recorded for one renewal.
type renewalPlan struct {
	orderID, before, expected int64
	slack                     int64 // seconds either side a provider's month arithmetic may differ
}

// reached reports whether endtime shows this renewal in place.
func (r renewalPlan) reached(endtime int64) bool { return endtime >= r.expected-r.slack }

// waiting reports whether an earlier renewal of the order has not taken
// effect yet (the expiry is short of where this renewal starts).
func (r renewalPlan) waiting(endtime int64) bool { return endtime < r.before-r.slack }

func renewPlan(op events.Operation) (renewalPlan, error) {
	id, err1 := strconv.ParseInt(op.Plan[PlanOrderID], 10, 64)
	before, err2 := strconv.ParseInt(op.Plan[PlanEndtimeBefore], 10, 64)
	if err1 != nil || err2 != nil || id <= 0 {
		return renewalPlan{}, events.Permanentf("codeguard renew: the plan lacks %q and %q; Prepare must run (and its plan be kept) before Apply", PlanOrderID, PlanEndtimeBefore)
	}
	months, err := monthsOf(op)
	if err != nil {
		return renewalPlan{}, err
	}
	expected, err := strconv.ParseInt(op.Plan[PlanEndtimeExpected], 10, 64)
	if err != nil {
		// a plan recorded before endtime_expected existed
		expected = addMonths(before, months)
	}
	return renewalPlan{orderID: id, before: before, expected: expected, slack: renewalSlack(months)}, nil
}

// addMonths adds months calendar months to a unix time (UTC).
func addMonths(unix int64, months int) int64 {
	return time.Unix(unix, 0).UTC().AddDate(0, months, 0).Unix()
}

// renewalSlack is how far LogicBoxes' new expiry may differ from calendar
// month arithmetic and still count (its exact rule is not documented):
// two days plus half a day per month, always well under one month.
func renewalSlack(months int) int64 {
	return int64((48 + 12*months) * 3600)
}

// renewalMemory is how long a renewal claim lasts in MemoryReservations
// (the provider used without shared reservations).
const renewalMemory = 24 * time.Hour

// renewalsOf names the claims of an order's renewals in Reservations; each
// claim's value is "<endtime_before> <endtime_expected>".
func renewalsOf(orderID int64) string { return "codeguard.renewals." + itoa(orderID) }

// planFrom is the decide function of a renewal's Reserve: it plans the
// renewal from the renewals still in the chain (others) and the order's
// expiry read now, after the claims were read (Reserve calls decide between
// its read of the claims and its compare-and-set write). When seen is not
// nil it is set to the order's details so read.
//
// The expiry must not be read before the claims: a renewal of the order
// on another replica can take effect and release its claim in between
// (renew.json, then Release), and the claims then show no renewal in
// flight while the expiry read still predates it. Planned from that
// expiry, this renewal would expect the end time the other one left and
// take its effect for its own (found by scripts/chaos; see
// TestRenewalPlannedWhileAnotherTakesEffectOnAnotherReplica). Read after
// the claims, the expiry shows every renewal whose claim is gone (a claim
// is released only once its renewal is in place, or will not take
// effect), and the claims still there show every one that is not; a claim
// released after the read makes the write fail, and decide runs again.
func (p *Provider) planFrom(ctx context.Context, orderID int64, months int, seen *OrderDetails) func([]providers.Claim) (string, error) {
	return func(others []providers.Claim) (string, error) {
		d, err := p.c.Details(ctx, orderID)
		if err != nil {
			return "", fmt.Errorf("reading the expiry to plan from: %w", err)
		}
		if seen != nil {
			*seen = d
		}
		return chainValue(d.EndTime, months, others), nil
	}
}

func parseClaim(v string) (before, expected int64, ok bool) {
	b, e, found := strings.Cut(v, " ")
	before, err1 := strconv.ParseInt(b, 10, 64)
	expected, err2 := strconv.ParseInt(e, 10, 64)
	return before, expected, found && err1 == nil && err2 == nil
}

// confirmed releases a renewal's claim: it is in place, or failed for good
// and will not take effect unless an operator replays it. A release that
// fails is logged; the claim then ends when the reservations judge its
// operation finished (see providers.Reservations).
func (p *Provider) confirmed(ctx context.Context, orderID int64, opKey string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
	defer cancel()
	if err := p.reservations().Release(rctx, renewalsOf(orderID), opKey); err != nil {
		p.log.Warn("codeguard: could not release a renewal's claim; it ends with its operation", zap.Int64("order_id", orderID),
			zap.String("op_key", opKey), zap.Error(err))
	}
}

// keyedLocks serialises work per key (a domain) within one process.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*keyedLock
}

type keyedLock struct {
	mu sync.Mutex
	n  int
}

func (k *keyedLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.n++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.n--; l.n == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
