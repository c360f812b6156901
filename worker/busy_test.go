package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// A worker killed mid-operation leaves its lease in the record. Its event
// comes back (here at once, as after a NATS restart) to a worker that finds
// the operation busy. With redelivery delays much shorter than the lease,
// every delivery used to find it busy until MAX_DELIVER was used up, and a
// valid event was dead-lettered as "busy" (scripts/chaos with small
// settings). The busy delivery must come back when the lease has ended, and
// an event must never be dead-lettered because another worker held it.
func TestKilledWorkersLeaseDoesNotDeadLetterTheEvent(t *testing.T) {
	cases := []struct {
		name       string
		maxDeliver int
		lease      time.Duration
	}{
		{"redelivered after the lease", 3, 6 * time.Second},
		{"last delivery waits for the lease", 1, 3 * time.Second},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t, func(o *worker.Options) {
				o.MaxDeliver, o.RetryBase, o.RetryMax = tc.maxDeliver, 50*time.Millisecond, 100*time.Millisecond
			})
			kv, err := p.js.KeyValue(workertest.Context(t, 5*time.Second), worker.RecordsBucket)
			if err != nil {
				t.Fatal(err)
			}
			service := 300 + i
			key := events.ServiceKey("main", service, events.SignupCustomer)
			now := time.Now().UTC()
			lease := tc.lease
			putRecord(t, kv, worker.Record{Key: key, State: worker.StateInFlight, Owner: "killed-host:1/abcdef",
				LeaseUntil: now.Add(lease), Created: now, Updated: now,
				Operation: events.Operation{Key: key, Action: events.SignupCustomer, Provider: "sandbox", ServiceID: service}})
			p.start(p.sb)
			start := time.Now()
			workertest.Publish(t, p.js, order(t, 70+i, svc(service, 1)))
			res := p.results.WaitFor(t, events.ProvisioningSucceeded, 1, 20*time.Second)
			p.drained()
			if took := time.Since(start); took < lease-time.Second {
				t.Errorf("succeeded after %s, before the other worker's lease (%s) ended", took, lease)
			}
			if res[0].Data.OperationKey != key {
				t.Errorf("result for %q, want %q", res[0].Data.OperationKey, key)
			}
			if dl := p.deadLetters(); len(dl) != 0 {
				t.Fatalf("dead-lettered although only another worker's lease was in the way: %q", dl[0].Reason)
			}
			for _, r := range p.results.Of(events.ProvisioningFailed) {
				if strings.Contains(r.Data.Error, "in progress at another worker") {
					t.Errorf("a busy delivery was reported as a failure: %+v", r.Data)
				}
			}
			if n := p.sb.Effects(); n != 1 {
				t.Errorf("effects = %d, want 1", n)
			}
		})
	}
}
