package worker_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/workertest"
)

// gauge is a sandbox provider that counts the calls it is in at once.
type gauge struct {
	*sandbox.Provider
	now, peak atomic.Int64
}

func (g *gauge) enter() func() {
	n := g.now.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	time.Sleep(50 * time.Millisecond)
	return func() { g.now.Add(-1) }
}

func (g *gauge) Prepare(ctx context.Context, op events.Operation) (map[string]string, error) {
	defer g.enter()()
	return g.Provider.Prepare(ctx, op)
}

func (g *gauge) Apply(ctx context.Context, op events.Operation) (events.Outcome, error) {
	defer g.enter()()
	return g.Provider.Apply(ctx, op)
}

// CONCURRENCY bounds the calls at the providers, whatever PREFETCH lets the
// worker hold: the events in hand beyond it write their records and wait.
func TestConcurrencyBoundsProviderCalls(t *testing.T) {
	for _, tc := range []struct{ concurrency, prefetch int }{{1, 4}, {2, 8}, {3, 3}} {
		t.Run(fmt.Sprintf("c=%d,prefetch=%d", tc.concurrency, tc.prefetch), func(t *testing.T) {
			p := newPipeline(t, func(o *worker.Options) { o.Concurrency, o.Prefetch = tc.concurrency, tc.prefetch })
			g := &gauge{Provider: sandbox.New()}
			_, js := workertest.Connect(t, p.url)
			w, err := worker.New(js, p.cat, map[string]worker.Provider{sandbox.Name: g}, p.opts, zaptest.NewLogger(t), nil)
			if err != nil {
				t.Fatal(err)
			}
			workertest.Run(t, w)
			const n = 12
			for i := range n {
				workertest.Publish(t, p.js, order(t, 300+i, svc(3000+i, 1)))
			}
			p.results.WaitFor(t, events.ProvisioningSucceeded, n, 30*time.Second)
			if got := g.peak.Load(); got != int64(tc.concurrency) {
				t.Errorf("CONCURRENCY %d, PREFETCH %d: at most %d provider calls at once, want exactly %d", tc.concurrency, tc.prefetch, got, tc.concurrency)
			}
		})
	}
}
