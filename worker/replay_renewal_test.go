package worker_test

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// A renewal (invoice 901) whose delivery ends in a dead letter, a later
// renewal of the same order (invoice 902) on another replica, and then the
// dead letter replayed (`hookworker dlq replay`, the ops page, the WHMCS
// module's "Retry now"): whatever happened to the first renewal at
// LogicBoxes, the order ends up renewed by both invoices, once each, and
// both are reported succeeded. The second renewal is not held back by the
// dead-lettered one's claim.
func TestReplayedRenewalAfterALaterOneRenewsOnce(t *testing.T) {
	cases := []struct {
		name string
		// fault makes the first renewal's renew.json fail.
		fault func(*codeguardtest.Server)
		// firstAlreadyDone: the first renewal took effect before it was
		// dead-lettered, so its replay finds it in place.
		firstAlreadyDone bool
	}{
		{"refused for good", func(f *codeguardtest.Server) { f.FailNextOn(codeguard.PathRenew, 1, 400) }, false},
		{"5xx before the effect, deliveries exhausted", func(f *codeguardtest.Server) { f.FailNextOn(codeguard.PathRenew, 1, 503) }, false},
		{"applied, reply lost, deliveries exhausted", func(f *codeguardtest.Server) { f.DropAfterEffectOn(codeguard.PathRenew) }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tune := func(o *worker.Options) { o.MaxDeliver = 1 } // one delivery, then the dead letter
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

			tc.fault(fake)
			r.startTuned("replica-a", codeguardReplica(t, fake, nil), tune)
			renewal(901)
			dead := r.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 15*time.Second)
			if dead[0].Data.OperationKey != k1 {
				t.Fatalf("dead-lettered %s, want %s", dead[0].Data.OperationKey, k1)
			}

			r.startTuned("replica-b", codeguardReplica(t, fake, nil), tune)
			renewal(902)
			got := r.succeededWithin(10*time.Second, k2) // not held for a lease by the dead-lettered renewal
			if got[k2].AlreadyDone {
				t.Errorf("%s reported AlreadyDone: it was applied", k2)
			}

			d, err := worker.OpenDeadLetters(workertest.Context(t, 5*time.Second), r.js)
			if err != nil {
				t.Fatal(err)
			}
			entries, err := d.List(workertest.Context(t, 5*time.Second), worker.Filter{})
			if err != nil || len(entries) != 1 {
				t.Fatalf("dead letters %+v, %v: want the first renewal's", entries, err)
			}
			if _, err := d.Replay(workertest.Context(t, 5*time.Second), entries[0].Seq); err != nil {
				t.Fatal(err)
			}
			got = r.succeededWithin(15*time.Second, k1, k2)

			want := start.AddDate(0, 24, 0).Unix()
			if o, _ := fake.Order(orderID); fake.Renewals() != 2 || o.End != want {
				t.Fatalf("renewals %d, endtime %d; want 2 renewals and endtime %d (two paid invoices of 12 months each)", fake.Renewals(), o.End, want)
			}
			if got[k1].AlreadyDone != tc.firstAlreadyDone {
				t.Errorf("replayed %s already_done = %t, want %t", k1, got[k1].AlreadyDone, tc.firstAlreadyDone)
			}
		})
	}
}

// startTuned is start with tuned options.
func (r *replicaPipeline) startTuned(name string, p worker.Provider, tune func(*worker.Options)) (stop func()) {
	r.t.Helper()
	_, js := workertest.Connect(r.t, r.url)
	o := replicaOptions()
	o.InstanceID = name
	tune(&o)
	w, err := worker.New(js, r.cat, map[string]worker.Provider{p.Name(): wrapped{p}}, o, zaptest.NewLogger(r.t).Named(name), nil)
	if err != nil {
		r.t.Fatal(err)
	}
	return workertest.Run(r.t, w)
}

// succeededWithin waits for a succeeded result of each key.
func (r *replicaPipeline) succeededWithin(timeout time.Duration, keys ...string) map[string]events.ResultData {
	r.t.Helper()
	got := map[string]events.ResultData{}
	workertest.Eventually(r.t, timeout, fmt.Sprintf("succeeded results of %v", keys), func() bool {
		for _, res := range r.results.Of(events.ProvisioningSucceeded) {
			got[res.Data.OperationKey] = res.Data
		}
		for _, k := range keys {
			if _, ok := got[k]; !ok {
				return false
			}
		}
		return true
	})
	return got
}
