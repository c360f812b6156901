package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// replicas starts a JetStream server with the worker's bucket and returns
// a function giving each replica its own connection and its own
// worker.Reservations over that bucket, as two worker processes have.
func replicas(t *testing.T, lease time.Duration) (replica func() (*worker.Reservations, jetstream.KeyValue)) {
	t.Helper()
	ns := workertest.Server(t)
	_, js := workertest.Connect(t, ns.ClientURL())
	if _, _, err := worker.Setup(workertest.Context(t, 10*time.Second), js, workertest.Options()); err != nil {
		t.Fatal(err)
	}
	return func() (*worker.Reservations, jetstream.KeyValue) {
		t.Helper()
		_, js := workertest.Connect(t, ns.ClientURL())
		kv, err := js.KeyValue(workertest.Context(t, 5*time.Second), worker.RecordsBucket)
		if err != nil {
			t.Fatal(err)
		}
		return worker.NewReservations(kv, lease), kv
	}
}

// codeguardReplica is one replica's CodeGuard provider: its own instance,
// sharing only the fake and the reservations store.
func codeguardReplica(t *testing.T, fake *codeguardtest.Server, r providers.Reservations) *codeguard.Provider {
	t.Helper()
	pw, err := providers.NewDerivedPasswords("test-secret-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	p, err := codeguard.New(codeguard.Config{
		Settings:   providers.Settings{URL: fake.URL, Timeout: 300 * time.Millisecond, MaxConcurrent: 4},
		AuthUserID: fake.AuthUserID, APIKey: fake.APIKey, InvoiceOption: codeguard.NoInvoice,
	}, pw, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.UseReservations(r)
	return p
}

// renewalOf is service 1's renewal paid by invoice inv, as the worker
// routes service.renewal_paid.
func renewalOf(inv int) events.Operation {
	return events.Operation{Key: events.RenewalKey("main", 1, inv), EventID: "ev-" + strconv.Itoa(inv), Source: "main",
		Action: events.Renew, Provider: codeguard.Name, ProductID: 3, ServiceID: 1, ClientID: 7, InvoiceID: inv,
		Domain: "example.com", BillingCycle: "Annually", Months: 12, Settings: map[string]string{"plan_id": "229"}}
}

type preparer interface {
	Prepare(ctx context.Context, op events.Operation) (map[string]string, error)
}

func preparedBy(t *testing.T, p preparer, op events.Operation) events.Operation {
	t.Helper()
	plan, err := p.Prepare(workertest.Context(t, 10*time.Second), op)
	if err != nil {
		t.Fatalf("Prepare(%s): %v", op.Key, err)
	}
	op.Plan = plan
	return op
}

// Issue 8 point 4 across replicas: two renewal invoices of one order paid
// together, one planned on each replica before either took effect, the
// first one's reply lost after its effect. The second replica's plan starts
// where the first one's ends, so both renewals apply and each is reported
// for what it did. With per-process memory the second replica planned from
// the same expiry and reported the first one's effect as its own.
func TestRenewalsPlannedOnTwoReplicasBothApply(t *testing.T) {
	replica := replicas(t, time.Hour)
	fake := codeguardtest.NewServer()
	t.Cleanup(fake.Close)
	start := time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Second)
	orderID := fake.AddOrder("example.com", fake.AddCustomer("ada@example.com", "Ada Lovelace"), 229, codeguard.StatusActive, start)
	ra, _ := replica()
	rb, _ := replica()
	a, b := codeguardReplica(t, fake, ra), codeguardReplica(t, fake, rb)

	first := preparedBy(t, a, renewalOf(901))
	second := preparedBy(t, b, renewalOf(902))
	if got, want := second.Plan[codeguard.PlanEndtimeBefore], first.Plan[codeguard.PlanEndtimeExpected]; got != want {
		t.Errorf("replica B's renewal starts at %s, want where replica A's ends (%s)", got, want)
	}
	if again := preparedBy(t, a, renewalOf(901)); again.Plan[codeguard.PlanEndtimeBefore] != first.Plan[codeguard.PlanEndtimeBefore] {
		t.Fatalf("a second Prepare of the same renewal planned %v, want its own plan %v", again.Plan, first.Plan)
	}

	// A's renewal takes effect, its reply is lost.
	fake.DelayOn(codeguard.PathRenew, time.Second)
	if _, err := a.Apply(workertest.Context(t, 10*time.Second), first); err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("first renewal with a lost reply = %v, want transient", err)
	}
	fake.DelayOn(codeguard.PathRenew, 0)
	if fake.Renewals() != 1 {
		t.Fatalf("renewals = %d after the lost reply, want 1", fake.Renewals())
	}
	// B's renewal is not fooled by A's expiry move.
	if _, found, err := b.Lookup(workertest.Context(t, 10*time.Second), second); err != nil || found {
		t.Fatalf("Lookup(second) on B = %v, %v: A's renewal was taken for B's", found, err)
	}
	outB, err := b.Apply(workertest.Context(t, 10*time.Second), second)
	if err != nil || outB.AlreadyDone {
		t.Fatalf("B's renewal = %+v, %v; want renewed (not AlreadyDone)", outB, err)
	}
	outA, err := a.Apply(workertest.Context(t, 10*time.Second), first)
	if err != nil || !outA.AlreadyDone {
		t.Fatalf("A's retry = %+v, %v; want AlreadyDone (its renewal took effect)", outA, err)
	}
	want := start.AddDate(0, 24, 0).Unix()
	if end, _ := fake.Order(orderID); fake.Renewals() != 2 || end.End != want {
		t.Fatalf("renewals %d, endtime %d; want 2 renewals and endtime %d (two invoices of 12 months)", fake.Renewals(), end.End, want)
	}
	if outB.Details["endtime_expected"] != strconv.FormatInt(want, 10) {
		t.Errorf("B reported endtime_expected %s, want %d", outB.Details["endtime_expected"], want)
	}
	// Both confirmed: their claims are released, and a renewal planned now
	// (on either replica) starts at the order's real expiry.
	if third := preparedBy(t, b, renewalOf(903)); third.Plan[codeguard.PlanEndtimeBefore] != strconv.FormatInt(want, 10) {
		t.Errorf("a later renewal starts at %s, want the real expiry %d", third.Plan[codeguard.PlanEndtimeBefore], want)
	}
}

// A renewal that fails for good on one replica stops holding renewals of
// its order planned on another.
func TestFailedRenewalOnOneReplicaDoesNotHoldTheOther(t *testing.T) {
	replica := replicas(t, time.Hour)
	fake := codeguardtest.NewServer()
	t.Cleanup(fake.Close)
	start := time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Second)
	fake.AddOrder("example.com", fake.AddCustomer("ada@example.com", "Ada Lovelace"), 229, codeguard.StatusActive, start)
	ra, _ := replica()
	rb, _ := replica()
	a, b := codeguardReplica(t, fake, ra), codeguardReplica(t, fake, rb)
	first := preparedBy(t, a, renewalOf(901))
	fake.FailNextOn(codeguard.PathRenew, 1, 400) // e.g. insufficient funds
	if _, err := a.Apply(workertest.Context(t, 10*time.Second), first); err == nil || events.ClassOf(err) != events.Permanent {
		t.Fatalf("err %v, want permanent", err)
	}
	later := preparedBy(t, b, renewalOf(902))
	if later.Plan[codeguard.PlanEndtimeBefore] != first.Plan[codeguard.PlanEndtimeBefore] {
		t.Fatalf("B's renewal starts at %s, want the real expiry %s", later.Plan[codeguard.PlanEndtimeBefore], first.Plan[codeguard.PlanEndtimeBefore])
	}
	if out, err := b.Apply(workertest.Context(t, 10*time.Second), later); err != nil || out.AlreadyDone || fake.Renewals() != 1 {
		t.Fatalf("B's renewal %+v, %v, renewals %d", out, err, fake.Renewals())
	}
}

// cometReplica is one replica's Comet provider.
func cometReplica(t *testing.T, srv *comettest.Server, r providers.Reservations) *comet.Provider {
	t.Helper()
	pw, err := providers.NewDerivedPasswords("test-secret-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	p, err := comet.New(comet.Config{Settings: providers.Settings{URL: srv.URL, Timeout: 5 * time.Second},
		Username: srv.Username, Password: srv.Password}, pw, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	p.UseReservations(r)
	return p
}

// cometSignup is the signup of serviceID for the client with e-mail
// address email (the name the official module derives).
func cometSignup(serviceID int, email string) events.Operation {
	return events.Operation{Key: events.ServiceKey("main", serviceID, events.SignupCustomer), EventID: "ev-" + strconv.Itoa(serviceID),
		Source: "main", Action: events.SignupCustomer, Provider: comet.Name, ProductID: 1, ServiceID: serviceID, ClientID: 7,
		Client:     &events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", Email: email},
		ConfigOpts: map[string]string{"number_of_devices": "2"}}
}

// Issue 8 point 3 across replicas: two signups whose derived name is the
// same (two services of one client: one e-mail address), planned one on
// each replica before either user exists, get two distinct accounts, and
// neither adopts or touches the other's. With per-process memory both
// replicas chose the e-mail address and the second signup failed on the
// first one's account.
func TestSignupsOnTwoReplicasGetDistinctAccounts(t *testing.T) {
	replica := replicas(t, time.Hour)
	srv := comettest.NewServer()
	t.Cleanup(srv.Close)
	ra, _ := replica()
	rb, _ := replica()
	a, b := cometReplica(t, srv, ra), cometReplica(t, srv, rb)

	s1 := preparedBy(t, a, cometSignup(1, "ada@example.com"))
	s2 := preparedBy(t, b, cometSignup(2, "ada@example.com"))
	n1, n2 := s1.Plan[comet.PlanUsername], s2.Plan[comet.PlanUsername]
	if n1 != "ada@example.com" || n2 == n1 {
		t.Errorf("replica A planned %q, replica B %q: want the e-mail address and another name", n1, n2)
	}
	if again := preparedBy(t, b, cometSignup(1, "ada@example.com")).Plan[comet.PlanUsername]; again != n1 {
		t.Fatalf("a redelivered Prepare of service 1 on B chose %q, want its own %q", again, n1)
	}
	out2, err := b.Apply(workertest.Context(t, 10*time.Second), s2)
	if err != nil {
		t.Fatalf("B's signup: %v", err)
	}
	out1, err := a.Apply(workertest.Context(t, 10*time.Second), s1)
	if err != nil {
		t.Fatalf("A's signup: %v", err)
	}
	if out1.Reference != n1 || out2.Reference != n2 || out1.AlreadyDone || out2.AlreadyDone || srv.Created() != 2 {
		t.Fatalf("outcomes %+v / %+v, created %d: want two new accounts %q and %q", out1, out2, srv.Created(), n1, n2)
	}
	for name, op := range map[string]events.Operation{n1: s1, n2: s2} {
		u, ok := srv.User(name)
		if an, _ := u.Profile["AccountName"].(string); !ok || !strings.Contains(an, comet.ServiceMarker(op)) {
			t.Errorf("user %q: AccountName %q, want service %d's marker", name, an, op.ServiceID)
		}
	}
	// Both users exist: the claims are released, and the names are guarded
	// by the users' markers from now on.
	s3 := preparedBy(t, a, cometSignup(3, "ada@example.com"))
	if n3 := s3.Plan[comet.PlanUsername]; n3 == n1 || n3 == n2 {
		t.Errorf("a third service chose %q, an existing account", n3)
	}
}

var errTaken = errors.New("taken")

// exclusive is a decide that grants the name only when no one else holds it.
func exclusive(value string) func([]providers.Claim) (string, error) {
	return func(others []providers.Claim) (string, error) {
		if len(others) > 0 {
			return "", fmt.Errorf("%w by %s", errTaken, others[0].Holder)
		}
		return value, nil
	}
}

// putRecord writes an operation record as the worker keeps it.
func putRecord(t *testing.T, kv jetstream.KeyValue, rec worker.Record) {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(workertest.Context(t, 5*time.Second), worker.RecordKey(rec.Key), b); err != nil {
		t.Fatal(err)
	}
}

// A crashed holder never blocks a name for good: its claim ends when its
// lease runs out with no sign of its operation, or at once when its
// operation is recorded done; an operation still being retried (its record
// written by each delivery) keeps it; a redelivery finds its own claim.
func TestReservationOfACrashedHolder(t *testing.T) {
	const lease = 300 * time.Millisecond
	ctx := workertest.Context(t, 30*time.Second)
	tests := []struct {
		name   string
		record *worker.Record // the crashed holder's operation record, if any
		// retried: the holder's operation is delivered again (its record
		// rewritten) while the contender waits.
		retried  bool
		takeover bool // the contender gets the name before the lease ends
	}{
		{name: "no record: the lease runs out"},
		{name: "operation done: released at once", record: &worker.Record{State: worker.StateDone}, takeover: true},
		{name: "operation still retried: kept past the lease", record: &worker.Record{State: worker.StateFailed}, retried: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replica := replicas(t, lease)
			crashed, kv := replica()
			contender, _ := replica()
			name, holder := "comet.username.ada@example.com", "op-crashed-"+strconv.Itoa(i)
			if v, err := crashed.Reserve(ctx, name, holder, exclusive("A")); err != nil || v != "A" {
				t.Fatalf("first claim = %q, %v", v, err)
			}
			if tt.record != nil {
				rec := *tt.record
				rec.Key, rec.Updated = holder, time.Now().UTC()
				putRecord(t, kv, rec)
			}
			// The holder crashes: it never releases.
			v, err := contender.Reserve(ctx, name, "op-contender", exclusive("B"))
			if tt.takeover {
				if err != nil || v != "B" {
					t.Fatalf("contender = %q, %v; want the name at once", v, err)
				}
				return
			}
			if !errors.Is(err, errTaken) {
				t.Fatalf("contender during the holder's lease = %q, %v; want taken", v, err)
			}
			// A redelivery of the holder's operation finds its own claim.
			if v, err := crashed.Reserve(ctx, name, holder, exclusive("other")); err != nil || v != "A" {
				t.Fatalf("the holder's redelivery = %q, %v; want its own claim A", v, err)
			}
			if tt.retried {
				for range 3 { // three deliveries, each a lease apart from the claim
					time.Sleep(lease)
					rec := *tt.record
					rec.Key, rec.Updated = holder, time.Now().UTC()
					putRecord(t, kv, rec)
					if _, err := contender.Reserve(ctx, name, "op-contender", exclusive("B")); !errors.Is(err, errTaken) {
						t.Fatalf("contender while the holder's operation is retried: %v; want taken", err)
					}
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				v, err := contender.Reserve(ctx, name, "op-contender", exclusive("B"))
				if err == nil && v == "B" {
					break
				}
				if !errors.Is(err, errTaken) || time.Now().After(deadline) {
					t.Fatalf("contender after the lease = %q, %v; want the name", v, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			// The old holder coming back does not get it again.
			if _, err := crashed.Reserve(ctx, name, holder, exclusive("A")); !errors.Is(err, errTaken) {
				t.Fatalf("the old holder after the takeover: %v; want taken", err)
			}
		})
	}
}

// Compare-and-set is the arbiter: of many replicas claiming one name at
// once, exactly one gets it; after its release exactly one other does.
func TestReservationsRaceOneWinner(t *testing.T) {
	replica := replicas(t, time.Hour)
	ctx := workertest.Context(t, 30*time.Second)
	const n = 8
	stores := make([]*worker.Reservations, n)
	for i := range stores {
		stores[i], _ = replica()
	}
	race := func(name string, skip int) (winners []int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, r := range stores {
			if i == skip {
				continue
			}
			wg.Go(func() {
				v, err := r.Reserve(ctx, name, "op-"+strconv.Itoa(i), exclusive(strconv.Itoa(i)))
				switch {
				case err == nil:
					mu.Lock()
					winners = append(winners, i)
					mu.Unlock()
					if v != strconv.Itoa(i) {
						t.Errorf("replica %d got value %q", i, v)
					}
				case !errors.Is(err, errTaken):
					t.Errorf("replica %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		return winners
	}
	name := "comet.username.ada@example.com"
	first := race(name, -1)
	if len(first) != 1 {
		t.Fatalf("winners %v, want exactly one", first)
	}
	if err := stores[first[0]].Release(ctx, name, "op-"+strconv.Itoa(first[0])); err != nil {
		t.Fatal(err)
	}
	if second := race(name, first[0]); len(second) != 1 {
		t.Fatalf("winners after the release %v, want exactly one", second)
	}
}

// A shared chain: claims of several holders under one name, each decided
// from the others (the CodeGuard renewals of one order), across replicas.
func TestReservationsChainAcrossReplicas(t *testing.T) {
	replica := replicas(t, time.Hour)
	ctx := workertest.Context(t, 30*time.Second)
	ra, _ := replica()
	rb, _ := replica()
	next := func(others []providers.Claim) (string, error) {
		top := 0
		for _, c := range others {
			n, _ := strconv.Atoi(c.Value)
			top = max(top, n)
		}
		return strconv.Itoa(top + 12), nil
	}
	got := []string{}
	for i, r := range []*worker.Reservations{ra, rb, ra, rb} {
		v, err := r.Reserve(ctx, "codeguard.renewals.42", "renewal-"+strconv.Itoa(i), next)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if want := "12 24 36 48"; strings.Join(got, " ") != want {
		t.Fatalf("chain %v, want %s", got, want)
	}
	if err := rb.Release(ctx, "codeguard.renewals.42", "renewal-3"); err != nil {
		t.Fatal(err)
	}
	if v, _ := ra.Reserve(ctx, "codeguard.renewals.42", "renewal-4", next); v != "48" {
		t.Fatalf("after releasing the last, the next claim = %s, want 48", v)
	}
}
