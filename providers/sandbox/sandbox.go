// Package sandbox is an in-process provider that keeps accounts in memory.
// It is what `hookworker run` uses when no real provider is configured, and
// what the pipeline's tests count effects with. It honours the provider
// contract exactly like a real provider (look-before-create, idempotent
// lifecycle calls) and can be told to fail, to be slow, or to "crash" after
// applying an effect.
//
// Catalog settings it understands, per product:
//
//	fail_first: N        the first N attempts of each operation fail (transient)
//	fail: permanent      every attempt fails permanently
//	delay: 250ms         each call takes this long
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// Name is the provider name the catalog uses for the sandbox.
const Name = "sandbox"

// Account is one account the sandbox holds.
type Account struct {
	Name      string
	Action    events.Action
	ServiceID int
	ClientID  int
	Suspended bool
	Deleted   bool
	Renewals  int
	Package   map[string]string
}

// Provider is the in-memory provider. The zero value is not usable; call New.
type Provider struct {
	mu       sync.Mutex
	accounts map[string]*Account
	applied  map[string]bool // operation keys whose effect exists
	attempts map[string]int  // operation key → Apply calls
	effects  int             // effects applied (creates, renewals, state changes)
	calls    int
	started  int

	// AfterEffect, when set, runs after an effect is applied and before
	// Apply returns: a test can block here to "kill" the worker mid-call.
	AfterEffect func(ctx context.Context, op events.Operation)
	failNext    []error
	dropNext    bool
}

// DropNextReply makes the next Apply that changes something apply its
// effect and then fail as if the reply had been lost on the way back.
func (p *Provider) DropNextReply() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropNext = true
}

// New returns an empty sandbox.
func New() *Provider {
	return &Provider{accounts: map[string]*Account{}, applied: map[string]bool{}, attempts: map[string]int{}}
}

// Name implements the provider contract.
func (p *Provider) Name() string { return Name }

// FailNext makes the next len(errs) calls to Apply fail with errs, in order,
// before touching any account.
func (p *Provider) FailNext(errs ...error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext = append(p.failNext, errs...)
}

// Effects returns how many effects were applied: accounts created, renewals
// applied and state changes made. A duplicate effect shows up here.
func (p *Provider) Effects() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.effects
}

// Started returns how many Apply calls have begun, counted before any
// configured delay: a call counted here is in the provider's hands.
func (p *Provider) Started() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// Calls returns how many times Apply was called.
func (p *Provider) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// Accounts returns a copy of every account.
func (p *Provider) Accounts() []Account {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Account, 0, len(p.accounts))
	for _, a := range p.accounts {
		c := *a
		out = append(out, c)
	}
	return out
}

// Account returns the named account.
func (p *Provider) Account(name string) (Account, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.accounts[name]
	if !ok {
		return Account{}, false
	}
	return *a, true
}

// Prepare names the account the operation acts on.
func (p *Provider) Prepare(ctx context.Context, op events.Operation) (map[string]string, error) {
	return map[string]string{"account": providers.AccountName(op, "sb", 12)}, nil
}

func account(op events.Operation) string {
	if a := op.Plan["account"]; a != "" {
		return a
	}
	return providers.AccountName(op, "sb", 12)
}

// Lookup reports whether op's effect already exists.
func (p *Provider) Lookup(ctx context.Context, op events.Operation) (events.Outcome, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	name := account(op)
	if p.applied[op.Key] {
		return events.Outcome{Reference: name, AlreadyDone: true}, true, nil
	}
	if op.Action.IsSignup() {
		if _, ok := p.accounts[name]; ok {
			return events.Outcome{Reference: name, AlreadyDone: true}, true, nil
		}
	}
	return events.Outcome{}, false, nil
}

// Apply performs op. Applying an operation whose effect exists succeeds with
// AlreadyDone and changes nothing.
func (p *Provider) Apply(ctx context.Context, op events.Operation) (events.Outcome, error) {
	p.mu.Lock()
	p.started++
	p.mu.Unlock()
	if d, err := time.ParseDuration(op.Setting("delay", "0s")); err == nil && d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return events.Outcome{}, events.AsTransient(fmt.Errorf("sandbox: %w", ctx.Err()), 0)
		}
	}
	p.mu.Lock()
	p.calls++
	p.attempts[op.Key]++
	attempt := p.attempts[op.Key]
	if len(p.failNext) > 0 {
		err := p.failNext[0]
		p.failNext = p.failNext[1:]
		p.mu.Unlock()
		return events.Outcome{}, err
	}
	if op.Setting("fail", "") == "permanent" {
		p.mu.Unlock()
		return events.Outcome{}, events.Permanentf("sandbox: product %d is configured to fail", op.ProductID)
	}
	if n, _ := strconv.Atoi(op.Setting("fail_first", "0")); attempt <= n {
		p.mu.Unlock()
		return events.Outcome{}, events.AsTransient(fmt.Errorf("sandbox: simulated outage (attempt %d of %d failing)", attempt, n), 0)
	}
	out, err := p.applyLocked(op)
	hook := p.AfterEffect
	drop := p.dropNext && err == nil && !out.AlreadyDone
	if drop {
		p.dropNext = false
	}
	p.mu.Unlock()
	if drop {
		return events.Outcome{}, events.AsTransient(errors.New("sandbox: connection dropped after the effect"), 0)
	}
	if err == nil && hook != nil && !out.AlreadyDone {
		hook(ctx, op)
		if ctx.Err() != nil {
			return events.Outcome{}, events.AsTransient(fmt.Errorf("sandbox: reply lost: %w", ctx.Err()), 0)
		}
	}
	return out, err
}

// ErrNoAccount is returned for a lifecycle call on an account the sandbox
// does not hold.
var ErrNoAccount = errors.New("no such account")

func (p *Provider) applyLocked(op events.Operation) (events.Outcome, error) {
	name := account(op)
	out := events.Outcome{Reference: name}
	if p.applied[op.Key] {
		out.AlreadyDone = true
		return out, nil
	}
	a := p.accounts[name]
	switch {
	case op.Action.IsSignup():
		if a != nil {
			out.AlreadyDone = true
			p.applied[op.Key] = true
			return out, nil
		}
		p.accounts[name] = &Account{Name: name, Action: op.Action, ServiceID: op.ServiceID, ClientID: op.ClientID, Package: op.ConfigOpts}
		if op.Action == events.SignupCustomer && op.Setting("pass_key", "") == "yes" {
			out.WriteBack = map[string]string{"Pass Key": "PK-" + name}
		}
	case a == nil || (a.Deleted && op.Action != events.Terminate):
		return out, events.Permanentf("sandbox %s %q: %w", op.Action, name, ErrNoAccount)
	case op.Action == events.Renew:
		a.Renewals++
		out.Details = map[string]string{"renewals": strconv.Itoa(a.Renewals)}
	case op.Action == events.Suspend:
		if a.Suspended {
			out.AlreadyDone = true
		}
		a.Suspended = true
	case op.Action == events.Unsuspend:
		if !a.Suspended {
			out.AlreadyDone = true
		}
		a.Suspended = false
	case op.Action == events.Terminate:
		if a.Deleted {
			out.AlreadyDone = true
		}
		a.Deleted = true
	case op.Action == events.ChangePackage:
		a.Package = op.ConfigOpts
	case op.Action == events.ChangePassword:
	default:
		return out, events.Permanentf("sandbox: action %q not supported", op.Action)
	}
	p.applied[op.Key] = true
	if !out.AlreadyDone {
		p.effects++
	}
	return out, nil
}

// Check always succeeds: the sandbox is in process.
func (p *Provider) Check(ctx context.Context) error { return nil }
