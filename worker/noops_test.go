package worker_test

import (
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
)

func TestNoOperationsReason(t *testing.T) {
	cat, err := catalog.Parse([]byte(`
unknown_products: ignore
products:
  - {id: 1, name: On order, provider: sandbox}
  - {id: 2, name: On payment, provider: sandbox, provision_on: invoice.paid}
`), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		typ  events.Type
		ids  events.SampleIDs
		want string
	}{
		{events.ClientAdded, events.SampleIDs{}, "no client_added route in the catalog"},
		{events.InvoicePaid, events.SampleIDs{Product: 1}, "product 1 (service 100) is provisioned on order.accepted"},
		{events.OrderAccepted, events.SampleIDs{Product: 2, Service: 5}, "product 2 (service 5) is provisioned on invoice.paid"},
		{events.OrderAccepted, events.SampleIDs{Product: 9}, "product 9 (service 100) is not in the catalog (unknown_products: ignore)"},
		{events.ServiceSuspended, events.SampleIDs{Product: 9}, "product 9 (service 100) is not in the catalog"},
	} {
		env, err := events.SampleOf(tc.typ, "main", tc.ids)
		if err != nil {
			t.Fatal(err)
		}
		ops, err := worker.Route(env, cat)
		if err != nil || len(ops) != 0 {
			t.Fatalf("%s %+v: %d operations, %v; want none", tc.typ, tc.ids, len(ops), err)
		}
		if got := worker.NoOperationsReason(env, cat); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s %+v: reason %q, want %q", tc.typ, tc.ids, got, tc.want)
		}
	}
}
