// Package providertest is the lifecycle contract every provider must honour,
// as one suite that runs against each provider and its fake server:
// signup once (even when retried, or when the reply was lost after the
// effect), look-up before create, transient and permanent errors classified,
// suspend / unsuspend / terminate idempotent, renew applied once.
package providertest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
)

// Provider is the contract under test (see package providers).
type Provider interface {
	Name() string
	Prepare(ctx context.Context, op events.Operation) (map[string]string, error)
	Lookup(ctx context.Context, op events.Operation) (events.Outcome, bool, error)
	Apply(ctx context.Context, op events.Operation) (events.Outcome, error)
	Check(ctx context.Context) error
}

// Account states a Fixture reports.
const (
	Active    = "active"
	Suspended = "suspended"
	Deleted   = "deleted" // or absent after termination
)

// Fixture is a provider wired to its fake server, and the fake's view of
// what happened.
type Fixture struct {
	Provider Provider
	// Signup is the action that creates an account (or order) here.
	Signup events.Action
	// Settings are the catalog settings of the product under test.
	Settings map[string]string
	// ConfigOptions are the service's configurable options.
	ConfigOptions map[string]string
	// Unsupported lists actions this provider refuses (permanent error).
	Unsupported []events.Action
	// Created counts accounts or orders ever created at the fake.
	Created func() int
	// Renewals counts renewals the fake applied.
	Renewals func() int
	// State is the state of the account or order named by ref: Active,
	// Suspended, Deleted, or "" when the fake holds nothing by that name.
	State func(ref string) string
	// FailNext makes the fake answer its next n requests with the HTTP
	// status, in the provider's documented error format.
	FailNext func(n, status int)
	// DropAfterEffect makes the fake apply the next state-changing request
	// and then drop the connection without replying.
	DropAfterEffect func()
}

// Op builds an operation for action on service serviceID with the fixture's
// settings, the way the worker would.
func (f Fixture) Op(a events.Action, serviceID int) events.Operation {
	op := events.Operation{
		EventID: "whmcs:test:event:" + string(a), EventType: events.OrderAccepted, Source: "test",
		Action: a, Provider: f.Provider.Name(), ProductID: 1, ServiceID: serviceID, ClientID: 7,
		OrderID: 70, Domain: "example.com", BillingCycle: "Annually", Months: 12, Reason: "Overdue on Payment",
		Client: &events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", CompanyName: "Analytical Ltd",
			Email: "ada@example.com", Address1: "1 Engine Way", City: "London", State: "London",
			Postcode: "N1 1AA", Country: "GB", PhoneNumber: "+44.2071234567"},
		Settings: f.Settings, ConfigOpts: f.ConfigOptions,
	}
	switch {
	case a.IsSignup():
		op.Key = events.ServiceKey("test", serviceID, a)
		if a == events.SignupReseller {
			op.ServiceID = 0
			op.Key = events.ClientKey("test", op.ClientID, a)
		}
	case a == events.Renew:
		op.Key = events.RenewalKey("test", serviceID, 900+serviceID)
		op.InvoiceID = 900 + serviceID
	default:
		op.Key = events.EventKey(op.EventID, a, serviceID)
	}
	return op
}

func (f Fixture) supports(a events.Action) bool { return !slices.Contains(f.Unsupported, a) }

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// prepared runs Prepare the way the worker does and stores the plan in op.
func prepared(t *testing.T, f Fixture, op events.Operation) events.Operation {
	t.Helper()
	plan, err := f.Provider.Prepare(ctx(t), op)
	if err != nil {
		t.Fatalf("Prepare(%s): %v", op.Action, err)
	}
	op.Plan = plan
	return op
}

func mustApply(t *testing.T, f Fixture, op events.Operation) events.Outcome {
	t.Helper()
	out, err := f.Provider.Apply(ctx(t), op)
	if err != nil {
		t.Fatalf("Apply(%s): %v", op.Action, err)
	}
	return out
}

func signup(t *testing.T, f Fixture, serviceID int) (events.Operation, events.Outcome) {
	t.Helper()
	op := prepared(t, f, f.Op(f.Signup, serviceID))
	out := mustApply(t, f, op)
	if out.Reference == "" {
		t.Fatalf("signup outcome has no reference: %+v", out)
	}
	return op, out
}

// lifecycle builds a later lifecycle operation for the account signup made.
func lifecycle(t *testing.T, f Fixture, signupOp events.Operation, a events.Action) events.Operation {
	t.Helper()
	op := f.Op(a, signupOp.ServiceID)
	if f.Signup == events.SignupReseller {
		op.ServiceID = 0
	}
	return prepared(t, f, op)
}

// Run runs the contract suite; newFixture is called once per sub-test and
// must give a fresh fake server.
func Run(t *testing.T, newFixture func(t *testing.T) Fixture) {
	t.Helper()
	t.Run("Check", func(t *testing.T) {
		f := newFixture(t)
		if err := f.Provider.Check(ctx(t)); err != nil {
			t.Fatalf("Check against a healthy fake: %v", err)
		}
	})
	t.Run("SignupOnceAndLookup", func(t *testing.T) {
		f := newFixture(t)
		op := prepared(t, f, f.Op(f.Signup, 101))
		if _, found, err := f.Provider.Lookup(ctx(t), op); err != nil || found {
			t.Fatalf("Lookup before signup = found %v, err %v; want not found", found, err)
		}
		out := mustApply(t, f, op)
		if got := f.State(out.Reference); got != Active {
			t.Fatalf("state after signup = %q, want %q", got, Active)
		}
		if _, found, err := f.Provider.Lookup(ctx(t), op); err != nil || !found {
			t.Fatalf("Lookup after signup = found %v, err %v; want found", found, err)
		}
		again := mustApply(t, f, op)
		if again.Reference != out.Reference {
			t.Fatalf("second Apply reference %q, first %q", again.Reference, out.Reference)
		}
		if n := f.Created(); n != 1 {
			t.Fatalf("created %d accounts for one signup applied twice, want 1", n)
		}
	})
	t.Run("SignupReplyLostAfterEffect", func(t *testing.T) {
		f := newFixture(t)
		op := prepared(t, f, f.Op(f.Signup, 102))
		f.DropAfterEffect()
		if _, err := f.Provider.Apply(ctx(t), op); err == nil {
			t.Fatal("Apply succeeded although the fake dropped the connection")
		} else if c := events.ClassOf(err); c != events.Transient {
			t.Fatalf("dropped connection classified %s, want transient: %v", c, err)
		}
		mustApply(t, f, op)
		if n := f.Created(); n != 1 {
			t.Fatalf("created %d accounts after a lost reply and a retry, want 1", n)
		}
	})
	t.Run("ServerErrorIsTransient", func(t *testing.T) {
		f := newFixture(t)
		op := prepared(t, f, f.Op(f.Signup, 103))
		f.FailNext(1, 503)
		_, err := f.Provider.Apply(ctx(t), op)
		if err == nil || events.ClassOf(err) != events.Transient {
			t.Fatalf("Apply against a 503 = %v (class %s), want a transient error", err, events.ClassOf(err))
		}
		mustApply(t, f, op)
		if n := f.Created(); n != 1 {
			t.Fatalf("created %d accounts, want 1", n)
		}
	})
	t.Run("ClientErrorIsPermanent", func(t *testing.T) {
		f := newFixture(t)
		op := prepared(t, f, f.Op(f.Signup, 104))
		f.FailNext(1, 400)
		_, err := f.Provider.Apply(ctx(t), op)
		if err == nil || events.ClassOf(err) != events.Permanent {
			t.Fatalf("Apply against a 400 = %v (class %s), want a permanent error", err, events.ClassOf(err))
		}
	})
	t.Run("SuspendUnsuspendTerminateIdempotent", func(t *testing.T) {
		f := newFixture(t)
		sop, out := signup(t, f, 105)
		for _, step := range []struct {
			a    events.Action
			want string
		}{{events.Suspend, Suspended}, {events.Suspend, Suspended}, {events.Unsuspend, Active},
			{events.Unsuspend, Active}, {events.Terminate, Deleted}, {events.Terminate, Deleted}} {
			if !f.supports(step.a) {
				continue
			}
			mustApply(t, f, lifecycle(t, f, sop, step.a))
			got := f.State(out.Reference)
			if step.want == Deleted && got == "" {
				got = Deleted
			}
			if got != step.want {
				t.Fatalf("after %s state = %q, want %q", step.a, got, step.want)
			}
		}
	})
	t.Run("RenewOnceWhenReplyLost", func(t *testing.T) {
		f := newFixture(t)
		sop, _ := signup(t, f, 106)
		op := lifecycle(t, f, sop, events.Renew)
		if !f.supports(events.Renew) {
			if _, err := f.Provider.Apply(ctx(t), op); err == nil || events.ClassOf(err) != events.Permanent {
				t.Fatalf("unsupported renew = %v, want a permanent error", err)
			}
			return
		}
		before := f.Renewals()
		f.DropAfterEffect()
		if _, err := f.Provider.Apply(ctx(t), op); err == nil {
			// Providers where renewal is a no-op may succeed here.
			if f.Renewals() != before {
				t.Fatal("renew reported success with a dropped reply")
			}
		}
		mustApply(t, f, op)
		mustApply(t, f, op)
		if got := f.Renewals() - before; got > 1 {
			t.Fatalf("one renewal applied %d times", got)
		}
	})
}
