package worker

import (
	"fmt"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/catalog"
)

// Route turns a validated event into the operations it asks for, one per
// provider effect, each with its idempotency key. An event that asks for
// nothing (an order with no catalog product provisioned on acceptance)
// yields no operations. A product missing from the catalog is a permanent
// error naming the product, unless the catalog says to ignore unknown
// products.
func Route(env events.Envelope, cat *catalog.Catalog) ([]events.Operation, error) {
	payload, err := env.Payload()
	if err != nil {
		return nil, err
	}
	return RoutePayload(env, payload, cat)
}

// RoutePayload is Route for an event whose data is already decoded and
// validated: payload is what env.Payload() (or events.DecodeWithPayload)
// returned for it, so the data is not decoded again.
func RoutePayload(env events.Envelope, payload any, cat *catalog.Catalog) ([]events.Operation, error) {
	base := events.Operation{EventID: env.ID, EventType: env.Type, Source: env.Source}
	product := func(id, serviceID int, module ...*events.ModuleSettings) (catalog.Product, bool, error) {
		if len(module) > 0 && module[0] != nil {
			p, err := cat.ModuleProduct(id, *module[0]) // module settings win (module_route.go)
			return p, err == nil, err
		}
		p, ok := cat.Product(id)
		if !ok && !cat.IgnoreUnknown {
			return p, false, events.Permanentf("product %d (service %d) is not in the catalog: add it, or set unknown_products: ignore", id, serviceID)
		}
		return p, ok, nil
	}
	var ops []events.Operation
	switch d := payload.(type) {
	case *events.ClientAddedData:
		for _, r := range cat.ClientAdded {
			op := base
			op.Key = events.ClientKey(env.Source, d.Client.ID, r.Action)
			op.Action, op.Provider, op.Settings = r.Action, r.Provider, r.Settings
			op.ClientID, op.Client = d.Client.ID, &d.Client
			ops = append(ops, op)
		}
	case *events.OrderAcceptedData:
		for _, s := range d.Services {
			p, ok, err := product(s.ProductID, s.ServiceID, s.Module)
			if err != nil {
				return nil, err
			}
			if !ok || p.ProvisionOn != events.OrderAccepted {
				continue
			}
			op := base
			op.Key = events.ServiceKey(env.Source, s.ServiceID, p.Signup)
			op.Action, op.Provider, op.Settings, op.ProductID = p.Signup, p.Provider, p.Settings, p.ID
			op.ServiceID, op.ClientID, op.OrderID, op.InvoiceID = s.ServiceID, d.Client.ID, d.OrderID, d.InvoiceID
			op.Domain, op.BillingCycle, op.ConfigOpts, op.Username = s.Domain, s.BillingCycle, s.ConfigOptions, s.Username
			op.CustomUsername = s.CustomUsername
			op.Months, _ = events.MonthsOf(s.BillingCycle)
			client := d.Client
			op.Client = &client
			ops = append(ops, op)
		}
	case *events.InvoicePaidData:
		for _, it := range d.Items {
			if it.Renewal || it.Type != "Hosting" || it.ProductID == 0 || it.Module == events.ModuleManaged {
				continue // renewals arrive as service.renewal_paid; module products sign up from CreateAccount
			}
			p, ok, err := product(it.ProductID, it.RelID)
			if err != nil {
				return nil, err
			}
			if !ok || p.ProvisionOn != events.InvoicePaid {
				continue
			}
			op := base
			op.Key = events.ServiceKey(env.Source, it.RelID, p.Signup)
			op.Action, op.Provider, op.Settings, op.ProductID = p.Signup, p.Provider, p.Settings, p.ID
			op.ServiceID, op.ClientID, op.InvoiceID, op.Client = it.RelID, d.ClientID, d.InvoiceID, d.Client
			op.Domain, op.BillingCycle = it.Domain, it.BillingCycle
			// the same options and names as an AcceptOrder signup of the service
			op.ConfigOpts, op.Username, op.CustomUsername = it.ConfigOptions, it.Username, it.CustomUsername
			op.Months, _ = events.MonthsOf(it.BillingCycle)
			ops = append(ops, op)
		}
	case *events.RenewalPaidData:
		if d.ItemType == "Addon" {
			break // the catalog maps products; addon ids are not product ids
		}
		p, ok, err := product(d.ProductID, d.ServiceID, d.Module)
		if err != nil || !ok {
			return nil, err
		}
		op := base
		op.Key = events.RenewalKey(env.Source, d.ServiceID, d.InvoiceID)
		op.Action, op.Provider, op.Settings, op.ProductID = events.Renew, p.Provider, p.Settings, p.ID
		op.ServiceID, op.ClientID, op.InvoiceID, op.Months = d.ServiceID, d.ClientID, d.InvoiceID, d.Months
		op.Domain, op.BillingCycle = d.Domain, d.BillingCycle
		ops = append(ops, op)
	case *events.ServiceEventData:
		action := map[events.Type]events.Action{
			events.ServiceSuspended: events.Suspend, events.ServiceUnsuspended: events.Unsuspend,
			events.ServiceTerminated: events.Terminate, events.ServicePasswordChanged: events.ChangePassword,
			events.ServicePackageChanged: events.ChangePackage,
		}[env.Type]
		p, ok, err := product(d.ProductID, d.ServiceID, d.Module)
		if err != nil || !ok {
			return nil, err
		}
		op := base
		op.Key = events.EventKey(env.ID, action, d.ServiceID)
		op.Action, op.Provider, op.Settings, op.ProductID = action, p.Provider, p.Settings, p.ID
		op.ServiceID, op.ClientID, op.Domain, op.Username = d.ServiceID, d.ClientID, d.Domain, d.Username
		op.Reason, op.ConfigOpts, op.BillingCycle = d.Reason, d.ConfigOptions, d.BillingCycle
		op.Months, _ = events.MonthsOf(d.BillingCycle)
		if p.Signup == events.SignupReseller {
			op.ServiceID = d.ServiceID // the account is still found by the service's WHMCS username
		}
		ops = append(ops, op)
	default:
		return nil, events.Permanentf("event type %q is not one the worker consumes", env.Type)
	}
	for i := range ops {
		var err error
		if ops[i].Key == "" {
			return nil, fmt.Errorf("internal: operation %d of %s has no key", i, env.ID)
		}
		// Keyed by the part before "|" whatever the publisher sent (an
		// older hook, a hand-written event), as module params are.
		if ops[i].ConfigOpts, err = events.NormalizeConfigOptions(ops[i].ConfigOpts); err != nil {
			return nil, fmt.Errorf("service %d: %w", ops[i].ServiceID, err)
		}
	}
	return ops, nil
}
