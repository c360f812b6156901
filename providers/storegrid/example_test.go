package storegrid_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/storegrid"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
)

// A customer signup against the fake server: the plan names the account,
// a retry finds it made, and the pass key goes to WHMCS in WriteBack.
func Example() {
	srv := storegridtest.NewServer()
	defer srv.Close()
	srv.AddReseller("acme")

	p, err := storegrid.New(storegrid.Config{
		Settings: providers.Settings{URL: srv.URL, Timeout: 10 * time.Second, MaxConcurrent: 2},
		Username: srv.Username, Password: srv.Password,
	}, nil)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	op := events.Operation{
		Key:    events.ServiceKey("main", 42, events.SignupCustomer),
		Action: events.SignupCustomer, Source: "main", ServiceID: 42, ClientID: 7,
		Client: &events.Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", Email: "ada@example.com"},
		Settings: map[string]string{
			"reseller_name": "acme", "storage_allotted": "107374182400", "retrieve_pass_key": "yes",
		},
	}
	op.Plan, err = p.Prepare(ctx, op)
	if err != nil {
		panic(err)
	}
	out, err := p.Apply(ctx, op)
	if err != nil {
		panic(err)
	}
	again, _ := p.Apply(ctx, op)
	acct, _ := srv.Account(out.Reference)
	fmt.Println(out.Reference == op.Plan["account"], acct.Reseller, acct.Active)
	fmt.Println(again.AlreadyDone, srv.Created(), out.WriteBack["Pass Key"] == acct.PassKey)
	// Output:
	// true acme true
	// true 1 true
}
