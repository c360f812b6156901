package events

import (
	"fmt"
	"time"
)

// Sample returns a valid example event of type t from the WHMCS instance
// source: product 1, service 100, client 7, order 50, invoice 900. It is
// what `hookworker emit <type>` publishes when no file is given, and what
// the README's examples show.
func Sample(t Type, source string) (Envelope, error) {
	return SampleOf(t, source, SampleIDs{})
}

// SampleIDs choose the WHMCS ids of a sample event; zero fields keep
// Sample's defaults (product 1, service 100, order 50, client 7, invoice
// 900; a renewal's invoice is Invoice+1). The event id is derived from
// them as the hooks derive it, so other ids make another event.
type SampleIDs struct {
	Product, Service, Order, Client, Invoice int
}

// SampleOf is Sample with the ids chosen by ids.
func SampleOf(t Type, source string, ids SampleIDs) (Envelope, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&ids.Product, 1)
	def(&ids.Service, 100)
	def(&ids.Order, 50)
	def(&ids.Client, 7)
	def(&ids.Invoice, 900)
	client := Client{ID: ids.Client, FirstName: "Ada", LastName: "Lovelace", CompanyName: "Analytical Engines Ltd",
		Email: "ada@example.com", Address1: "12 Engine Row", City: "London", State: "Greater London",
		Postcode: "N1 9GU", Country: "GB", PhoneNumber: "+44.2079460000"}
	var (
		id   string
		data any
	)
	switch t {
	case ClientAdded:
		id, data = fmt.Sprintf("whmcs:%s:ClientAdd:%d", source, client.ID), ClientAddedData{Client: client}
	case OrderAccepted:
		id = fmt.Sprintf("whmcs:%s:AcceptOrder:%d", source, ids.Order)
		data = OrderAcceptedData{OrderID: ids.Order, InvoiceID: ids.Invoice, Client: client, Services: []OrderedService{{
			ServiceID: ids.Service, ProductID: ids.Product, Domain: "example.com", BillingCycle: "Annually",
			ConfigOptions: map[string]string{"number_of_devices": "5", "storage_vault_quota_gb": "100"}}}}
	case InvoicePaid:
		id = fmt.Sprintf("whmcs:%s:InvoicePaid:%d", source, ids.Invoice)
		data = InvoicePaidData{InvoiceID: ids.Invoice, ClientID: client.ID, Client: &client, Items: []InvoiceItem{
			{ID: 1, Type: "Hosting", RelID: ids.Service, ProductID: ids.Product, Description: "Backup 100 GB", Amount: "59.00",
				Domain: "example.com", BillingCycle: "Annually"}}}
	case ServiceRenewalPaid:
		id = fmt.Sprintf("whmcs:%s:RenewalPaid:%d:%d", source, ids.Invoice+1, ids.Service)
		data = RenewalPaidData{ServiceID: ids.Service, ProductID: ids.Product, ClientID: client.ID, InvoiceID: ids.Invoice + 1, Months: 12,
			Domain: "example.com", BillingCycle: "Annually"}
	case ServiceSuspended, ServiceUnsuspended, ServiceTerminated, ServicePasswordChanged, ServicePackageChanged:
		hook := map[Type]string{ServiceSuspended: "AfterModuleSuspend", ServiceUnsuspended: "AfterModuleUnsuspend",
			ServiceTerminated: "AfterModuleTerminate", ServicePasswordChanged: "AfterModuleChangePassword",
			ServicePackageChanged: "AfterModuleChangePackage"}[t]
		id = fmt.Sprintf("whmcs:%s:%s:%d:%d", source, hook, ids.Service, time.Now().UnixNano())
		d := ServiceEventData{ServiceID: ids.Service, ProductID: ids.Product, ClientID: client.ID, Domain: "example.com"}
		if t == ServiceSuspended {
			d.Reason = "Overdue on Payment"
		}
		if t == ServicePackageChanged {
			d.ConfigOptions = map[string]string{"number_of_devices": "10"}
		}
		data = d
	default:
		return Envelope{}, fmt.Errorf("no sample for event type %q (known: %v)", t, InboundTypes())
	}
	return NewEnvelope(id, t, source, time.Now(), data)
}
