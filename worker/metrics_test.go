package worker_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

// metricValue returns the value of the gauge or counter name with the given
// label pairs from reg, and whether it was found.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) (float64, bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// An unreachable or leaderless JetStream shows in the metrics, so that
// HookworkerJetStreamUnavailable fires even though the queue gauges can only
// keep their last values; it clears when the broker is back.
func TestJetStreamOutageShowsInMetrics(t *testing.T) {
	dir := t.TempDir()
	ns, err := worker.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ns.Addr().String()
	t.Cleanup(ns.Shutdown)
	_, js := workertest.Connect(t, ns.ClientURL())
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	o := workertest.Options()
	reg := prometheus.NewRegistry()
	w, err := worker.New(js, cat, map[string]worker.Provider{sandbox.Name: sandbox.New()}, o, zaptest.NewLogger(t), worker.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, w)

	up := func(want float64) func() bool {
		return func() bool { v, ok := metricValue(t, reg, "hookworker_queue_status_up"); return ok && v == want }
	}
	for _, op := range []string{"fetch", "ack", "record", "queue_status"} {
		if v, ok := metricValue(t, reg, "hookworker_jetstream_errors_total", "operation", op); !ok || v != 0 {
			t.Errorf("jetstream errors {operation=%q} = %v (exported: %v), want 0 from the start", op, v, ok)
		}
	}
	workertest.Eventually(t, 10*time.Second, "queue status up", up(1))

	ns.Shutdown()
	ns.WaitForShutdown()
	workertest.Eventually(t, 20*time.Second, "queue status down while NATS is gone", up(0))
	if v, _ := metricValue(t, reg, "hookworker_jetstream_errors_total", "operation", "queue_status"); v < 1 {
		t.Errorf("queue_status errors = %v, want at least 1", v)
	}

	ns2, err := worker.StartEmbedded(dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns2.Shutdown)
	workertest.Eventually(t, 20*time.Second, "queue status up again after NATS is back", up(1))
}
