package worker_test

import (
	"encoding/json"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
)

// BenchmarkDecodeAndRoute measures what the worker does with an event's
// bytes before it runs an operation: decode and validate, then route.
// "data decoded twice" is Decode then Route (Route decodes the data again),
// "data decoded once" the worker's path, DecodeWithPayload then
// RoutePayload: go test -run - -bench DecodeAndRoute -benchmem ./worker/
func BenchmarkDecodeAndRoute(b *testing.B) {
	cat, err := catalog.Parse([]byte("products:\n  - id: 1\n    provider: sandbox\n"), "bench", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		b.Fatal(err)
	}
	env, err := events.Sample(events.OrderAccepted, "main")
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := json.Marshal(env)
	b.Run("data decoded twice", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, err := events.Decode(raw)
			if err != nil {
				b.Fatal(err)
			}
			if ops, err := worker.Route(e, cat); err != nil || len(ops) != 1 {
				b.Fatal(len(ops), err)
			}
		}
	})
	b.Run("data decoded once", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e, p, err := events.DecodeWithPayload(raw)
			if err != nil {
				b.Fatal(err)
			}
			if ops, err := worker.RoutePayload(e, p, cat); err != nil || len(ops) != 1 {
				b.Fatal(len(ops), err)
			}
		}
	})
}
