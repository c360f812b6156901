// Package sgwire is the ONE place that defines how hookworker talks to a
// StoreGrid-style backup server: the endpoint path, the request parameters
// and their value encoding, and the reply format. Both the client
// (package storegrid) and the fake server (package storegridtest) use it, so
// correcting the format here corrects both.
//
// # Everything here is an assumption
//
// The backup server's HTTP API is NOT publicly documented. The only public
// facts are the WHMCS module's settings (Reseller Name, Activation Status,
// Storage Allotted in bytes, ...), that the module talks to the web console
// (protocol http or https, port 6060 or 6061 by default) with the console's
// admin user name and password, and that its actions are "Signup Reseller",
// "Signup Customer", activate and de-activate. The requests below are what
// this project assumes until someone reads productName.php / whmcsHooks.php
// from an installed server (<install>/htmlgui/whmcs/integration/) and
// corrects this file; the wire tests in package storegrid pin every literal,
// so a correction shows up there too.
//
// # Assumed requests
//
// Every request is
//
//	POST <console URL><Path>
//	Content-Type: application/x-www-form-urlencoded
//
//	action=<action>&username=<admin user>&password=<admin password>&<parameters>
//
// The admin credentials travel in the form body (never in the URL), so they
// do not end up in proxy or access logs. The actions (see the table in
// [Action]):
//
//	getserverinfo                                      health / credential check
//	getreseller        resellerName                    read one reseller
//	addreseller        resellerName + signup fields    Signup Reseller
//	editreseller       resellerName + package fields   change package
//	activatereseller   resellerName                    unsuspend
//	deactivatereseller resellerName                    suspend, terminate
//	getcustomer        resellerName customerName       read one customer
//	addcustomer        resellerName customerName + signup fields
//	editcustomer       resellerName customerName + package fields
//	activatecustomer   resellerName customerName
//	deactivatecustomer resellerName customerName
//	getcustomerpasskey resellerName customerName       the customer's pass key
//
// Signup fields are the WHMCS module's settings, one parameter each (see
// [Signup.Encode]): activationStatus, autoAuthorization, storageAllotted
// (bytes), storageLocation (omitted when empty: the server assigns one),
// consolidatedReport and consolidatedReportEmail (customers only), autoMCAL,
// allotMCAL (only when autoMCAL is off), bandwidthThrottling (global|new),
// throttleEnabled (only with new), throttleMode (always|scheduled),
// throttleFrom and throttleTill (HHMM, only when scheduled), restrictedRate
// (bytes, only when throttling is enabled), sendMail; plus the WHMCS client's
// contact details (email, firstName, lastName, companyName) when known.
// Booleans are sent as [True] / [False].
//
// # Assumed replies
//
// Every reply, success or failure, is one JSON object:
//
//	{"status":"ok","data":{"resellerName":"hwr…","activationStatus":"1",…}}
//	{"status":"error","code":"NOT_FOUND","message":"customer hwc… not found"}
//
// data is a flat object of strings. A get* reply carries the account's
// current fields under the same names as the add/edit parameters, with
// activationStatus saying whether the account is active; getcustomerpasskey
// answers {"passKey": …}; getserverinfo answers {"version": …}. Error codes
// are listed below; an error is transient only when it says the server is
// busy (code SERVER_BUSY, or a message containing "busy"). A reply that is
// not such an object is not understood and is a permanent error.
package sgwire

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Path is the web console endpoint every request is posted to, appended to
// the configured console URL (and to its path, if the URL has one).
const Path = "/cgi-bin/sgwhmcs.cgi"

// ContentType is the request body's media type.
const ContentType = "application/x-www-form-urlencoded"

// Request parameters that name the call, the admin and the account.
const (
	ParamAction   = "action"
	ParamUsername = "username"
	ParamPassword = "password"
	ParamReseller = "resellerName"
	ParamCustomer = "customerName"
)

// Request parameters that carry the module's settings (and the account's
// fields in get* replies).
const (
	ParamActivationStatus        = "activationStatus"
	ParamAutoAuthorization       = "autoAuthorization"
	ParamStorageAllotted         = "storageAllotted"
	ParamStorageLocation         = "storageLocation"
	ParamConsolidatedReport      = "consolidatedReport"
	ParamConsolidatedReportEmail = "consolidatedReportEmail"
	ParamAutoMCAL                = "autoMCAL"
	ParamAllotMCAL               = "allotMCAL"
	ParamBandwidthThrottling     = "bandwidthThrottling"
	ParamThrottleEnabled         = "throttleEnabled"
	ParamThrottleMode            = "throttleMode"
	ParamThrottleFrom            = "throttleFrom"
	ParamThrottleTill            = "throttleTill"
	ParamRestrictedRate          = "restrictedRate"
	ParamSendMail                = "sendMail"
	ParamEmail                   = "email"
	ParamFirstName               = "firstName"
	ParamLastName                = "lastName"
	ParamCompanyName             = "companyName"
)

// Parameter values.
const (
	True              = "1"
	False             = "0"
	ThrottlingGlobal  = "global"
	ThrottlingNew     = "new"
	ThrottleAlways    = "always"
	ThrottleScheduled = "scheduled"
)

// Kind is what an account is at the server: a reseller, or a customer under
// a reseller.
type Kind string

// The two account kinds.
const (
	Reseller Kind = "reseller"
	Customer Kind = "customer"
)

// Verb is what a request does to an account.
type Verb string

// The verbs.
const (
	Get        Verb = "get"
	Add        Verb = "add"
	Edit       Verb = "edit"
	Activate   Verb = "activate"
	Deactivate Verb = "deactivate"
	PassKey    Verb = "passkey" // customers only
)

// ActionServerInfo is the action of the health and credential check.
const ActionServerInfo = "getserverinfo"

// actions is the table of action names, by kind and verb.
var actions = map[Kind]map[Verb]string{
	Reseller: {
		Get: "getreseller", Add: "addreseller", Edit: "editreseller",
		Activate: "activatereseller", Deactivate: "deactivatereseller",
	},
	Customer: {
		Get: "getcustomer", Add: "addcustomer", Edit: "editcustomer",
		Activate: "activatecustomer", Deactivate: "deactivatecustomer",
		PassKey: "getcustomerpasskey",
	},
}

// Action returns the action name of verb on an account of kind k, or "" when
// there is none.
func Action(k Kind, v Verb) string { return actions[k][v] }

// Lookup returns the kind and verb of an action name; ok is false for
// unknown actions (including ActionServerInfo).
func Lookup(action string) (k Kind, v Verb, ok bool) {
	for k, vs := range actions {
		for v, a := range vs {
			if a == action {
				return k, v, true
			}
		}
	}
	return "", "", false
}

// StateChanging reports whether action changes something at the server.
func StateChanging(action string) bool {
	_, v, ok := Lookup(action)
	return ok && (v == Add || v == Edit || v == Activate || v == Deactivate)
}

// Bool encodes a boolean parameter.
func Bool(b bool) string {
	if b {
		return True
	}
	return False
}

// ParseBool decodes a boolean parameter; ok is false for anything else.
func ParseBool(s string) (b, ok bool) {
	switch s {
	case True:
		return true, true
	case False:
		return false, true
	}
	return false, false
}

// NewForm starts a request body: the action and the admin credentials.
func NewForm(action, username, password string) url.Values {
	return url.Values{ParamAction: {action}, ParamUsername: {username}, ParamPassword: {password}}
}

// Target adds the parameters that name an account: the reseller's name for
// a reseller, the reseller's and the customer's names for a customer.
func Target(form url.Values, k Kind, reseller, name string) {
	if k == Reseller {
		form.Set(ParamReseller, name)
		return
	}
	form.Set(ParamReseller, reseller)
	form.Set(ParamCustomer, name)
}

// Redact returns a copy of form without the admin password, for request
// logs.
func Redact(form url.Values) url.Values {
	c := make(url.Values, len(form))
	for k, v := range form {
		if k != ParamPassword {
			c[k] = slices.Clone(v)
		}
	}
	return c
}

// Package is what a change of package re-applies to an existing account.
// Activation, storage location and the creation mail are signup-only.
type Package struct {
	AutoAuthorization bool
	StorageAllotted   int64 // bytes
	AutoMCAL          bool
	AllotMCAL         int // used when AutoMCAL is false
	// BandwidthNew selects an account-specific throttle configuration;
	// false inherits the global (reseller) configuration.
	BandwidthNew      bool
	ThrottleEnabled   bool   // used when BandwidthNew
	ThrottleScheduled bool   // false = always throttle
	ThrottleFrom      string // HHMM, used when ThrottleScheduled
	ThrottleTill      string // HHMM, used when ThrottleScheduled
	RestrictedRate    int64  // bytes, used when ThrottleEnabled
	// Customers only.
	ConsolidatedReport      bool
	ConsolidatedReportEmail []string // used when ConsolidatedReport
}

// Encode sets the package's parameters on form. Parameters that a setting
// switches off (allotMCAL under auto MCAL, the throttle details under the
// global configuration, ...) are left out.
func (p Package) Encode(form url.Values, k Kind) {
	form.Set(ParamAutoAuthorization, Bool(p.AutoAuthorization))
	form.Set(ParamStorageAllotted, strconv.FormatInt(p.StorageAllotted, 10))
	form.Set(ParamAutoMCAL, Bool(p.AutoMCAL))
	if !p.AutoMCAL {
		form.Set(ParamAllotMCAL, strconv.Itoa(p.AllotMCAL))
	}
	if !p.BandwidthNew {
		form.Set(ParamBandwidthThrottling, ThrottlingGlobal)
	} else {
		form.Set(ParamBandwidthThrottling, ThrottlingNew)
		form.Set(ParamThrottleEnabled, Bool(p.ThrottleEnabled))
		if p.ThrottleEnabled {
			form.Set(ParamRestrictedRate, strconv.FormatInt(p.RestrictedRate, 10))
			if p.ThrottleScheduled {
				form.Set(ParamThrottleMode, ThrottleScheduled)
				form.Set(ParamThrottleFrom, p.ThrottleFrom)
				form.Set(ParamThrottleTill, p.ThrottleTill)
			} else {
				form.Set(ParamThrottleMode, ThrottleAlways)
			}
		}
	}
	if k == Customer {
		form.Set(ParamConsolidatedReport, Bool(p.ConsolidatedReport))
		if p.ConsolidatedReport {
			form.Set(ParamConsolidatedReportEmail, strings.Join(p.ConsolidatedReportEmail, ","))
		}
	}
}

// Contact is the WHMCS client's contact details sent at signup.
type Contact struct {
	Email, FirstName, LastName, CompanyName string
}

// Signup is everything an add* request carries besides the account's name.
type Signup struct {
	Package
	Active          bool   // activation status at creation
	StorageLocation string // "" = the server assigns one
	SendMail        bool   // the server mails the new account
	Contact         Contact
}

// Encode sets the signup's parameters on form.
func (s Signup) Encode(form url.Values, k Kind) {
	form.Set(ParamActivationStatus, Bool(s.Active))
	s.Package.Encode(form, k)
	if s.StorageLocation != "" {
		form.Set(ParamStorageLocation, s.StorageLocation)
	}
	form.Set(ParamSendMail, Bool(s.SendMail))
	for p, v := range map[string]string{ParamEmail: s.Contact.Email, ParamFirstName: s.Contact.FirstName,
		ParamLastName: s.Contact.LastName, ParamCompanyName: s.Contact.CompanyName} {
		if v != "" {
			form.Set(p, v)
		}
	}
}

// Differs returns, sorted, the parameters of want whose value differs from
// the account's fields in a get* reply: empty when an edit would change
// nothing.
func Differs(want url.Values, have map[string]string) []string {
	var diff []string
	for k := range want {
		if have[k] != want.Get(k) {
			diff = append(diff, k)
		}
	}
	slices.Sort(diff)
	return diff
}

// Reply statuses.
const (
	StatusOK    = "ok"
	StatusError = "error"
)

// Error codes of error replies.
const (
	CodeNotFound      = "NOT_FOUND"       // the account (or the customer's reseller) does not exist
	CodeAlreadyExists = "ALREADY_EXISTS"  // add* of a name in use
	CodeAuthFailed    = "AUTH_FAILED"     // wrong admin credentials
	CodeBusy          = "SERVER_BUSY"     // try again later
	CodeInvalid       = "INVALID_REQUEST" // missing or bad parameter, unknown action
)

// Keys of reply data besides the account fields.
const (
	DataActive  = ParamActivationStatus // "1" active, "0" inactive
	DataPassKey = "passKey"
	DataVersion = "version"
)

// Reply is one reply of the server.
type Reply struct {
	Status  string            `json:"status"`
	Code    string            `json:"code,omitempty"`
	Message string            `json:"message,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
}

// ErrUnrecognised is returned by DecodeReply for a body that is not a reply
// in the assumed format.
var ErrUnrecognised = errors.New("reply not in the expected format")

// DecodeReply parses a reply body.
func DecodeReply(body []byte) (Reply, error) {
	var r Reply
	if err := json.Unmarshal(body, &r); err != nil {
		return Reply{}, fmt.Errorf("%w: %v", ErrUnrecognised, err)
	}
	switch r.Status {
	case StatusOK:
	case StatusError:
		if r.Code == "" && r.Message == "" {
			return Reply{}, fmt.Errorf("%w: error reply without code or message", ErrUnrecognised)
		}
	default:
		return Reply{}, fmt.Errorf("%w: status %q", ErrUnrecognised, r.Status)
	}
	return r, nil
}

// Encode renders a reply body.
func (r Reply) Encode() []byte {
	b, _ := json.Marshal(r) // a struct of strings always encodes
	return b
}

// OK reports whether the reply is a success.
func (r Reply) OK() bool { return r.Status == StatusOK }

// Busy reports whether an error reply says the server is busy, the one
// in-body error worth retrying.
func (r Reply) Busy() bool {
	return r.Code == CodeBusy || strings.Contains(strings.ToLower(r.Message), "busy")
}

// Errorf builds an error reply.
func Errorf(code, format string, args ...any) Reply {
	return Reply{Status: StatusError, Code: code, Message: fmt.Sprintf(format, args...)}
}
