package worker

import (
	"fmt"
	"strings"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/catalog"
)

// NoOperationsReason says why Route found nothing to do for env, for the
// "0 operations" log line: "no client_added route in the catalog",
// "product 1 (service 100) is provisioned on order.accepted", … It is only
// meaningful for an event Route accepted with no operations.
func NoOperationsReason(env events.Envelope, cat *catalog.Catalog) string {
	payload, err := env.Payload()
	if err != nil {
		return err.Error()
	}
	product := func(id, serviceID int, want events.Type) string {
		p, ok := cat.Product(id)
		switch {
		case !ok:
			return fmt.Sprintf("product %d (service %d) is not in the catalog (unknown_products: ignore)", id, serviceID)
		case want != "" && p.ProvisionOn != want:
			return fmt.Sprintf("product %d (service %d) is provisioned on %s", id, serviceID, p.ProvisionOn)
		}
		return ""
	}
	var why []string
	add := func(s string) {
		if s != "" {
			why = append(why, s)
		}
	}
	switch d := payload.(type) {
	case *events.ClientAddedData:
		add("no client_added route in the catalog")
	case *events.OrderAcceptedData:
		if len(d.Services) == 0 {
			add("the order has no services")
		}
		for _, s := range d.Services {
			if s.Module != nil {
				add(fmt.Sprintf("service %d uses the hookworker WHMCS module, whose CreateAccount signs it up", s.ServiceID))
				continue
			}
			add(product(s.ProductID, s.ServiceID, events.OrderAccepted))
		}
	case *events.InvoicePaidData:
		if len(d.Items) == 0 {
			add("the invoice has no items")
		}
		for _, it := range d.Items {
			switch {
			case it.Renewal:
				add(fmt.Sprintf("item %d is a renewal (it arrives as service.renewal_paid)", it.ID))
			case it.Type != "Hosting" || it.ProductID == 0:
				add(fmt.Sprintf("item %d (type %s) is not the first payment of a product", it.ID, orUnknown(it.Type)))
			case it.Module == events.ModuleManaged:
				add(fmt.Sprintf("service %d uses the hookworker WHMCS module, whose CreateAccount signs it up", it.RelID))
			default:
				add(product(it.ProductID, it.RelID, events.InvoicePaid))
			}
		}
	case *events.RenewalPaidData:
		if d.ItemType == "Addon" {
			add(fmt.Sprintf("addon %d: the catalog maps products, not addons", d.ServiceID))
		} else {
			add(product(d.ProductID, d.ServiceID, ""))
		}
	case *events.ServiceEventData:
		add(product(d.ProductID, d.ServiceID, ""))
	}
	if len(why) == 0 {
		return "nothing in the catalog applies"
	}
	return strings.Join(why, "; ")
}

func orUnknown(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
