package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
)

// A worker on an embedded JetStream server provisions an accepted order at
// the sandbox provider and publishes the result.
func Example() {
	dir, _ := os.MkdirTemp("", "hookworker-example")
	defer os.RemoveAll(dir)
	ns, err := worker.StartEmbedded(dir, "") // in-process only
	if err != nil {
		panic(err)
	}
	defer ns.Shutdown()
	nc, _ := nats.Connect("", nats.InProcessServer(ns))
	defer nc.Close()
	js, _ := jetstream.New(nc)

	cat, _ := catalog.Parse([]byte("products:\n  - id: 1\n    provider: sandbox\n"), "example", map[string]catalog.Validator{"sandbox": nil})
	w, err := worker.New(js, cat, map[string]worker.Provider{"sandbox": sandbox.New()}, worker.DefaultOptions(), nil, nil)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	results, _ := nc.SubscribeSync(events.ResultsWildcard)
	env, _ := events.Sample(events.OrderAccepted, "main")
	body, _ := json.Marshal(env)
	for { // the worker creates the streams as it starts
		if _, err := js.Publish(ctx, events.InboundSubject(env.Source, env.Type), body, jetstream.WithMsgID(env.ID)); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	msg, err := results.NextMsg(10 * time.Second)
	if err != nil {
		panic(err)
	}
	res, _ := events.Decode(msg.Data)
	p, _ := res.Payload()
	fmt.Println(msg.Subject, res.Type, p.(*events.ResultData).OperationKey)
	// Output: hookworker.results.succeeded.main.100 provisioning.succeeded whmcs:main:service:100:signup_customer
}
