package worker_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

// BenchmarkServiceResult measures one services-tab request (latest result,
// queued events and the service's dead letters) with 1,000 dead letters of
// other services in the stream: go test -run - -bench ServiceResult ./worker/
func BenchmarkServiceResult(b *testing.B) {
	ns := workertest.Server(b)
	nc, js := workertest.Connect(b, ns.ClientURL())
	cat, _ := catalog.Parse([]byte("products: []\n"), "bench", map[string]catalog.Validator{sandbox.Name: nil})
	w, err := worker.New(js, cat, map[string]worker.Provider{sandbox.Name: sandbox.New()}, workertest.Options(), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := workertest.Context(b, time.Hour)
	if err := w.Setup(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		env, _ := events.NewEnvelope(fmt.Sprintf("whmcs:main:x:%d", i), events.ServiceSuspended, "main", time.Now(),
			events.ServiceEventData{ServiceID: 1000 + i, ProductID: 1, ClientID: 1})
		raw, _ := json.Marshal(env)
		dl, _ := json.Marshal(events.DeadLetter{EventID: env.ID, EventType: env.Type, Source: "main", Subject: "whmcs.main.service.suspended",
			Event: raw, ErrorClass: events.Permanent, Reason: "bench", DeadLetteredAt: time.Now()})
		if _, err := js.Publish(ctx, events.DeadLetterSubject("main", env.Type), dl, jetstream.WithMsgID(env.ID)); err != nil {
			b.Fatal(err)
		}
	}
	rpc, err := w.StartRPC(ctx, nc, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rpc.Stop()
	req, _ := json.Marshal(events.RPCRequest{Source: "main", ServiceID: 1500, TimeoutMS: 10000})
	b.ResetTimer()
	for b.Loop() {
		m, err := nc.Request(events.RPCServiceResult, req, 10*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		var rep events.ServiceResultReply
		if err := json.Unmarshal(m.Data, &rep); err != nil || rep.Error != "" || len(rep.DeadLetters) != 1 {
			b.Fatalf("reply %s", m.Data)
		}
	}
}
