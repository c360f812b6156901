package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
	"github.com/hookworker/hookworker/worker/catalog"
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
// codeguardOrderOnTwoReplicas starts a CodeGuard fake holding one active
// order that expires in a month (start) and two replicas' reservations on
// one bucket.
func codeguardOrderOnTwoReplicas(t *testing.T) (fake *codeguardtest.Server, orderID int64, start time.Time, ra, rb *worker.Reservations) {
	t.Helper()
	replica := replicas(t, time.Hour)
	fake = codeguardtest.NewServer()
	t.Cleanup(fake.Close)
	start = time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Second)
	orderID = fake.AddOrder("example.com", fake.AddCustomer("ada@example.com", "Ada Lovelace"), 229, codeguard.StatusActive, start)
	ra, _ = replica()
	rb, _ = replica()
	return fake, orderID, start, ra, rb
}

// sharing only the fake and the reservations store.
func codeguardReplica(t *testing.T, fake *codeguardtest.Server, r providers.Reservations) *codeguard.Provider {
	t.Helper()
	return codeguardReplicaAt(t, fake.URL, fake, r)
}

// codeguardReplicaAt is codeguardReplica calling the fake's API at url (a
// proxy in front of it).
func codeguardReplicaAt(t *testing.T, url string, fake *codeguardtest.Server, r providers.Reservations) *codeguard.Provider {
	t.Helper()
	pw, err := providers.NewDerivedPasswords("test-secret-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	p, err := codeguard.New(codeguard.Config{
		Settings:   providers.Settings{URL: url, Timeout: 300 * time.Millisecond, MaxConcurrent: 4},
		AuthUserID: fake.AuthUserID, APIKey: fake.APIKey, InvoiceOption: codeguard.NoInvoice,
	}, pw, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if r != nil {
		p.UseReservations(r)
	}
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
	fake, orderID, start, ra, rb := codeguardOrderOnTwoReplicas(t)
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
	fake, _, _, ra, rb := codeguardOrderOnTwoReplicas(t)
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

// heldReply is a proxy in front of the CodeGuard fake that holds one
// reply to path, once the fake has answered it (the state it read is
// fixed), until release is called: a replica whose read of the order is
// slow on the wire.
type heldReply struct {
	URL      string
	answered chan struct{} // closed when the held reply has come from the fake
	release  func()
}

// holdReply holds the reply to the nth request to path (1: the first).
func holdReply(t *testing.T, fake *codeguardtest.Server, path string, nth int) *heldReply {
	t.Helper()
	target, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	h := &heldReply{answered: make(chan struct{})}
	gate := make(chan struct{})
	var once sync.Once
	h.release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(h.release)
	var mu sync.Mutex
	seen := 0
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy.ModifyResponse = func(res *http.Response) error {
		if !strings.HasSuffix(res.Request.URL.Path, "/"+path) {
			return nil
		}
		mu.Lock()
		seen++
		held := seen == nth
		mu.Unlock()
		if held {
			close(h.answered)
			<-gate
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	h.URL = srv.URL + target.Path
	return h
}

// The renewal defect scripts/chaos found (two renewals of one order
// planned from one expiry on two replicas, the second reported succeeded
// without renewing). Replica B plans renewal 902 while replica A's renewal
// 901, planned from the expiry T0, takes effect (T1) and releases its
// claim, B's read of the order's details being slow. B must plan from T1,
// where A's renewal left the expiry, whichever of its reads was slow:
//   - the expiry read before the claims: B then found no claim and planned
//     from T0 (the expiry is now read after the claims, in Reserve's
//     decide);
//   - the expiry read in decide, after the claims: A's claim was taken and
//     released (the key deleted) meanwhile, and kv.Create wrote over the
//     delete marker, so B's write landed on claims read before A's came
//     and went (claims are no longer deleted: the write now fails and B
//     decides again).
func TestRenewalPlannedWhileAnotherTakesEffectOnAnotherReplica(t *testing.T) {
	for _, tt := range []struct {
		name string
		nth  int // the details.json reply of B's Prepare that is slow
	}{
		{"expiry read before the claims is slow", 1},
		{"expiry read after the claims is slow", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake, orderID, start, ra, rb := codeguardOrderOnTwoReplicas(t)
			slow := holdReply(t, fake, codeguard.PathDetails, tt.nth)
			a := codeguardReplica(t, fake, ra)
			b := codeguardReplicaAt(t, slow.URL, fake, rb)

			type prepared struct {
				op  events.Operation
				err error
			}
			done := make(chan prepared, 1)
			go func() {
				op := renewalOf(902)
				plan, err := b.Prepare(workertest.Context(t, 10*time.Second), op)
				op.Plan = plan
				done <- prepared{op, err}
			}()
			select {
			case <-slow.answered: // B has read the expiry: T0
			case p := <-done:
				t.Fatalf("B's Prepare returned %v, %v without reading the order's details %d times", p.op.Plan, p.err, tt.nth)
			case <-time.After(5 * time.Second):
				t.Fatal("replica B never read the order")
			}
			first := preparedBy(t, a, renewalOf(901))
			if out, err := a.Apply(workertest.Context(t, 10*time.Second), first); err != nil || out.AlreadyDone {
				t.Fatalf("A's renewal = %+v, %v; want renewed", out, err)
			}
			slow.release()
			var second events.Operation
			select {
			case p := <-done:
				if p.err != nil {
					t.Fatalf("B's Prepare: %v", p.err)
				}
				second = p.op
			case <-time.After(10 * time.Second):
				t.Fatal("B's Prepare did not return")
			}
			if got, want := second.Plan[codeguard.PlanEndtimeBefore], first.Plan[codeguard.PlanEndtimeExpected]; got != want {
				t.Errorf("replica B's renewal starts at %s, want %s, where A's renewal left the expiry (A's started at %s)",
					got, want, first.Plan[codeguard.PlanEndtimeBefore])
			}
			if _, found, err := b.Lookup(workertest.Context(t, 10*time.Second), second); err != nil || found {
				t.Fatalf("Lookup(second) on B = %v, %v: A's renewal was taken for B's", found, err)
			}
			if out, err := b.Apply(workertest.Context(t, 10*time.Second), second); err != nil || out.AlreadyDone {
				t.Fatalf("B's renewal = %+v, %v; want renewed (not AlreadyDone)", out, err)
			}
			want := start.AddDate(0, 24, 0).Unix()
			if end, _ := fake.Order(orderID); fake.Renewals() != 2 || end.End != want {
				t.Fatalf("renewals %d, endtime %d; want 2 renewals and endtime %d (two invoices of 12 months)", fake.Renewals(), end.End, want)
			}
		})
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
	if r != nil {
		p.UseReservations(r)
	}
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

// Reserve's decide sees the claims as they are when its write lands: a
// claim taken and released by another replica while decide runs (the
// name's last claim: released, nothing left under the name) makes the
// write fail and decide run again. Found with the renewal chaos: the key
// was deleted when its last claim went, and kv.Create writes over a
// delete marker at whatever revision it finds, so the write landed on a
// decision made before the other claim came and went.
func TestReserveDecidesAgainWhenAClaimCameAndWentMeanwhile(t *testing.T) {
	ctx := workertest.Context(t, 30*time.Second)
	for _, before := range []string{"name never claimed", "name claimed and released before"} {
		t.Run(before, func(t *testing.T) {
			replica := replicas(t, time.Hour)
			ra, _ := replica()
			rb, _ := replica()
			name := "codeguard.renewals.80000001"
			if before != "name never claimed" {
				if _, err := ra.Reserve(ctx, name, "op-0", exclusive("0")); err != nil {
					t.Fatal(err)
				}
				if err := ra.Release(ctx, name, "op-0"); err != nil {
					t.Fatal(err)
				}
			}
			var seen [][]providers.Claim
			v, err := rb.Reserve(ctx, name, "op-b", func(others []providers.Claim) (string, error) {
				seen = append(seen, others)
				if len(seen) == 1 {
					// Meanwhile, on replica A: a claim taken, its effect
					// made, the claim released.
					if _, err := ra.Reserve(ctx, name, "op-a", exclusive("a")); err != nil {
						return "", err
					}
					if err := ra.Release(ctx, name, "op-a"); err != nil {
						return "", err
					}
					return "planned before op-a", nil
				}
				return "planned after op-a", nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if v != "planned after op-a" || len(seen) != 2 {
				t.Fatalf("Reserve = %q after %d decides; want the write of the first (made before op-a's claim came and went) refused and a second decide", v, len(seen))
			}
		})
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

// wrapped is a provider behind a wrapper, as cmd/hookworker describes
// providers: Worker.Setup finds the reservations user through Unwrap.
type wrapped struct{ worker.Provider }

func (w wrapped) Unwrap() worker.Provider { return w.Provider }

// replicaPipeline is a JetStream server with the worker's streams, and
// worker replicas started on it one at a time, each with its own
// connection and its own provider instance (built by newProvider).
type replicaPipeline struct {
	t       *testing.T
	url     string
	js      jetstream.JetStream
	cat     *catalog.Catalog
	results *workertest.Results
}

const (
	cometReplicaCatalog = `
products:
  - id: 10
    name: Comet Backup
    provider: comet
`
	codeguardReplicaCatalog = `
products:
  - id: 20
    name: CodeGuard Basic
    provider: codeguard
    settings: {plan_id: 229}
`
)

func newReplicaPipeline(t *testing.T, catalogYAML string) *replicaPipeline {
	t.Helper()
	ns := workertest.Server(t)
	_, js := workertest.Connect(t, ns.ClientURL())
	cat, err := catalog.Parse([]byte(catalogYAML), "replicas", map[string]catalog.Validator{
		comet.Name: comet.ValidateSettings, codeguard.Name: codeguard.ValidateSettings})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := worker.Setup(workertest.Context(t, 10*time.Second), js, replicaOptions()); err != nil {
		t.Fatal(err)
	}
	return &replicaPipeline{t: t, url: ns.ClientURL(), js: js, cat: cat, results: workertest.CollectResults(t, js)}
}

// replicaOptions: one attempt per delivery, redelivered a second later, so
// a failed first attempt ends its delivery before the replica stops.
func replicaOptions() worker.Options {
	o := workertest.Options()
	o.AttemptBudget, o.RetryBase, o.RetryMax = 0, time.Second, 2*time.Second
	return o
}

// start runs a replica with provider p (wrapped) until stop.
func (r *replicaPipeline) start(name string, p worker.Provider) (stop func()) {
	r.t.Helper()
	_, js := workertest.Connect(r.t, r.url)
	o := replicaOptions()
	o.InstanceID = name
	w, err := worker.New(js, r.cat, map[string]worker.Provider{p.Name(): wrapped{p}}, o, zaptest.NewLogger(r.t).Named(name), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return workertest.Run(r.t, w)
}

// failedOnce waits until the operation's first delivery has failed.
func (r *replicaPipeline) failedOnce(opKey string) {
	r.t.Helper()
	kv, err := r.js.KeyValue(workertest.Context(r.t, 5*time.Second), worker.RecordsBucket)
	if err != nil {
		r.t.Fatal(err)
	}
	workertest.Eventually(r.t, 10*time.Second, "the first attempt of "+opKey+" to fail", func() bool {
		rec, err := worker.LoadRecord(workertest.Context(r.t, 5*time.Second), kv, opKey)
		return err == nil && rec.State == worker.StateFailed
	})
}

// succeeded waits for the operations' results and fails on a dead letter.
func (r *replicaPipeline) succeeded(keys ...string) map[string]events.ResultData {
	r.t.Helper()
	got := map[string]events.ResultData{}
	workertest.Eventually(r.t, 30*time.Second, fmt.Sprintf("results of %v", keys), func() bool {
		for _, res := range r.results.All() {
			if res.Envelope.Type == events.ProvisioningDeadLettered {
				r.t.Fatalf("operation %s dead-lettered: %s", res.Data.OperationKey, res.Data.Error)
			}
			if res.Envelope.Type == events.ProvisioningSucceeded {
				got[res.Data.OperationKey] = res.Data
			}
		}
		return len(got) >= len(keys)
	})
	return got
}

func (r *replicaPipeline) publish(typ events.Type, id string, data any) {
	r.t.Helper()
	env, err := events.NewEnvelope(id, typ, "main", time.Now(), data)
	if err != nil {
		r.t.Fatal(err)
	}
	workertest.Publish(r.t, r.js, env)
}

// Two renewal invoices of one order through the pipeline, the first
// planned by replica A (whose attempt fails and which then stops: a
// restart, or a scale-down), the second by replica B with its own provider
// instance, which also finishes the first: both renewals apply, each
// reported as applied once. The worker hands its bucket to the providers
// itself (Worker.Setup), through the wrapper.
func TestPipelineRenewalsOnTwoReplicasBothApply(t *testing.T) {
	r := newReplicaPipeline(t, codeguardReplicaCatalog)
	fake := codeguardtest.NewServer()
	t.Cleanup(fake.Close)
	start := time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Second)
	orderID := fake.AddOrder("site1.example.com", fake.AddCustomer("ada@example.com", "Ada Lovelace"), 229, codeguard.StatusActive, start)
	renewal := func(inv int) {
		r.publish(events.ServiceRenewalPaid, fmt.Sprintf("whmcs:main:RenewalPaid:%d:1", inv), events.RenewalPaidData{
			ServiceID: 1, ProductID: 20, ClientID: 7, InvoiceID: inv, Months: 12, Domain: "site1.example.com", BillingCycle: "Annually"})
	}
	k1, k2 := events.RenewalKey("main", 1, 901), events.RenewalKey("main", 1, 902)

	fake.FailNextOn(codeguard.PathRenew, 1, 503)
	stopA := r.start("replica-a", codeguardReplica(t, fake, nil))
	renewal(901)
	r.failedOnce(k1)
	stopA()
	if fake.Renewals() != 0 {
		t.Fatalf("renewals %d after the failed attempt", fake.Renewals())
	}
	r.start("replica-b", codeguardReplica(t, fake, nil))
	renewal(902)
	got := r.succeeded(k1, k2)
	want := start.AddDate(0, 24, 0).Unix()
	if end, _ := fake.Order(orderID); fake.Renewals() != 2 || end.End != want {
		t.Fatalf("renewals %d, endtime %d; want 2 renewals and endtime %d (two invoices of 12 months)", fake.Renewals(), end.End, want)
	}
	for _, k := range []string{k1, k2} {
		if got[k].AlreadyDone {
			t.Errorf("%s reported AlreadyDone: each renewal was applied once", k)
		}
	}
	if e1, e2 := got[k1].Details["endtime_expected"], got[k2].Details["endtime_expected"]; e1 == e2 {
		t.Errorf("both renewals expected endtime %s", e1)
	}
}

// Two signups whose derived name is the same (two services of one client),
// the first planned by replica A (its add-user fails, and A stops), the
// second by replica B with its own provider instance: two accounts, each
// carrying its own service's marker, neither adopting the other.
func TestPipelineSignupsOnTwoReplicasGetDistinctAccounts(t *testing.T) {
	r := newReplicaPipeline(t, cometReplicaCatalog)
	srv := comettest.NewServer()
	t.Cleanup(srv.Close)
	client := events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Country: "GB"}
	order := func(orderID, serviceID int) {
		r.publish(events.OrderAccepted, fmt.Sprintf("whmcs:main:AcceptOrder:%d", orderID), events.OrderAcceptedData{
			OrderID: orderID, Client: client, Services: []events.OrderedService{{ServiceID: serviceID, ProductID: 10, BillingCycle: "Monthly"}}})
	}
	k1, k2 := events.ServiceKey("main", 1, events.SignupCustomer), events.ServiceKey("main", 2, events.SignupCustomer)

	srv.FailNextOp("add-user", 1, 503)
	stopA := r.start("replica-a", cometReplica(t, srv, nil))
	order(1001, 1)
	r.failedOnce(k1)
	stopA()
	r.start("replica-b", cometReplica(t, srv, nil))
	order(1002, 2)
	got := r.succeeded(k1, k2)
	if got[k1].Reference == got[k2].Reference || srv.Created() != 2 {
		t.Fatalf("services 1 and 2 got %q and %q (created %d): want two accounts", got[k1].Reference, got[k2].Reference, srv.Created())
	}
	for sid, k := range map[int]string{1: k1, 2: k2} {
		u, _ := srv.User(got[k].Reference)
		marker := comet.ServiceMarker(events.Operation{Source: "main", ServiceID: sid})
		if an, _ := u.Profile["AccountName"].(string); !strings.Contains(an, marker) || got[k].AlreadyDone {
			t.Errorf("service %d: user %q AccountName %q, already_done %t; want its own new account", sid, got[k].Reference, an, got[k].AlreadyDone)
		}
	}
}

// The ledger (providers.Ledger) in the bucket: a note written on one
// replica is read on another; a note that decides on what it read loses a
// race and decides again, so two replicas never both write over one
// reading; the newest LedgerNotes are kept; an unreadable ledger is never
// overwritten (it may hold the only trace of a paid renewal).
func TestLedgerAcrossReplicas(t *testing.T) {
	replica := replicas(t, time.Hour)
	ra, kv := replica()
	rb, _ := replica()
	ctx := workertest.Context(t, 20*time.Second)
	const name = "codeguard.renewed.42"
	if _, err := ra.Note(ctx, name, "renewal-1", func([]providers.Claim) (string, error) { return "sent 100 200", nil }); err != nil {
		t.Fatal(err)
	}
	notes, err := rb.Notes(ctx, name)
	if err != nil || len(notes) != 1 || notes[0] != (providers.Claim{Holder: "renewal-1", Value: "sent 100 200"}) {
		t.Fatalf("replica B reads %+v, %v", notes, err)
	}
	// Both replicas confirm "the first from 100" at once: one wins.
	var wg sync.WaitGroup
	wins := make([]bool, 2)
	for i, r := range []*worker.Reservations{ra, rb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Note(ctx, name, fmt.Sprintf("renewal-%d", i+2), func(now []providers.Claim) (string, error) {
				for _, c := range now {
					if strings.HasPrefix(c.Value, "confirmed 100 ") {
						return "", errors.New("taken")
					}
				}
				return "confirmed 100 200", nil
			})
			wins[i] = err == nil
		}()
	}
	wg.Wait()
	if wins[0] == wins[1] {
		t.Fatalf("wins %v: want exactly one", wins)
	}
	for i := range providers.LedgerNotes + 5 {
		if _, err := ra.Note(ctx, name, fmt.Sprintf("bulk-%d", i), func([]providers.Claim) (string, error) { return "sent 1 2", nil }); err != nil {
			t.Fatal(err)
		}
	}
	notes, _ = rb.Notes(ctx, name)
	if len(notes) != providers.LedgerNotes || notes[len(notes)-1].Holder != fmt.Sprintf("bulk-%d", providers.LedgerNotes+4) {
		t.Fatalf("%d notes, newest %+v: want the newest %d", len(notes), notes[len(notes)-1], providers.LedgerNotes)
	}
	if _, err := kv.Put(ctx, worker.LedgerKey(name), []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.Note(ctx, name, "renewal-9", func([]providers.Claim) (string, error) { return "sent 1 2", nil }); err == nil || events.ClassOf(err) != events.Transient {
		t.Fatalf("note over an unreadable ledger = %v, want a transient error", err)
	}
	if e, _ := kv.Get(ctx, worker.LedgerKey(name)); string(e.Value()) != "{not json" {
		t.Fatalf("unreadable ledger overwritten: %s", e.Value())
	}
}
