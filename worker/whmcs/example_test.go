package whmcs_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/whmcs"
	"github.com/hookworker/hookworker/worker/whmcs/whmcstest"
)

// The client against the fake WHMCS: activate a service and log a line.
func ExampleClient_UpdateClientProduct() {
	fake := whmcstest.NewServer()
	defer fake.Close()
	fake.AddProduct(whmcstest.Product{ServiceID: 34, ClientID: 12, Status: "Pending"})

	c, err := whmcs.NewClient(whmcs.Config{APIURL: fake.URL, Identifier: fake.Identifier, Secret: fake.Secret, Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	err = c.UpdateClientProduct(ctx, 34, url.Values{"status": {"Active"}, "serviceusername": {"acct-34"}})
	fmt.Println("update:", err)
	p, _ := fake.Product(34)
	fmt.Println(p.Status, p.Username)

	// Module* actions would re-fire the hooks that publish hookworker's
	// events: the client refuses them.
	_, err = c.Call(ctx, "ModuleCreate", url.Values{"serviceid": {"34"}})
	fmt.Println(err)
	// Output:
	// update: <nil>
	// Active acct-34
	// whmcs ModuleCreate: refused: Module* API actions re-fire the WHMCS hooks hookworker consumes
}

// The writer applies a result event once, however often it is delivered.
func ExampleWriter_Apply() {
	dir, _ := os.MkdirTemp("", "whmcs-example")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(5 * time.Second)
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, _ := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "hookworker_ops"})

	fake := whmcstest.NewServer()
	defer fake.Close()
	c, _ := whmcs.NewClient(whmcs.Config{APIURL: fake.URL, Identifier: fake.Identifier, Secret: fake.Secret,
		Timeout: 5 * time.Second, PassKeyFieldID: 7})
	w := whmcs.NewWriter(c, kv, nil)

	res, _ := events.NewEnvelope("result-1", events.ProvisioningSucceeded, "main", time.Now(), events.ResultData{
		SourceEventID: "evt-1", OperationKey: "op-1", Action: events.SignupCustomer, Provider: "storegrid",
		ServiceID: 34, ClientID: 12, Reference: "acct-34", WriteBack: map[string]string{"Pass Key": "PK-1"},
	})
	fmt.Println(w.Apply(ctx, res))
	fmt.Println(w.Apply(ctx, res)) // redelivered: nothing is written twice

	p, _ := fake.Product(34)
	fmt.Println(p.Status, p.Username, fake.CustomFields(12)[7] != "")
	fmt.Println(len(fake.Activity()), "activity line")
	// Output:
	// <nil>
	// <nil>
	// Active acct-34 true
	// 1 activity line
}
