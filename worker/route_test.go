package worker_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
)

func TestRoute(t *testing.T) {
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	client := events.Client{ID: 7, Email: "ada@example.com"}
	mk := func(typ events.Type, id string, data any) events.Envelope {
		env, err := events.NewEnvelope(id, typ, "main", time.Now(), data)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	for _, tc := range []struct {
		name    string
		env     events.Envelope
		keys    []string
		actions []events.Action
		err     string
	}{
		{"client added → reseller", mk(events.ClientAdded, "whmcs:main:ClientAdd:7", events.ClientAddedData{Client: client}),
			[]string{"whmcs:main:client:7:signup_reseller"}, []events.Action{events.SignupReseller}, ""},
		{"order: one op per service, payment products skipped", mk(events.OrderAccepted, "whmcs:main:AcceptOrder:1", events.OrderAcceptedData{
			OrderID: 1, Client: client, Services: []events.OrderedService{{ServiceID: 10, ProductID: 1}, {ServiceID: 11, ProductID: 3}, {ServiceID: 12, ProductID: 6}}}),
			[]string{"whmcs:main:service:10:signup_customer", "whmcs:main:service:11:signup_customer"}, []events.Action{events.SignupCustomer, events.SignupCustomer}, ""},
		{"order: unknown product", mk(events.OrderAccepted, "whmcs:main:AcceptOrder:2", events.OrderAcceptedData{
			OrderID: 2, Client: client, Services: []events.OrderedService{{ServiceID: 20, ProductID: 99}}}), nil, nil, "product 99 (service 20) is not in the catalog"},
		{"invoice: first payment of a pay-first product", mk(events.InvoicePaid, "whmcs:main:InvoicePaid:5", events.InvoicePaidData{
			InvoiceID: 5, ClientID: 7, Items: []events.InvoiceItem{{Type: "Hosting", RelID: 30, ProductID: 6}, {Type: "Hosting", RelID: 31, ProductID: 1},
				{Type: "Hosting", RelID: 32, ProductID: 6, Renewal: true}, {Type: "Domain", RelID: 3}}}),
			[]string{"whmcs:main:service:30:signup_customer"}, []events.Action{events.SignupCustomer}, ""},
		{"renewal: once per invoice", mk(events.ServiceRenewalPaid, "whmcs:main:RenewalPaid:8:40", events.RenewalPaidData{ServiceID: 40, ProductID: 1, ClientID: 7, InvoiceID: 8, Months: 12}),
			[]string{"whmcs:main:service:40:renew:invoice:8"}, []events.Action{events.Renew}, ""},
		{"addon renewal: not a catalog product", mk(events.ServiceRenewalPaid, "whmcs:main:RenewalPaid:8:addon-3", events.RenewalPaidData{ServiceID: 3, ProductID: 1, ClientID: 7, InvoiceID: 8, Months: 1, ItemType: "Addon", ParentServiceID: 40}),
			nil, nil, ""},
		{"suspend: one op per event", mk(events.ServiceSuspended, "whmcs:main:AfterModuleSuspend:40:r1", events.ServiceEventData{ServiceID: 40, ProductID: 1, ClientID: 7, Reason: "Overdue"}),
			[]string{"whmcs:main:AfterModuleSuspend:40:r1:suspend:40"}, []events.Action{events.Suspend}, ""},
		{"package change", mk(events.ServicePackageChanged, "whmcs:main:AfterModuleChangePackage:40:r2", events.ServiceEventData{ServiceID: 40, ProductID: 1, ClientID: 7}),
			[]string{"whmcs:main:AfterModuleChangePackage:40:r2:change_package:40"}, []events.Action{events.ChangePackage}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := worker.Route(tc.env, cat)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || events.ClassOf(err) != events.Permanent {
					t.Fatalf("err = %v, want permanent %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ops) != len(tc.keys) {
				t.Fatalf("%d operations, want %d: %+v", len(ops), len(tc.keys), ops)
			}
			for i, op := range ops {
				if op.Key != tc.keys[i] || op.Action != tc.actions[i] || op.Provider != "sandbox" || op.EventID != tc.env.ID {
					t.Errorf("op %d = %+v, want key %s action %s", i, op, tc.keys[i], tc.actions[i])
				}
			}
		})
	}
}

func TestOptionsValidateNamesTheVariable(t *testing.T) {
	for _, tc := range []struct {
		tune func(*worker.Options)
		want string
	}{
		{func(o *worker.Options) { o.Concurrency = 0 }, "HOOKWORKER_CONCURRENCY"},
		{func(o *worker.Options) { o.AckWait = 10 * time.Millisecond }, "HOOKWORKER_ACK_WAIT"},
		{func(o *worker.Options) { o.MaxAckPending = 2 }, "HOOKWORKER_MAX_ACK_PENDING"},
		{func(o *worker.Options) { o.MaxDeliver = 0 }, "HOOKWORKER_MAX_DELIVER"},
		{func(o *worker.Options) { o.RetryMax = time.Second }, "HOOKWORKER_RETRY_MAX"},
		{func(o *worker.Options) { o.StreamReplicas = 2 }, "HOOKWORKER_STREAM_REPLICAS"},
		{func(o *worker.Options) { o.DuplicateWindow = time.Millisecond }, "HOOKWORKER_DUPLICATE_WINDOW"},
		{func(o *worker.Options) { o.ConsumerName = "" }, "HOOKWORKER_CONSUMER"},
	} {
		o := worker.DefaultOptions()
		tc.tune(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %s", err, tc.want)
		}
	}
	if err := worker.DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
}

// A signup on first payment (invoice.paid) applies the same configurable
// options and usernames as one on AcceptOrder: the two triggers of one
// service's signup make the same operation (issue 8 point 2).
func TestRouteFirstPaymentCarriesTheOrderOptions(t *testing.T) {
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	opts := map[string]string{"number_of_devices": "5", "storage_vault_quota_gb": "100"}
	client := events.Client{ID: 7, Email: "ada@example.com"}
	paid, err := events.NewEnvelope("whmcs:main:InvoicePaid:5", events.InvoicePaid, "main", time.Now(), events.InvoicePaidData{
		InvoiceID: 5, ClientID: 7, Client: &client, Items: []events.InvoiceItem{{Type: "Hosting", RelID: 30, ProductID: 6,
			BillingCycle: "Monthly", ConfigOptions: opts, Username: "ada30", CustomUsername: "ada-backup"}}})
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := events.NewEnvelope("whmcs:main:AcceptOrder:1", events.OrderAccepted, "main", time.Now(), events.OrderAcceptedData{
		OrderID: 1, InvoiceID: 5, Client: client, Services: []events.OrderedService{{ServiceID: 30, ProductID: 1,
			BillingCycle: "Monthly", ConfigOptions: opts, Username: "ada30", CustomUsername: "ada-backup"}}})
	if err != nil {
		t.Fatal(err)
	}
	byPayment, err := worker.Route(paid, cat)
	if err != nil || len(byPayment) != 1 {
		t.Fatalf("invoice.paid: %v %+v", err, byPayment)
	}
	byOrder, err := worker.Route(accepted, cat)
	if err != nil || len(byOrder) != 1 {
		t.Fatalf("order.accepted: %v %+v", err, byOrder)
	}
	p, o := byPayment[0], byOrder[0]
	if p.Key != o.Key {
		t.Errorf("keys differ: %s vs %s", p.Key, o.Key)
	}
	if !maps.Equal(p.ConfigOpts, opts) || p.Username != "ada30" || p.CustomUsername != "ada-backup" {
		t.Errorf("first-payment signup lost the service's options or names: %+v", p)
	}
	if !maps.Equal(p.ConfigOpts, o.ConfigOpts) || p.Username != o.Username || p.CustomUsername != o.CustomUsername {
		t.Errorf("first-payment signup %+v differs from the AcceptOrder signup %+v", p, o)
	}
}

// Configurable options reach the provider keyed by the part before "|",
// however the event named them (issue 8 point 1); a clash is a permanent
// error naming both options.
func TestRouteKeysConfigOptionsBeforeThePipe(t *testing.T) {
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	order := func(opts map[string]string) events.Envelope {
		env, err := events.NewEnvelope("whmcs:main:AcceptOrder:9", events.OrderAccepted, "main", time.Now(), events.OrderAcceptedData{
			OrderID: 9, Client: events.Client{ID: 7, Email: "ada@example.com"},
			Services: []events.OrderedService{{ServiceID: 90, ProductID: 1, ConfigOptions: opts}}})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	ops, err := worker.Route(order(map[string]string{"number_of_devices|Devices": "5", " storage_vault_quota_gb | Vault (GB)": "100",
		"region|Region": "eu-west|Europe (West)", "plain": "x"}), cat)
	if err != nil || len(ops) != 1 {
		t.Fatalf("%v %+v", err, ops)
	}
	want := map[string]string{"number_of_devices": "5", "storage_vault_quota_gb": "100", "region": "eu-west", "plain": "x"}
	if !maps.Equal(ops[0].ConfigOpts, want) {
		t.Errorf("config options %v, want %v", ops[0].ConfigOpts, want)
	}
	_, err = worker.Route(order(map[string]string{"number_of_devices|Devices": "5", "number_of_devices": "7"}), cat)
	if err == nil || events.ClassOf(err) != events.Permanent || !strings.Contains(err.Error(), `"number_of_devices|Devices"`) {
		t.Fatalf("clash: err %v, want a permanent error naming both options", err)
	}
}
