package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
)

// A worker on an embedded JetStream server provisions an accepted order at
// the sandbox provider and publishes the result.
func Example() {
	nc, js, stop := exampleJetStream() // an embedded server, in-process only
	defer stop()

	w := exampleSandboxWorker(js) // product 1 at the sandbox provider
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
