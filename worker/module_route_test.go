package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
)

// Events published by the hookworker WHMCS module carry the product's
// Module Settings; they win over the catalog.
func TestRouteByModuleSettings(t *testing.T) {
	cat, err := catalog.Parse([]byte(`
products:
  - id: 5
    provider: sandbox
`), "test", map[string]catalog.Validator{sandbox.Name: nil, comet.Name: comet.ValidateSettings})
	if err != nil {
		t.Fatal(err)
	}
	client := events.Client{ID: 7, Email: "ada@example.com"}
	cometModule := &events.ModuleSettings{Provider: comet.Name, Settings: map[string]string{"policy_group_id": "WHMCS_backup"}}
	tests := []struct {
		name         string
		typ          events.Type
		data         any
		wantProvider string
		wantAction   events.Action
		wantErr      string
	}{
		{name: "module settings win over the catalog entry", typ: events.OrderAccepted,
			data:         events.OrderAcceptedData{OrderID: 1, Client: client, Services: []events.OrderedService{{ServiceID: 10, ProductID: 5, Module: cometModule}}},
			wantProvider: comet.Name, wantAction: events.SignupCustomer},
		{name: "a product in no catalog", typ: events.ServiceSuspended,
			data:         events.ServiceEventData{ServiceID: 10, ProductID: 99, ClientID: 7, Module: cometModule},
			wantProvider: comet.Name, wantAction: events.Suspend},
		{name: "the reseller signup", typ: events.OrderAccepted,
			data: events.OrderAcceptedData{OrderID: 1, Client: client, Services: []events.OrderedService{{ServiceID: 10, ProductID: 99,
				Module: &events.ModuleSettings{Provider: sandbox.Name, Signup: events.SignupReseller}}}},
			wantProvider: sandbox.Name, wantAction: events.SignupReseller},
		{name: "a renewal", typ: events.ServiceRenewalPaid,
			data:         events.RenewalPaidData{ServiceID: 10, ProductID: 99, ClientID: 7, InvoiceID: 3, Months: 1, Module: cometModule},
			wantProvider: comet.Name, wantAction: events.Renew},
		{name: "a wrong setting names it", typ: events.ServiceTerminated,
			data: events.ServiceEventData{ServiceID: 10, ProductID: 99, ClientID: 7,
				Module: &events.ModuleSettings{Provider: comet.Name, Settings: map[string]string{"polcy_group_id": "x"}}},
			wantErr: `module settings of product 99: comet settings for signup_customer: setting "polcy_group_id"`},
		{name: "an unknown provider", typ: events.ServiceTerminated,
			data:    events.ServiceEventData{ServiceID: 10, ProductID: 99, ClientID: 7, Module: &events.ModuleSettings{Provider: "acme"}},
			wantErr: `provider: "acme" is not a known provider`},
		{name: "the module's invoice item starts no signup", typ: events.InvoicePaid,
			data: events.InvoicePaidData{InvoiceID: 3, ClientID: 7, Items: []events.InvoiceItem{{ID: 1, Type: "Hosting", RelID: 10, ProductID: 99, Module: events.ModuleManaged}}}},
		{name: "without the mark the same item is unknown", typ: events.InvoicePaid,
			data:    events.InvoicePaidData{InvoiceID: 3, ClientID: 7, Items: []events.InvoiceItem{{ID: 1, Type: "Hosting", RelID: 10, ProductID: 99}}},
			wantErr: "product 99 (service 10) is not in the catalog"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := events.NewEnvelope("whmcs:main:test:1", tc.typ, "main", time.Now(), tc.data)
			if err != nil {
				t.Fatal(err)
			}
			ops, err := worker.Route(env, cat)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || events.ClassOf(err) != events.Permanent {
					t.Fatalf("err = %v, want a permanent error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantProvider == "" {
				if len(ops) != 0 {
					t.Fatalf("ops = %+v, want none", ops)
				}
				return
			}
			if len(ops) != 1 || ops[0].Provider != tc.wantProvider || ops[0].Action != tc.wantAction {
				t.Fatalf("ops = %+v, want one %s at %s", ops, tc.wantAction, tc.wantProvider)
			}
			if tc.wantProvider == comet.Name && ops[0].Settings["policy_group_id"] != "WHMCS_backup" {
				t.Errorf("settings = %v", ops[0].Settings)
			}
		})
	}
}

func TestModuleSettingsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		m    events.ModuleSettings
		want string
	}{
		{events.ModuleSettings{Provider: ""}, `"data.module.provider"`},
		{events.ModuleSettings{Provider: "comet", Signup: "renew"}, `"data.module.signup"`},
	} {
		_, err := events.NewEnvelope("whmcs:main:x:1", events.ServiceSuspended, "main", time.Now(),
			events.ServiceEventData{ServiceID: 1, ProductID: 2, ClientID: 3, Module: &tc.m})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("module %+v: err = %v, want %s", tc.m, err, tc.want)
		}
	}
}
