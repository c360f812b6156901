package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

// down is a provider that is unreachable: every call fails, transiently.
type down struct{ *sandbox.Provider }

func (down) Name() string { return "down" }
func (down) Apply(context.Context, events.Operation) (events.Outcome, error) {
	return events.Outcome{}, events.AsTransient(errors.New("down: connection refused"), 0)
}
func (down) Lookup(context.Context, events.Operation) (events.Outcome, bool, error) {
	return events.Outcome{}, false, events.AsTransient(errors.New("down: connection refused"), 0)
}

// A provider that is down must not hold the worker's slots in retries: the
// other providers' events keep flowing.
func TestProviderDownSlowsOnlyItsOwnWork(t *testing.T) {
	ns := workertest.Server(t)
	_, js := workertest.Connect(t, ns.ClientURL())
	cat, err := catalog.Parse([]byte("products:\n  - id: 1\n    provider: sandbox\n  - id: 2\n    provider: down\n"), "test",
		map[string]catalog.Validator{"sandbox": nil, "down": nil})
	if err != nil {
		t.Fatal(err)
	}
	o := workertest.Options()
	o.Concurrency, o.AckWait, o.AttemptBudget, o.RetryBase, o.RetryMax, o.MaxDeliver = 2, 30*time.Second, 25*time.Second, 5*time.Second, 10*time.Second, 100
	if _, _, err := worker.Setup(workertest.Context(t, 10*time.Second), js, o); err != nil {
		t.Fatal(err)
	}
	results := workertest.CollectResults(t, js)
	sb := sandbox.New()
	w, err := worker.New(js, cat, map[string]worker.Provider{"sandbox": sb, "down": down{sandbox.New()}}, o, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, w)

	for i := range 6 { // more events for the dead provider than the worker has slots
		workertest.Publish(t, js, order(t, 100+i, svc(1000+i, 2)))
	}
	time.Sleep(300 * time.Millisecond) // they are in flight first
	start := time.Now()
	for i := range 3 {
		workertest.Publish(t, js, order(t, 200+i, svc(2000+i, 1)))
	}
	// Without the bulkhead both slots sit in 25 s of retries for the dead
	// provider; with it the healthy provider's events finish at once.
	results.WaitFor(t, events.ProvisioningSucceeded, 3, 10*time.Second)
	t.Logf("healthy provider's 3 events done %s after publishing, next to a dead provider", time.Since(start).Round(time.Millisecond))
	if n := sb.Effects(); n != 3 {
		t.Fatalf("effects = %d", n)
	}
	// Every event for the dead provider goes back to the queue with a
	// "will retry" result. The first two may still be in their one in-process
	// backoff wait when the healthy events finish, so wait rather than count.
	failed := results.WaitFor(t, events.ProvisioningFailed, 6, 10*time.Second)
	seen := map[string]bool{}
	for _, r := range failed {
		seen[r.Data.SourceEventID] = true
	}
	if len(seen) != 6 {
		t.Fatalf("failed results cover %d dead-provider events, want 6: %+v", len(seen), failed)
	}
}
