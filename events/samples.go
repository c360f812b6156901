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
	client := Client{ID: 7, FirstName: "Ada", LastName: "Lovelace", CompanyName: "Analytical Engines Ltd",
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
		id = fmt.Sprintf("whmcs:%s:AcceptOrder:50", source)
		data = OrderAcceptedData{OrderID: 50, InvoiceID: 900, Client: client, Services: []OrderedService{{
			ServiceID: 100, ProductID: 1, Domain: "example.com", BillingCycle: "Annually",
			ConfigOptions: map[string]string{"number_of_devices": "5", "storage_vault_quota_gb": "100"}}}}
	case InvoicePaid:
		id = fmt.Sprintf("whmcs:%s:InvoicePaid:900", source)
		data = InvoicePaidData{InvoiceID: 900, ClientID: client.ID, Client: &client, Items: []InvoiceItem{
			{ID: 1, Type: "Hosting", RelID: 100, ProductID: 1, Description: "Backup 100 GB", Amount: "59.00"}}}
	case ServiceRenewalPaid:
		id = fmt.Sprintf("whmcs:%s:RenewalPaid:901:100", source)
		data = RenewalPaidData{ServiceID: 100, ProductID: 1, ClientID: client.ID, InvoiceID: 901, Months: 12,
			Domain: "example.com", BillingCycle: "Annually"}
	case ServiceSuspended, ServiceUnsuspended, ServiceTerminated, ServicePasswordChanged, ServicePackageChanged:
		hook := map[Type]string{ServiceSuspended: "AfterModuleSuspend", ServiceUnsuspended: "AfterModuleUnsuspend",
			ServiceTerminated: "AfterModuleTerminate", ServicePasswordChanged: "AfterModuleChangePassword",
			ServicePackageChanged: "AfterModuleChangePackage"}[t]
		id = fmt.Sprintf("whmcs:%s:%s:100:%d", source, hook, time.Now().UnixNano())
		d := ServiceEventData{ServiceID: 100, ProductID: 1, ClientID: client.ID, Domain: "example.com"}
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
