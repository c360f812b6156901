package events

import (
	"fmt"
	"slices"
	"strings"
)

// Client is the WHMCS client an event concerns: contact details only, never
// the client's password.
type Client struct {
	ID          int    `json:"id"`
	FirstName   string `json:"firstname"`
	LastName    string `json:"lastname"`
	CompanyName string `json:"companyname,omitempty"`
	Email       string `json:"email"`
	Address1    string `json:"address1,omitempty"`
	Address2    string `json:"address2,omitempty"`
	City        string `json:"city,omitempty"`
	State       string `json:"state,omitempty"`
	Postcode    string `json:"postcode,omitempty"`
	Country     string `json:"country,omitempty"` // ISO 3166-1 alpha-2
	PhoneNumber string `json:"phonenumber,omitempty"`
	// PhoneCC is WHMCS's "phonecc": the country calling code of
	// PhoneNumber (WHMCS derives it from the country when the number has
	// no "+CC." prefix).
	PhoneCC  string `json:"phonecc,omitempty"`
	Language string `json:"language,omitempty"`
}

func (c Client) validate(prefix string) error {
	if c.ID <= 0 {
		return fieldErr(prefix+".id", "must be a positive WHMCS client id")
	}
	if strings.TrimSpace(c.Email) == "" {
		return fieldErr(prefix+".email", "is required")
	}
	return nil
}

// ClientAddedData is the payload of client.added (WHMCS ClientAdd).
type ClientAddedData struct {
	Client Client `json:"client"`
}

func (d *ClientAddedData) validate() error { return d.Client.validate("data.client") }

// OrderedService is one service of an accepted order. Its password and the
// server's credentials are never included.
type OrderedService struct {
	ServiceID    int    `json:"service_id"`
	ProductID    int    `json:"product_id"`
	Domain       string `json:"domain,omitempty"`
	BillingCycle string `json:"billing_cycle,omitempty"` // WHMCS billing cycle, e.g. "Monthly", "Annually"
	// ConfigOptions are keyed as WHMCS module params key them: by the part
	// of the option's name before "|" (the whole name when there is none),
	// with the key half of a chosen dropdown/radio value or the quantity.
	ConfigOptions map[string]string `json:"config_options,omitempty"`
	Username      string            `json:"username,omitempty"` // service username already set in WHMCS, if any
	// CustomUsername is the service's product custom field "Username" (the
	// key half of its name), when set: the official Comet module names the
	// account after it.
	CustomUsername string `json:"custom_username,omitempty"`
	// Module is set when the hookworker WHMCS module published the event
	// (its CreateAccount): it routes the service instead of the catalog.
	Module *ModuleSettings `json:"module,omitempty"`
}

// OrderAcceptedData is the payload of order.accepted (WHMCS AcceptOrder): one
// entry per ordered service.
type OrderAcceptedData struct {
	OrderID   int              `json:"order_id"`
	InvoiceID int              `json:"invoice_id,omitempty"`
	Client    Client           `json:"client"`
	Services  []OrderedService `json:"services"`
}

func (d *OrderAcceptedData) validate() error {
	if d.OrderID <= 0 {
		return fieldErr("data.order_id", "must be a positive WHMCS order id")
	}
	if err := d.Client.validate("data.client"); err != nil {
		return err
	}
	for i, s := range d.Services {
		if err := s.validate(fmt.Sprintf("data.services[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (s OrderedService) validate(prefix string) error {
	if s.ServiceID <= 0 {
		return fieldErr(prefix+".service_id", "must be a positive WHMCS service id")
	}
	if s.ProductID <= 0 {
		return fieldErr(prefix+".product_id", "must be a positive WHMCS product id")
	}
	return s.Module.validate(prefix + ".module")
}

// InvoiceItem is one line of a paid invoice. RelID is the service
// (tblhosting.id) for type Hosting and the addon for type Addon. Renewal is
// the hook's verdict, made the way WHMCS tells a renewal from a first payment.
type InvoiceItem struct {
	ID          int    `json:"id"`
	Type        string `json:"type"` // Hosting, Addon, Domain, ...
	RelID       int    `json:"rel_id"`
	ProductID   int    `json:"product_id,omitempty"`
	Description string `json:"description,omitempty"`
	Amount      string `json:"amount,omitempty"`
	Renewal     bool   `json:"renewal"`
	// Domain and BillingCycle are the service's, for a Hosting item: a
	// signup on first payment needs them.
	Domain       string `json:"domain,omitempty"`
	BillingCycle string `json:"billing_cycle,omitempty"`
	// ConfigOptions, Username and CustomUsername are the service's, for a
	// first-payment Hosting item, exactly as OrderedService carries them:
	// a signup on first payment applies the same options as one on
	// AcceptOrder.
	ConfigOptions  map[string]string `json:"config_options,omitempty"`
	Username       string            `json:"username,omitempty"`
	CustomUsername string            `json:"custom_username,omitempty"`
	// Module is ModuleManaged when the service's product uses the
	// hookworker WHMCS module, which publishes its signup itself.
	Module string `json:"module,omitempty"`
}

// InvoicePaidData is the payload of invoice.paid (WHMCS InvoicePaid).
type InvoicePaidData struct {
	InvoiceID int           `json:"invoice_id"`
	ClientID  int           `json:"client_id"`
	Client    *Client       `json:"client,omitempty"`
	Items     []InvoiceItem `json:"items"`
}

func (d *InvoicePaidData) validate() error {
	if d.InvoiceID <= 0 {
		return fieldErr("data.invoice_id", "must be a positive WHMCS invoice id")
	}
	if d.ClientID <= 0 {
		return fieldErr("data.client_id", "must be a positive WHMCS client id")
	}
	for i, it := range d.Items {
		if strings.TrimSpace(it.Type) == "" {
			return fieldErr(fmt.Sprintf("data.items[%d].type", i), "is required")
		}
	}
	return nil
}

// RenewalPaidData is the payload of service.renewal_paid: a renewal invoice
// for one service was paid.
type RenewalPaidData struct {
	ServiceID    int    `json:"service_id"`
	ProductID    int    `json:"product_id"`
	ClientID     int    `json:"client_id"`
	InvoiceID    int    `json:"invoice_id"`
	Months       int    `json:"months"`
	Domain       string `json:"domain,omitempty"`
	BillingCycle string `json:"billing_cycle,omitempty"`
	// ItemType is the invoice item's type: "Hosting" (the default) or
	// "Addon". For an addon, ServiceID and ProductID are the addon's ids and
	// ParentServiceID is the service it belongs to.
	ItemType        string `json:"item_type,omitempty"`
	ParentServiceID int    `json:"parent_service_id,omitempty"`
	// Module is set when the hookworker WHMCS module published the event
	// (its Renew): it routes the renewal instead of the catalog.
	Module *ModuleSettings `json:"module,omitempty"`
}

func (d *RenewalPaidData) validate() error {
	switch {
	case d.ServiceID <= 0:
		return fieldErr("data.service_id", "must be a positive WHMCS service id")
	case d.ProductID <= 0:
		return fieldErr("data.product_id", "must be a positive WHMCS product id")
	case d.InvoiceID <= 0:
		return fieldErr("data.invoice_id", "must be a positive WHMCS invoice id")
	case d.Months <= 0 || d.Months > 120:
		return fieldErr("data.months", "must be between 1 and 120, got %d", d.Months)
	}
	return d.Module.validate("data.module")
}

// ServiceEventData is the payload of the lifecycle events (suspended,
// unsuspended, terminated, password_changed, package_changed). A password
// change never carries the password: the worker asks WHMCS for it.
type ServiceEventData struct {
	ServiceID     int               `json:"service_id"`
	ProductID     int               `json:"product_id"`
	ClientID      int               `json:"client_id"`
	Domain        string            `json:"domain,omitempty"`
	Username      string            `json:"username,omitempty"`
	Reason        string            `json:"reason,omitempty"` // suspension reason
	ConfigOptions map[string]string `json:"config_options,omitempty"`
	BillingCycle  string            `json:"billing_cycle,omitempty"` // set on package changes
	// Module is set when the hookworker WHMCS module published the event:
	// it routes the action instead of the catalog.
	Module *ModuleSettings `json:"module,omitempty"`
}

func (d *ServiceEventData) validate() error {
	switch {
	case d.ServiceID <= 0:
		return fieldErr("data.service_id", "must be a positive WHMCS service id")
	case d.ProductID <= 0:
		return fieldErr("data.product_id", "must be a positive WHMCS product id")
	case d.ClientID <= 0:
		return fieldErr("data.client_id", "must be a positive WHMCS client id")
	}
	return d.Module.validate("data.module")
}

// ConfigOptionKey is the name a configurable option is keyed by: the part
// of a WHMCS "key|Label" name before "|", trimmed (the whole name when there
// is no "|" after its first character), as WHMCS builds module params
// (lib/Module/Server.php buildServiceParams, 7.8 and 8.7).
func ConfigOptionKey(name string) string {
	if i := strings.Index(name, "|"); i > 0 {
		return strings.TrimSpace(name[:i])
	}
	return strings.TrimSpace(name)
}

// NormalizeConfigOptions keys opts (and the values of dropdown options,
// which WHMCS names "key|Label" too) by ConfigOptionKey, so that a provider
// finds "number_of_devices" whether an event carries "number_of_devices" or
// "number_of_devices|Devices". Two names with one key and different values
// are a permanent error naming both: neither is dropped silently.
func NormalizeConfigOptions(opts map[string]string) (map[string]string, error) {
	if len(opts) == 0 {
		return opts, nil
	}
	out := make(map[string]string, len(opts))
	from := make(map[string]string, len(opts))
	names := make([]string, 0, len(opts))
	for k := range opts {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		k, v := ConfigOptionKey(name), ConfigOptionKey(opts[name])
		if prev, ok := out[k]; ok && prev != v {
			return nil, Permanentf("config options %q and %q both mean %q, with different values (%q, %q)", from[k], name, k, prev, v)
		}
		out[k], from[k] = v, name
	}
	return out, nil
}
