package events

import (
	"fmt"
	"strconv"
)

// Action is one provisioning call the worker makes at a provider.
type Action string

// The actions a catalog entry can route to.
const (
	SignupCustomer Action = "signup_customer"
	SignupReseller Action = "signup_reseller"
	Renew          Action = "renew"
	Suspend        Action = "suspend"
	Unsuspend      Action = "unsuspend"
	Terminate      Action = "terminate"
	ChangePassword Action = "change_password"
	ChangePackage  Action = "change_package"
)

// Actions lists every action in a stable order.
func Actions() []Action {
	return []Action{SignupCustomer, SignupReseller, Renew, Suspend, Unsuspend, Terminate, ChangePassword, ChangePackage}
}

// Valid reports whether a is a known action.
func (a Action) Valid() bool {
	for _, k := range Actions() {
		if a == k {
			return true
		}
	}
	return false
}

// IsSignup reports whether a creates an account.
func (a Action) IsSignup() bool { return a == SignupCustomer || a == SignupReseller }

// Operation is one effect at one provider that an event asks for. An order
// with two services becomes two operations. Key is the operation's
// idempotency key: the same WHMCS fact always yields the same Key, whichever
// event or redelivery carries it, and the worker applies each Key at most
// once.
type Operation struct {
	Key       string `json:"key"`
	EventID   string `json:"event_id"`
	EventType Type   `json:"event_type"`
	Source    string `json:"source"`
	Action    Action `json:"action"`
	Provider  string `json:"provider"`
	ProductID int    `json:"product_id,omitempty"`
	ServiceID int    `json:"service_id,omitempty"`
	ClientID  int    `json:"client_id"`
	OrderID   int    `json:"order_id,omitempty"`
	InvoiceID int    `json:"invoice_id,omitempty"`
	Domain    string `json:"domain,omitempty"`
	Username  string `json:"username,omitempty"`
	// CustomUsername is the product custom field "Username" of a signup's
	// service (see OrderedService.CustomUsername).
	CustomUsername string            `json:"custom_username,omitempty"`
	BillingCycle   string            `json:"billing_cycle,omitempty"`
	Months         int               `json:"months,omitempty"`
	Reason         string            `json:"reason,omitempty"`
	Client         *Client           `json:"client,omitempty"`
	ConfigOpts     map[string]string `json:"config_options,omitempty"`
	// Settings are the product's provider settings from the catalog
	// (never credentials: those belong to the provider's own config).
	Settings map[string]string `json:"settings,omitempty"`
	// Plan is what the provider decided before the first attempt (for
	// example the account name, or an order's expiry before a renewal). The
	// worker records it durably and hands the same Plan to every attempt,
	// including attempts after a crash.
	Plan map[string]string `json:"plan,omitempty"`
}

// Setting returns the catalog setting name, or def when it is unset.
func (o Operation) Setting(name, def string) string {
	if v, ok := o.Settings[name]; ok && v != "" {
		return v
	}
	return def
}

// ServiceKey is the idempotency key of an operation that happens once per
// service (its signup): the same whether AcceptOrder or the first
// InvoicePaid triggered it.
func ServiceKey(source string, serviceID int, a Action) string {
	return "whmcs:" + source + ":service:" + strconv.Itoa(serviceID) + ":" + string(a)
}

// ClientKey is the idempotency key of an operation that happens once per
// WHMCS client (a reseller signup on ClientAdd).
func ClientKey(source string, clientID int, a Action) string {
	return "whmcs:" + source + ":client:" + strconv.Itoa(clientID) + ":" + string(a)
}

// RenewalKey is the idempotency key of one service's renewal paid by one
// invoice: a renewal is applied once per invoice, never twice.
func RenewalKey(source string, serviceID, invoiceID int) string {
	return ServiceKey(source, serviceID, Renew) + ":invoice:" + strconv.Itoa(invoiceID)
}

// EventKey is the idempotency key of a lifecycle operation: one per event.
func EventKey(eventID string, a Action, serviceID int) string {
	return fmt.Sprintf("%s:%s:%d", eventID, a, serviceID)
}

// Outcome is what a provider reports after an operation took effect.
type Outcome struct {
	// Reference is the provider's name for what was acted on: an account
	// name or an order id.
	Reference string `json:"reference,omitempty"`
	// AlreadyDone is true when the effect was found already in place and
	// nothing new was created.
	AlreadyDone bool `json:"already_done,omitempty"`
	// Details are non-secret facts for the result event (customer id,
	// expiry, ...).
	Details map[string]string `json:"details,omitempty"`
	// WriteBack are WHMCS client custom fields to set, by field name (for
	// example StoreGrid's "Pass Key"). They travel in the result event to the
	// WHMCS write-back and are never logged.
	WriteBack map[string]string `json:"write_back,omitempty"`
}
