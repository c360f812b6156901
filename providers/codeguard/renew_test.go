package codeguard_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
)

// renewalOf is service 1's renewal paid by invoice inv.
func renewalOf(inv int) events.Operation {
	o := op(events.Renew, 1, "example.com")
	o.Key = events.RenewalKey("main", 1, inv)
	o.InvoiceID = inv
	return o
}

// Issue 8 point 4: two renewal invoices of one order paid close together,
// both planned before either took effect, the first one's reply lost after
// its effect. Each renewal is guarded by the end time it expects, so the
// second is never mistaken for the first: two paid, two applied.
func TestTwoRenewalsPaidTogetherBothApply(t *testing.T) {
	fake := newFake(t)
	cfg := configFor(fake)
	cfg.Timeout = 300 * time.Millisecond
	p, err := codeguard.New(cfg, passwords(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	signup := apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
	orderID, _ := strconv.ParseInt(signup.Reference, 10, 64)
	start, _ := fake.Order(orderID)

	first := prepared(t, p, renewalOf(901))
	second := prepared(t, p, renewalOf(902))
	if first.Plan[codeguard.PlanEndtimeExpected] != second.Plan[codeguard.PlanEndtimeBefore] {
		t.Fatalf("the second renewal starts at %s, want where the first ends (%s)",
			second.Plan[codeguard.PlanEndtimeBefore], first.Plan[codeguard.PlanEndtimeExpected])
	}

	// The first renewal takes effect but its reply is lost.
	fake.DelayOn(codeguard.PathRenew, time.Second)
	if _, err := p.Apply(testCtx(t), first); err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("first renewal with a lost reply = %v, want transient", err)
	}
	fake.DelayOn(codeguard.PathRenew, 0)
	if fake.Renewals() != 1 {
		t.Fatalf("renewals = %d after the lost reply, want 1", fake.Renewals())
	}
	// The second is not fooled by the first's expiry move.
	if _, found, err := p.Lookup(testCtx(t), second); err != nil || found {
		t.Fatalf("Lookup(second) = %v, %v: the first renewal's effect was taken for the second's", found, err)
	}
	if out := apply(t, p, second); out.AlreadyDone {
		t.Fatalf("second renewal reported AlreadyDone (%+v) while only the first took effect", out)
	}
	// The first one's retry finds its effect in place and does not renew again.
	if out := apply(t, p, first); !out.AlreadyDone {
		t.Fatalf("first renewal's retry = %+v, want AlreadyDone", out)
	}
	if n := fake.Renewals(); n != 2 {
		t.Fatalf("renewals = %d, want 2 (two invoices paid)", n)
	}
	end, _ := fake.Order(orderID)
	if want := time.Unix(start.End, 0).AddDate(0, 24, 0).Unix(); end.End != want {
		t.Errorf("endtime %d, want %d (24 months on)", end.End, want)
	}
}

// The later-planned renewal waits for the earlier one instead of renewing
// first (which would let the earlier one take its effect for its own).
func TestLaterRenewalWaitsForTheEarlierOne(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
	first := prepared(t, p, renewalOf(901))
	second := prepared(t, p, renewalOf(902))
	_, err := p.Apply(testCtx(t), second)
	if err == nil || events.ClassOf(err) != events.Transient || !strings.Contains(err.Error(), "waiting for the earlier renewal") {
		t.Fatalf("second before first = %v, want a transient 'waiting' error", err)
	}
	if fake.Renewals() != 0 {
		t.Fatal("the second renewal renewed before the first")
	}
	if out := apply(t, p, first); out.AlreadyDone {
		t.Fatal("first renewal AlreadyDone")
	}
	if out := apply(t, p, second); out.AlreadyDone {
		t.Fatal("second renewal AlreadyDone")
	}
	if n := fake.Renewals(); n != 2 {
		t.Fatalf("renewals = %d, want 2", n)
	}
}

// A renewal that fails for good stops holding later renewals of the order:
// one planned afterwards starts at the order's real expiry.
func TestFailedRenewalDoesNotHoldLaterOnes(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
	first := prepared(t, p, renewalOf(901))
	fake.FailNextOn(codeguard.PathRenew, 1, 400) // e.g. insufficient funds
	if _, err := p.Apply(testCtx(t), first); err == nil || events.ClassOf(err) != events.Permanent {
		t.Fatalf("err %v, want permanent", err)
	}
	later := prepared(t, p, renewalOf(902))
	if later.Plan[codeguard.PlanEndtimeBefore] != first.Plan[codeguard.PlanEndtimeBefore] {
		t.Fatalf("the later renewal starts at %s, want the real expiry %s", later.Plan[codeguard.PlanEndtimeBefore], first.Plan[codeguard.PlanEndtimeBefore])
	}
	if out := apply(t, p, later); out.AlreadyDone || fake.Renewals() != 1 {
		t.Fatalf("later renewal %+v, renewals %d", out, fake.Renewals())
	}
}

// A renewal that failed and was dead-lettered (the worker calls Abandon),
// then a later renewal of the order applied, then the first replayed with
// its first plan: it must renew exactly once more when it never took
// effect, and not at all when it did (its reply lost). The ledger of sent
// and confirmed renewals tells the two apart; the end time alone cannot.
func TestReplayedRenewalAfterALaterOne(t *testing.T) {
	cases := []struct {
		name      string
		fault     func(f *codeguardtest.Server)
		wantClass events.ErrorClass
		firstDone bool // the first renewal took effect before it was dead-lettered
	}{
		{"refused", func(f *codeguardtest.Server) { f.FailNextOn(codeguard.PathRenew, 1, 400) }, events.Permanent, false},
		{"5xx before the effect", func(f *codeguardtest.Server) { f.FailNextOn(codeguard.PathRenew, 1, 503) }, events.Transient, false},
		{"applied, reply lost", func(f *codeguardtest.Server) { f.DropAfterEffectOn(codeguard.PathRenew) }, events.Transient, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake(t)
			p := newProvider(t, fake, nil)
			signup := apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
			orderID, _ := strconv.ParseInt(signup.Reference, 10, 64)
			start, _ := fake.Order(orderID)

			first := prepared(t, p, renewalOf(901))
			tc.fault(fake)
			if _, err := p.Apply(testCtx(t), first); err == nil || events.ClassOf(err) != tc.wantClass {
				t.Fatalf("first renewal = %v, want a %s error", err, tc.wantClass)
			}
			p.Abandon(testCtx(t), first) // dead-lettered

			later := prepared(t, p, renewalOf(902))
			if out := apply(t, p, later); out.AlreadyDone {
				t.Fatalf("later renewal %+v: want applied", out)
			}
			// The replay: the operation keeps its first plan.
			out, found, err := p.Lookup(testCtx(t), first)
			if err != nil {
				t.Fatal(err)
			}
			if found != tc.firstDone {
				t.Fatalf("Lookup(replayed first) found = %t, want %t", found, tc.firstDone)
			}
			if !found {
				out = apply(t, p, first)
			}
			if out.AlreadyDone != tc.firstDone {
				t.Errorf("replayed first %+v: already_done want %t", out, tc.firstDone)
			}
			end, _ := fake.Order(orderID)
			if want := time.Unix(start.End, 0).AddDate(0, 24, 0).Unix(); fake.Renewals() != 2 || end.End != want {
				t.Fatalf("renewals %d, endtime %d; want 2 and %d (two invoices of 12 months)", fake.Renewals(), end.End, want)
			}
		})
	}
}

// blind is shared reservations through which one holder plans without
// seeing the others' claims: a replica that planned while the other's
// claim was not live (its lease ran out while its worker was killed and
// its event waited for redelivery).
type blind struct {
	*providers.MemoryReservations
	holder string
}

func (b blind) Reserve(ctx context.Context, name, holder string, decide func([]providers.Claim) (string, error)) (string, error) {
	if holder == b.holder {
		return b.MemoryReservations.Reserve(ctx, name, holder, func([]providers.Claim) (string, error) { return decide(nil) })
	}
	return b.MemoryReservations.Reserve(ctx, name, holder, decide)
}

// Found by scripts/chaos: two renewals of one order planned from the same
// end time (the second did not see the first's claim). The second renewed;
// the first, still in the chain and never sent, found the end time at the
// one it expected and took the second's effect for its own: two paid, one
// applied. The ledger's note of the second, sent from that end time, tells
// that the first did not take effect: it is planned again and renews.
func TestTwoRenewalsPlannedFromOneEndTimeBothApply(t *testing.T) {
	fake := newFake(t)
	p := newProvider(t, fake, nil)
	second := renewalOf(902)
	p.UseReservations(blind{MemoryReservations: providers.NewMemoryReservations(time.Hour), holder: second.Key})
	signup := apply(t, p, prepared(t, p, op(events.SignupCustomer, 1, "example.com")))
	orderID, _ := strconv.ParseInt(signup.Reference, 10, 64)
	start, _ := fake.Order(orderID)

	first := prepared(t, p, renewalOf(901))
	second = prepared(t, p, second)
	if first.Plan[codeguard.PlanEndtimeBefore] != second.Plan[codeguard.PlanEndtimeBefore] {
		t.Fatalf("set-up: the renewals start at %s and %s, want one end time", first.Plan[codeguard.PlanEndtimeBefore], second.Plan[codeguard.PlanEndtimeBefore])
	}
	if out := apply(t, p, second); out.AlreadyDone {
		t.Fatalf("second renewal %+v: want applied", out)
	}
	if _, found, err := p.Lookup(testCtx(t), first); err != nil || found {
		t.Fatalf("Lookup(first) = %v, %v: the second renewal's effect was taken for the first's", found, err)
	}
	if out := apply(t, p, first); out.AlreadyDone {
		t.Fatalf("first renewal %+v: reported done, but only the second renewed", out)
	}
	if n := fake.Renewals(); n != 2 {
		t.Fatalf("renewals = %d, want 2 (two invoices paid)", n)
	}
	end, _ := fake.Order(orderID)
	if want := time.Unix(start.End, 0).AddDate(0, 24, 0).Unix(); end.End != want {
		t.Errorf("endtime %d, want %d (24 months on)", end.End, want)
	}
}
