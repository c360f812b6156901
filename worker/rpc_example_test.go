package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookworker/hookworker/events"
)

// A worker answers request-reply on its own connection: here the
// providers check the WHMCS module's Test Connection button and
// `hookworker providers check` send.
func ExampleWorker_StartRPC() {
	nc, js, stop := exampleJetStream() // an embedded server, in-process only
	defer stop()

	w := exampleSandboxWorker(js) // product 1 at the sandbox provider
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Setup(ctx); err != nil {
		panic(err)
	}
	rpc, err := w.StartRPC(ctx, nc, nil)
	if err != nil {
		panic(err)
	}
	defer rpc.Stop()

	req, _ := json.Marshal(events.RPCRequest{Provider: "sandbox"})
	msg, err := nc.Request(events.RPCProvidersCheck, req, events.RPCDefaultTimeout)
	if err != nil {
		panic(err)
	}
	var rep events.ProvidersCheckReply
	_ = json.Unmarshal(msg.Data, &rep)
	for _, c := range rep.Providers {
		fmt.Println(c.Provider, c.OK)
	}
	// Output: sandbox true
}
