package comet_test

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
)

// Example signs a WHMCS service up at a (fake) Comet Server, applies the same
// operation again as a redelivery would, and suspends the account.
func Example() {
	srv := comettest.NewServer()
	defer srv.Close()

	passwords, _ := providers.NewDerivedPasswords("a secret of at least sixteen bytes")
	p, err := comet.New(comet.Config{
		Settings: providers.Settings{URL: srv.URL},
		Username: srv.Username,
		Password: srv.Password,
	}, passwords, zap.NewNop())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	signup := events.Operation{
		Key: events.ServiceKey("main", 42, events.SignupCustomer), Action: events.SignupCustomer,
		Source: "main", ServiceID: 42, ClientID: 7,
		Settings:   map[string]string{comet.SettingStorageVaultTemplate: comettest.StorageTemplate},
		ConfigOpts: map[string]string{"storage_vault_quota_gb": "100", "number_of_devices": "3"},
	}
	signup.Plan, _ = p.Prepare(ctx, signup) // the worker stores the plan durably
	out, err := p.Apply(ctx, signup)
	if err != nil {
		fmt.Println(err)
		return
	}
	again, _ := p.Apply(ctx, signup)
	fmt.Println(out.Reference, again.AlreadyDone, srv.Created())

	suspend := events.Operation{Key: "e1:suspend:42", Action: events.Suspend, Source: "main", ServiceID: 42, ClientID: 7}
	if _, err := p.Apply(ctx, suspend); err != nil {
		fmt.Println(err)
		return
	}
	u, _ := srv.User(out.Reference)
	fmt.Println(u.Suspended(), u.Profile["MaximumDevices"])
	// Output:
	// hwpuwc7a5eik true 1
	// true 3
}
