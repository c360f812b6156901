package codeguard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/hookworker/hookworker/events"
)

// API paths, relative to the base URL (…/api).
const (
	PathCustomerDetails = "customers/details.json"
	PathCustomerSignup  = "customers/signup.json"
	PathAdd             = "codeguard/add.json"
	PathRenew           = "codeguard/renew.json"
	PathModify          = "codeguard/modify.json"
	PathDelete          = "codeguard/delete.json"
	PathDetails         = "codeguard/details.json"
	PathOrderID         = "codeguard/orderid.json"
	PathSearch          = "codeguard/search.json"
	PathSuspend         = "orders/suspend.json"
	PathUnsuspend       = "orders/unsuspend.json"
	PathCustomerPrice   = "products/customer-price.json"
	PathPlanDetails     = "products/plan-details.json"
)

// Order statuses LogicBoxes reports in currentstatus.
const (
	StatusActive    = "Active"
	StatusInActive  = "InActive"
	StatusSuspended = "Suspended"
	StatusDeleted   = "Deleted"
)

// Invoice options every order call takes.
const (
	NoInvoice   = "NoInvoice"
	PayInvoice  = "PayInvoice"
	KeepInvoice = "KeepInvoice"
	OnlyAdd     = "OnlyAdd"
)

// ErrNotFound is matched (errors.Is) by look-ups that found nothing: a
// customer by username, an order by domain. Those calls return it with
// found = false rather than as an error; it is exported for callers that
// turn "not found" into an error of their own.
var ErrNotFound = errors.New("not found")

// Customer is a LogicBoxes customer (customers/details.json).
type Customer struct {
	ID       int64
	Username string
	Name     string
	Company  string
	Country  string
	Status   string
}

// CustomerSignup holds the fields of customers/signup.json. Password is a
// secret: it is sent, never logged, and never part of an error.
type CustomerSignup struct {
	Username     string // the customer's email address
	Password     string
	Name         string
	Company      string
	AddressLine1 string
	AddressLine2 string
	City         string
	State        string
	Country      string // ISO 3166-1 alpha-2
	Zipcode      string
	PhoneCC      string // country calling code, digits only
	Phone        string // digits only
	LangPref     string
}

// String never prints the password.
func (s CustomerSignup) String() string {
	return fmt.Sprintf("CustomerSignup{Username:%q Name:%q Country:%q Password:[REDACTED]}", s.Username, s.Name, s.Country)
}

// GoString never prints the password.
func (s CustomerSignup) GoString() string { return s.String() }

// Action is the reply to an order action (add, renew, modify, delete,
// suspend, unsuspend). Invoice fields are absent with NoInvoice.
type Action struct {
	OrderID          int64  // entityid
	Description      string // the domain name
	ActionType       string
	ActionTypeDesc   string
	ActionID         int64 // eaqid
	ActionStatus     string
	ActionStatusDesc string
	InvoiceID        int64
	CustomerID       int64
	SellingCurrency  string
	SellingAmount    string
	Status           string // top-level status, when present
}

// OrderDetails is codeguard/details.json. Times are UNIX seconds (0 when
// absent); LogicBoxes sends them, and the ids, as JSON strings.
type OrderDetails struct {
	OrderID         int64
	Description     string
	DomainName      string
	CurrentStatus   string // InActive, Active, Suspended or Deleted
	ProductKey      string
	ProductCategory string
	PlanID          int64
	Paused          string
	CreationTime    int64
	EndTime         int64
	CustomerID      int64
	Recurring       bool
	AllowDeletion   bool
}

// Domain returns the order's domain name (domainname, or description).
func (d OrderDetails) Domain() string {
	if d.DomainName != "" {
		return d.DomainName
	}
	return d.Description
}

// AddRequest is codeguard/add.json. AutoRenew is sent only when true (the
// parameter is inferred from sibling products; see the package doc).
type AddRequest struct {
	DomainName    string
	CustomerID    int64
	PlanID        int64
	Months        int
	InvoiceOption string
	AutoRenew     bool
}

// RenewRequest is codeguard/renew.json.
type RenewRequest struct {
	OrderID       int64
	Months        int
	AutoRenew     bool
	InvoiceOption string
}

// ModifyRequest is codeguard/modify.json (plan upgrade or downgrade).
type ModifyRequest struct {
	OrderID       int64
	NewPlanID     int64
	Months        int
	InvoiceOption string
}

// SearchRequest is codeguard/search.json. Records and Page default to 10
// and 1.
type SearchRequest struct {
	Records     int
	Page        int
	OrderIDs    []int64
	CustomerIDs []int64
	ResellerIDs []int64
	Statuses    []string
	DomainName  string
}

// SearchResult is a page of codeguard/search.json.
type SearchResult struct {
	OnPage int
	InDB   int
	Orders []SearchOrder
}

// SearchOrder is one order in a search result.
type SearchOrder struct {
	OrderID      int64
	CustomerID   int64
	Domain       string
	Status       string
	CreationTime int64
	EndTime      int64
	ProductKey   string
}

// PlanPrice is one CodeGuard plan's prices by tenure in months.
type PlanPrice struct {
	Add   map[int]float64
	Renew map[int]float64
}

// Plan is one CodeGuard plan in products/plan-details.json.
type Plan struct {
	ID     int64
	Name   string
	Status string // Active or Paused
}

// CustomerByUsername looks a customer up by username (their email), with
// GET customers/details.json. found is false when LogicBoxes answers with
// an error object on a 2xx or 4xx status (how it says "no such customer"),
// or with an error whose message says the customer does not exist; other
// failures are returned.
func (c *Client) CustomerByUsername(ctx context.Context, username string) (Customer, bool, error) {
	body, err := c.call(ctx, http.MethodGet, PathCustomerDetails, url.Values{"username": {username}})
	if err != nil {
		if isNotFound(err) || events.ClassOf(err) == events.Permanent && isAPIError(err) {
			return Customer{}, false, nil
		}
		return Customer{}, false, fmt.Errorf("codeguard customer look-up: %w", err)
	}
	m, err := object(PathCustomerDetails, body)
	if err != nil {
		return Customer{}, false, err
	}
	cu := Customer{ID: num(m, "customerid"), Username: str(m, "username"), Name: str(m, "name"),
		Company: str(m, "company"), Country: str(m, "country"), Status: str(m, "customerstatus")}
	if cu.ID <= 0 {
		return Customer{}, false, events.WithReply(events.Permanentf("%s: reply has no customerid", PathCustomerDetails), string(body))
	}
	return cu, true, nil
}

// SignupCustomer creates a customer with POST customers/signup.json and
// returns the new customer id (LogicBoxes answers with a bare number).
func (c *Client) SignupCustomer(ctx context.Context, s CustomerSignup) (int64, error) {
	v := url.Values{
		"username": {s.Username}, "passwd": {s.Password}, "name": {s.Name}, "company": {s.Company},
		"address-line-1": {s.AddressLine1}, "city": {s.City}, "state": {s.State}, "country": {s.Country},
		"zipcode": {s.Zipcode}, "phone-cc": {s.PhoneCC}, "phone": {s.Phone}, "lang-pref": {s.LangPref},
	}
	if s.AddressLine2 != "" {
		v.Set("address-line-2", s.AddressLine2)
	}
	body, err := c.call(ctx, http.MethodPost, PathCustomerSignup, v)
	if err != nil {
		return 0, err
	}
	return bareInt(PathCustomerSignup, body, "customerid", "entityid")
}

// Add places a CodeGuard order with POST codeguard/add.json. It is not
// idempotent: the Provider guards it with OrderID first.
func (c *Client) Add(ctx context.Context, r AddRequest) (Action, error) {
	v := url.Values{
		"domain-name": {r.DomainName}, "customer-id": {itoa(r.CustomerID)}, "plan-id": {itoa(r.PlanID)},
		"months": {strconv.Itoa(r.Months)}, "invoice-option": {r.InvoiceOption},
	}
	if r.AutoRenew {
		v.Set("auto-renew", "true")
	}
	return c.action(ctx, PathAdd, v)
}

// Renew renews an order with POST codeguard/renew.json. It is not
// idempotent: the Provider guards it with the order's endtime.
func (c *Client) Renew(ctx context.Context, r RenewRequest) (Action, error) {
	return c.action(ctx, PathRenew, url.Values{
		"order-id": {itoa(r.OrderID)}, "months": {strconv.Itoa(r.Months)},
		"auto-renew": {strconv.FormatBool(r.AutoRenew)}, "invoice-option": {r.InvoiceOption},
	})
}

// Modify moves an order to another plan with POST codeguard/modify.json.
func (c *Client) Modify(ctx context.Context, r ModifyRequest) (Action, error) {
	return c.action(ctx, PathModify, url.Values{
		"order-id": {itoa(r.OrderID)}, "new-plan-id": {itoa(r.NewPlanID)},
		"months": {strconv.Itoa(r.Months)}, "invoice-option": {r.InvoiceOption},
	})
}

// Delete deletes an order with POST codeguard/delete.json.
func (c *Client) Delete(ctx context.Context, orderID int64) (Action, error) {
	return c.action(ctx, PathDelete, url.Values{"order-id": {itoa(orderID)}})
}

// Suspend suspends an order with POST orders/suspend.json; reason is
// required by LogicBoxes.
func (c *Client) Suspend(ctx context.Context, orderID int64, reason string) (Action, error) {
	return c.action(ctx, PathSuspend, url.Values{"order-id": {itoa(orderID)}, "reason": {reason}})
}

// Unsuspend lifts a suspension with POST orders/unsuspend.json.
func (c *Client) Unsuspend(ctx context.Context, orderID int64) (Action, error) {
	return c.action(ctx, PathUnsuspend, url.Values{"order-id": {itoa(orderID)}})
}

// action posts an order action and reads the action map. A bare true or a
// "Success…" string is accepted as success; a bare false, or an
// actionstatus of "Failed", is a permanent error.
func (c *Client) action(ctx context.Context, path string, v url.Values) (Action, error) {
	body, err := c.call(ctx, http.MethodPost, path, v)
	if err != nil {
		return Action{}, err
	}
	trim := strings.TrimSpace(string(body))
	var b bool
	if json.Unmarshal([]byte(trim), &b) == nil {
		if !b {
			return Action{}, events.WithReply(events.Permanentf("%s: LogicBoxes answered false", path), trim)
		}
		return Action{Status: "true"}, nil
	}
	var s string
	if json.Unmarshal([]byte(trim), &s) == nil || !strings.HasPrefix(trim, "{") {
		if s == "" {
			s = trim
		}
		if strings.HasPrefix(strings.ToLower(s), "success") {
			return Action{Status: s}, nil
		}
		return Action{}, events.WithReply(events.Permanentf("%s: unexpected reply", path), c.redact(trim))
	}
	m, err := object(path, body)
	if err != nil {
		return Action{}, err
	}
	a := Action{
		OrderID: num(m, "entityid"), Description: str(m, "description"), ActionType: str(m, "actiontype"),
		ActionTypeDesc: str(m, "actiontypedesc"), ActionID: num(m, "eaqid"), ActionStatus: str(m, "actionstatus"),
		ActionStatusDesc: str(m, "actionstatusdesc"), InvoiceID: num(m, "invoiceid"), CustomerID: num(m, "customerid"),
		SellingCurrency: str(m, "sellingcurrencysymbol"), SellingAmount: str(m, "sellingamount"), Status: str(m, "status"),
	}
	if strings.EqualFold(a.ActionStatus, "failed") {
		return a, events.WithReply(events.Permanentf("%s: action %d failed: %s", path, a.ActionID, a.ActionStatusDesc), c.redact(trim))
	}
	return a, nil
}

// Details reads an order with GET codeguard/details.json.
func (c *Client) Details(ctx context.Context, orderID int64) (OrderDetails, error) {
	body, err := c.call(ctx, http.MethodGet, PathDetails, url.Values{"order-id": {itoa(orderID)}})
	if err != nil {
		return OrderDetails{}, err
	}
	m, err := object(PathDetails, body)
	if err != nil {
		return OrderDetails{}, err
	}
	d := OrderDetails{
		OrderID: num(m, "entityid"), Description: str(m, "description"), DomainName: str(m, "domainname"),
		CurrentStatus: str(m, "currentstatus"), ProductKey: str(m, "productkey"), ProductCategory: str(m, "productcategory"),
		PlanID: num(m, "planid"), Paused: str(m, "paused"), CreationTime: num(m, "creationtime"), EndTime: num(m, "endtime"),
		CustomerID: num(m, "customerid"), Recurring: flag(m, "recurring"), AllowDeletion: flag(m, "allowdeletion"),
	}
	if d.OrderID == 0 {
		d.OrderID = num(m, "orderid")
	}
	if d.CurrentStatus == "" {
		return OrderDetails{}, events.WithReply(events.Permanentf("%s: reply has no currentstatus", PathDetails), c.redact(string(body)))
	}
	return d, nil
}

// OrderID returns the CodeGuard order id for domain with GET
// codeguard/orderid.json (a bare number). found is false when LogicBoxes
// says no order exists (an error whose message says so, on any status).
// ErrOrderIDUnavailable is returned when the endpoint itself is missing
// (HTTP 404 without an error object), so a caller can fall back to Search.
func (c *Client) OrderID(ctx context.Context, domain string) (int64, bool, error) {
	body, err := c.call(ctx, http.MethodGet, PathOrderID, url.Values{"domain-name": {domain}})
	if err != nil {
		var ae *APIError
		switch {
		case isNotFound(err):
			return 0, false, nil
		case errors.As(err, &ae) && ae.HTTPStatus == http.StatusNotFound && ae.Message == "":
			return 0, false, fmt.Errorf("%w: %w", ErrOrderIDUnavailable, err)
		}
		return 0, false, err
	}
	id, err := bareInt(PathOrderID, body, "orderid", "entityid")
	if err != nil {
		return 0, false, err
	}
	return id, id > 0, nil
}

// ErrOrderIDUnavailable says codeguard/orderid.json does not exist at this
// API (HTTP 404 with no error object). It is wrapped with the call's error.
var ErrOrderIDUnavailable = errors.New("codeguard/orderid.json is not available")

// Search lists orders with GET codeguard/search.json. It reads the
// LogicBoxes search shape {"recsonpage":…, "recsindb":…, "1": {…}, …} with
// flat dotted keys ("orders.orderid", "entity.currentstatus", …) or nested
// objects.
func (c *Client) Search(ctx context.Context, r SearchRequest) (SearchResult, error) {
	v := url.Values{"no-of-records": {strconv.Itoa(cmp0(r.Records, 10))}, "page-no": {strconv.Itoa(cmp0(r.Page, 1))}}
	for _, id := range r.OrderIDs {
		v.Add("order-id", itoa(id))
	}
	for _, id := range r.CustomerIDs {
		v.Add("customer-id", itoa(id))
	}
	for _, id := range r.ResellerIDs {
		v.Add("reseller-id", itoa(id))
	}
	for _, s := range r.Statuses {
		v.Add("status", s)
	}
	if r.DomainName != "" {
		v.Set("domain-name", r.DomainName)
	}
	body, err := c.call(ctx, http.MethodGet, PathSearch, v)
	if err != nil {
		return SearchResult{}, err
	}
	m, err := object(PathSearch, body)
	if err != nil {
		return SearchResult{}, err
	}
	res := SearchResult{OnPage: int(num(m, "recsonpage")), InDB: int(num(m, "recsindb"))}
	var keys []int
	for k := range m {
		if n, err := strconv.Atoi(k); err == nil {
			keys = append(keys, n)
		}
	}
	sort.Ints(keys)
	for _, k := range keys {
		var e map[string]json.RawMessage
		if json.Unmarshal(m[strconv.Itoa(k)], &e) != nil {
			continue
		}
		o := SearchOrder{
			OrderID: dottedNum(e, "orders.orderid", "entity.entityid"), CustomerID: dottedNum(e, "entity.customerid"),
			Domain: dottedStr(e, "entity.description"), Status: dottedStr(e, "entity.currentstatus"),
			CreationTime: dottedNum(e, "orders.creationtime"), EndTime: dottedNum(e, "orders.endtime"),
			ProductKey: dottedStr(e, "entitytype.entitytypekey"),
		}
		if o.OrderID > 0 {
			res.Orders = append(res.Orders, o)
		}
	}
	return res, nil
}

// CustomerPrice reads CodeGuard prices with GET
// products/customer-price.json, by plan id. customerID 0 asks for the
// generic customer pricing. Prices may arrive as numbers or strings.
func (c *Client) CustomerPrice(ctx context.Context, customerID int64) (map[int64]PlanPrice, error) {
	v := url.Values{}
	if customerID > 0 {
		v.Set("customer-id", itoa(customerID))
	}
	body, err := c.call(ctx, http.MethodGet, PathCustomerPrice, v)
	if err != nil {
		return nil, err
	}
	m, err := object(PathCustomerPrice, body)
	if err != nil {
		return nil, err
	}
	var cg struct {
		Plans map[string]map[string]map[string]json.RawMessage `json:"plans"`
	}
	out := map[int64]PlanPrice{}
	raw, ok := m["codeguard"]
	if !ok {
		return out, nil
	}
	if err := json.Unmarshal(raw, &cg); err != nil {
		return nil, events.WithReply(events.Permanentf("%s: codeguard prices are not in the documented shape", PathCustomerPrice), c.redact(string(raw)))
	}
	for planID, actions := range cg.Plans {
		id, ok := parseInt([]byte(planID))
		if !ok {
			continue
		}
		pp := PlanPrice{Add: map[int]float64{}, Renew: map[int]float64{}}
		for action, tenures := range actions {
			dst := pp.Add
			if strings.EqualFold(action, "renew") {
				dst = pp.Renew
			} else if !strings.EqualFold(action, "add") {
				continue
			}
			for months, price := range tenures {
				n, err := strconv.Atoi(months)
				f, ok := parseFloat(price)
				if err == nil && ok {
					dst[n] = f
				}
			}
		}
		out[id] = pp
	}
	return out, nil
}

// PlanDetails reads the CodeGuard plans with GET
// products/plan-details.json. found is false when the reply has no
// codeguard section (the reseller is not signed up for CodeGuard).
func (c *Client) PlanDetails(ctx context.Context) (plans map[int64]Plan, found bool, err error) {
	body, err := c.call(ctx, http.MethodGet, PathPlanDetails, nil)
	if err != nil {
		return nil, false, err
	}
	m, err := object(PathPlanDetails, body)
	if err != nil {
		return nil, false, err
	}
	raw, ok := m["codeguard"]
	if !ok {
		return map[int64]Plan{}, false, nil
	}
	var byID map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &byID); err != nil {
		return nil, false, events.WithReply(events.Permanentf("%s: codeguard plans are not in the documented shape", PathPlanDetails), c.redact(string(raw)))
	}
	plans = map[int64]Plan{}
	for k, p := range byID {
		id, ok := parseInt([]byte(k))
		if !ok {
			continue
		}
		status := str(p, "plan_status")
		if status == "" {
			status = str(p, "status")
		}
		plans[id] = Plan{ID: id, Name: str(p, "plan_name"), Status: status}
	}
	return plans, true, nil
}

// notFoundPhrases are how LogicBoxes error messages say "there is none".
// The exact wording for CodeGuard is not documented; these cover the
// phrasing other LogicBoxes products use ("Website doesn't exist for …",
// "… not found", "No Entity found …").
var notFoundPhrases = []string{"doesn't exist", "does not exist", "doesnt exist", "not exist", "not found",
	"no entity", "no order", "no such", "no customer", "no record"}

// isNotFound reports whether err is a LogicBoxes error object whose message
// says the thing looked up does not exist (on any HTTP status).
func isNotFound(err error) bool {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Message == "" {
		return false
	}
	msg := strings.ToLower(ae.Message)
	for _, p := range notFoundPhrases {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func isAPIError(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Message != ""
}

func dotted(e map[string]json.RawMessage, key string) (map[string]json.RawMessage, string) {
	if _, ok := e[key]; ok {
		return e, key
	}
	group, field, ok := strings.Cut(key, ".")
	if !ok {
		return e, key
	}
	var inner map[string]json.RawMessage
	if json.Unmarshal(e[group], &inner) == nil {
		return inner, field
	}
	return e, key
}

func dottedNum(e map[string]json.RawMessage, keys ...string) int64 {
	for _, k := range keys {
		m, f := dotted(e, k)
		if n := num(m, f); n != 0 {
			return n
		}
	}
	return 0
}

func dottedStr(e map[string]json.RawMessage, key string) string {
	m, f := dotted(e, key)
	return str(m, f)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func cmp0(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}
