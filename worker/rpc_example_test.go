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

// A worker answers request-reply on its own connection: here the
// providers check the WHMCS module's Test Connection button and
// `hookworker providers check` send.
func ExampleWorker_StartRPC() {
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
