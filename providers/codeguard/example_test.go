package codeguard_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
)

// A CodeGuard signup against the fake LogicBoxes server: the second Apply
// (a retry, or a redelivered event) finds the order and places no other.
func Example() {
	srv := codeguardtest.NewServer()
	defer srv.Close()

	pw, _ := providers.NewDerivedPasswords("example-secret-0123456789")
	p, err := codeguard.New(codeguard.Config{
		Settings:   providers.Settings{URL: srv.URL, Timeout: 10 * time.Second, MaxConcurrent: 2},
		AuthUserID: srv.AuthUserID, APIKey: srv.APIKey, InvoiceOption: codeguard.NoInvoice,
	}, pw, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	op := events.Operation{
		Key: events.ServiceKey("main", 42, events.SignupCustomer), Action: events.SignupCustomer, Source: "main",
		ServiceID: 42, ClientID: 7, Domain: "example.com", BillingCycle: "Annually",
		Client:   &events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com", Country: "GB", PhoneNumber: "+44.2071234567"},
		Settings: map[string]string{"plan_id": "229"},
	}
	op.Plan, _ = p.Prepare(ctx, op)
	first, _ := p.Apply(ctx, op)
	again, _ := p.Apply(ctx, op)
	fmt.Println("order", first.Reference, "customer", first.Details["customer_id"], "already done:", first.AlreadyDone)
	fmt.Println("retry: order", again.Reference, "already done:", again.AlreadyDone)
	fmt.Println("orders created:", srv.Created())
	// Output:
	// order 80000001 customer 20000001 already done: false
	// retry: order 80000001 already done: true
	// orders created: 1
}
