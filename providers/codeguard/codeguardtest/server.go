// Package codeguardtest is a fake LogicBoxes HTTP API for CodeGuard orders,
// for tests and for running hookworker without a reseller account.
//
// It keeps customers and orders in memory and answers the endpoints the
// codeguard provider uses with the documented reply shapes: action maps
// (entityid, eaqid, actionstatus, … with ids as JSON strings), details with
// currentstatus and endtime as strings, bare numbers from orderid.json and
// customers/signup.json, and errors as {"status":"ERROR","message":…} with
// HTTP 400 (403 for bad credentials, 405 for the wrong method). Reads must
// be GET and writes POST; parameters may come in the query or a form body.
//
// Where LogicBoxes' behaviour is not documented the fake takes the reading
// that is hardest on a client: add.json accepts a second order for a domain
// that already has one (so a double add shows up in Created), and a
// suspend of a suspended order, an unsuspend of an active one, or a delete
// of a deleted one is an error.
//
// NewServer needs no *testing.T: a program can run it and point
// HOOKWORKER_CODEGUARD_URL at Server.URL (with AUTH_USERID and API_KEY set
// to Server.AuthUserID and Server.APIKey).
package codeguardtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Plans are the CodeGuard plan ids the fake sells (the ids of the LogicBoxes
// pricing example) and their names.
var Plans = map[int64]string{229: "CodeGuard Basic", 230: "CodeGuard Professional", 231: "CodeGuard Business", 232: "CodeGuard Enterprise"}

// Order statuses.
const (
	Active    = "Active"
	InActive  = "InActive"
	Suspended = "Suspended"
	Deleted   = "Deleted"
)

// Customer is a customer the fake holds. The password is not exposed;
// use Server.CustomerPassword.
type Customer struct {
	ID       int64
	Username string
	Name     string
	Company  string
	Address  string
	City     string
	State    string
	Country  string
	Zipcode  string
	PhoneCC  string
	Phone    string
	LangPref string
	password string
}

// Order is a CodeGuard order the fake holds. Times are UNIX seconds.
type Order struct {
	ID            int64
	CustomerID    int64
	PlanID        int64
	Domain        string
	Status        string
	Created       int64
	End           int64
	AutoRenew     bool
	Renewals      int
	Modifications int
	SuspendReason string
	InvoiceOption string
}

// Request is one request the fake received, without the api-key (and with
// passwd redacted).
type Request struct {
	Method string
	Path   string // relative to the API base, e.g. "codeguard/add.json"
	Params url.Values
	Status int // HTTP status answered (0 when the connection was dropped)
}

// Server is the fake API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API base: set HOOKWORKER_CODEGUARD_URL (Config.URL) to it.
	URL string
	// AuthUserID and APIKey are the credentials the fake accepts.
	AuthUserID string
	APIKey     string

	hs *httptest.Server

	mu           sync.Mutex
	now          func() time.Time
	customers    map[int64]*Customer
	orders       map[int64]*Order
	nextCustomer int64
	nextOrder    int64
	nextAction   int64
	created      int
	renewals     int
	failNext     []int
	failOn       map[string][]int
	dropNext     bool
	dropPath     string
	delay        map[string]time.Duration // by path; "" for every path
	noOrderID    bool
	requests     []Request
}

// NewServer starts a fake on a loopback port. Call Close when done.
func NewServer() *Server {
	s := newServer()
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL + "/api"
	return s
}

// NewHandler returns a fake that is not listening, for mounting at "/api/"
// on a server of the caller's; set its URL field yourself.
func NewHandler() *Server { return newServer() }

func newServer() *Server {
	return &Server{
		AuthUserID: "123456", APIKey: "test-api-key-0123456789",
		now: time.Now, customers: map[int64]*Customer{}, orders: map[int64]*Order{},
		nextCustomer: 20000001, nextOrder: 80000001, nextAction: 500000001,
	}
}

// Close stops the server.
func (s *Server) Close() {
	if s.hs != nil {
		s.hs.Close()
	}
}

// SetNow sets the clock the fake uses for creation and expiry times.
func (s *Server) SetNow(now func() time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// FailNext answers the next n requests, whatever they are, with HTTP
// status and the documented error body, without touching any state.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, status)
	}
}

// FailNextOn answers the next n requests to path (e.g.
// "codeguard/renew.json") with HTTP status and the documented error body,
// before they take effect; other requests are answered normally.
func (s *Server) FailNextOn(path string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failOn == nil {
		s.failOn = map[string][]int{}
	}
	for range n {
		s.failOn[path] = append(s.failOn[path], status)
	}
}

// DropAfterEffect makes the next state-changing (POST) request take effect
// and then closes the connection without a reply.
func (s *Server) DropAfterEffect() { s.DropAfterEffectOn("") }

// DropAfterEffectOn is DropAfterEffect for the next POST to path (e.g.
// "codeguard/add.json"); other requests are answered normally.
func (s *Server) DropAfterEffectOn(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropNext, s.dropPath = true, path
}

// Delay holds every reply for d after the request took effect (0 turns it
// off). With d longer than the client's timeout, a call times out although
// it went through.
func (s *Server) Delay(d time.Duration) { s.DelayOn("", d) }

// DelayOn is Delay for requests to path only (e.g. "codeguard/renew.json").
func (s *Server) DelayOn(path string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.delay == nil {
		s.delay = map[string]time.Duration{}
	}
	s.delay[path] = d
}

// DisableOrderID makes codeguard/orderid.json answer 404 with a non-JSON
// body, as if the endpoint did not exist for CodeGuard (the reading the
// reference leaves open).
func (s *Server) DisableOrderID() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noOrderID = true
}

// AddCustomer adds a customer directly (no request) and returns its id.
func (s *Server) AddCustomer(username, name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextCustomer
	s.nextCustomer++
	s.customers[id] = &Customer{ID: id, Username: strings.ToLower(username), Name: name, Country: "GB", LangPref: "en"}
	return id
}

// AddOrder adds an order directly (no request, not counted by Created) and
// returns its id.
func (s *Server) AddOrder(domain string, customerID, planID int64, status string, end time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.nextOrder
	s.nextOrder++
	s.orders[id] = &Order{ID: id, CustomerID: customerID, PlanID: planID, Domain: strings.ToLower(domain),
		Status: status, Created: s.now().Unix(), End: end.Unix(), InvoiceOption: "NoInvoice"}
	return id
}

// Orders returns a copy of every order, by id.
func (s *Server) Orders() []Order {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Order, 0, len(s.orders))
	for _, o := range s.orders {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Order returns the order with id.
func (s *Server) Order(id int64) (Order, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orders[id]
	if !ok {
		return Order{}, false
	}
	return *o, true
}

// OrderByRef is Order for an id in decimal (an Outcome.Reference).
func (s *Server) OrderByRef(ref string) (Order, bool) {
	id, err := strconv.ParseInt(ref, 10, 64)
	if err != nil {
		return Order{}, false
	}
	return s.Order(id)
}

// Customers returns a copy of every customer, by id.
func (s *Server) Customers() []Customer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Customer, 0, len(s.customers))
	for _, c := range s.customers {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// CustomerPassword returns the password a customer signed up with.
func (s *Server) CustomerPassword(id int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.customers[id]; ok {
		return c.password
	}
	return ""
}

// Created counts orders placed through add.json.
func (s *Server) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Renewals counts renewals applied through renew.json.
func (s *Server) Renewals() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.renewals
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Params = cloneValues(r.Params)
		out[i] = r
	}
	return out
}

// Count returns how many requests went to path.
func (s *Server) Count(path string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Path == path {
			n++
		}
	}
	return n
}

type reply struct {
	status int
	body   any // marshalled as JSON; a json.RawMessage or []byte is sent as is
}

func errReply(status int, format string, args ...any) reply {
	return reply{status, map[string]string{"status": "ERROR", "message": fmt.Sprintf(format, args...)}}
}

type route struct {
	method string
	fn     func(s *Server, p url.Values) reply
}

var routes = map[string]route{
	"customers/details.json":       {http.MethodGet, (*Server).customerDetails},
	"customers/signup.json":        {http.MethodPost, (*Server).customerSignup},
	"codeguard/add.json":           {http.MethodPost, (*Server).add},
	"codeguard/renew.json":         {http.MethodPost, (*Server).renew},
	"codeguard/modify.json":        {http.MethodPost, (*Server).modify},
	"codeguard/delete.json":        {http.MethodPost, (*Server).delete},
	"codeguard/details.json":       {http.MethodGet, (*Server).details},
	"codeguard/orderid.json":       {http.MethodGet, (*Server).orderID},
	"codeguard/search.json":        {http.MethodGet, (*Server).search},
	"orders/suspend.json":          {http.MethodPost, (*Server).suspend},
	"orders/unsuspend.json":        {http.MethodPost, (*Server).unsuspend},
	"products/customer-price.json": {http.MethodGet, (*Server).customerPrice},
	"products/plan-details.json":   {http.MethodGet, (*Server).planDetails},
}

// ServeHTTP answers one API request; paths are taken relative to "/api/".
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/api"), "/")
	_ = r.ParseForm()
	logged := cloneValues(r.Form)
	logged.Del("api-key")
	if logged.Has("passwd") {
		logged.Set("passwd", "[REDACTED]")
	}

	s.mu.Lock()
	var rep reply
	drop := false
	rt, known := routes[path]
	switch {
	case len(s.failNext) > 0:
		status := s.failNext[0]
		s.failNext = s.failNext[1:]
		rep = errReply(status, "codeguardtest: injected failure (HTTP %d)", status)
	case len(s.failOn[path]) > 0:
		status := s.failOn[path][0]
		s.failOn[path] = s.failOn[path][1:]
		rep = errReply(status, "codeguardtest: injected failure (HTTP %d)", status)
	case !known || (path == "codeguard/orderid.json" && s.noOrderID):
		rep = reply{http.StatusNotFound, []byte("404 Not Found\n")}
	case r.Method != rt.method:
		rep = errReply(http.StatusMethodNotAllowed, "This API requires the %s method", rt.method)
	case r.Form.Get("auth-userid") != s.AuthUserID || r.Form.Get("api-key") != s.APIKey:
		rep = errReply(http.StatusForbidden, "Authentication failed: invalid auth-userid or api-key, or your IP is not whitelisted")
	default:
		rep = rt.fn(s, r.Form)
		if s.dropNext && r.Method == http.MethodPost && (s.dropPath == "" || s.dropPath == path) {
			s.dropNext, s.dropPath, drop = false, "", true
		}
	}
	entry := Request{Method: r.Method, Path: path, Params: logged, Status: rep.status}
	if drop {
		entry.Status = 0
	}
	s.requests = append(s.requests, entry)
	delay := max(s.delay[""], s.delay[path])
	s.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without a reply
	}
	var body []byte
	switch b := rep.body.(type) {
	case []byte:
		body = b
		w.Header().Set("Content-Type", "text/plain")
	default:
		body, _ = json.Marshal(b)
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// --- handlers (called with s.mu held) ---

func (s *Server) customerDetails(p url.Values) reply {
	var c *Customer
	if u := strings.ToLower(p.Get("username")); u != "" {
		for _, cu := range s.customers {
			if cu.Username == u {
				c = cu
			}
		}
	} else if id, err := strconv.ParseInt(p.Get("customer-id"), 10, 64); err == nil {
		c = s.customers[id]
	} else {
		return errReply(http.StatusBadRequest, "username or customer-id is required")
	}
	if c == nil {
		return errReply(http.StatusBadRequest, "Customer %s not found", p.Get("username"))
	}
	return reply{http.StatusOK, map[string]string{
		"customerid": itoa(c.ID), "username": c.Username, "resellerid": s.AuthUserID, "parentkey": s.AuthUserID,
		"name": c.Name, "company": c.Company, "useremail": c.Username, "address1": c.Address, "city": c.City,
		"state": c.State, "country": c.Country, "zip": c.Zipcode, "telnocc": c.PhoneCC, "telno": c.Phone,
		"customerstatus": "Active", "langpref": c.LangPref, "totalreceipts": "0.00", "creationdt": itoa(s.now().Unix()),
	}}
}

func (s *Server) customerSignup(p url.Values) reply {
	for _, k := range []string{"username", "passwd", "name", "company", "address-line-1", "city", "state", "country", "zipcode", "phone-cc", "phone", "lang-pref"} {
		if strings.TrimSpace(p.Get(k)) == "" {
			return errReply(http.StatusBadRequest, "%s is required", k)
		}
	}
	u := strings.ToLower(p.Get("username"))
	if !strings.Contains(u, "@") {
		return errReply(http.StatusBadRequest, "username must be an email address")
	}
	for _, c := range s.customers {
		if c.Username == u {
			return errReply(http.StatusBadRequest, "%s is already a registered customer", u)
		}
	}
	if !validPassword(p.Get("passwd")) {
		return errReply(http.StatusBadRequest, "Password must be 8 - 15 characters long and contain a lowercase letter, an uppercase letter, a number and a symbol")
	}
	if len(p.Get("country")) != 2 {
		return errReply(http.StatusBadRequest, "Invalid country code %s", p.Get("country"))
	}
	if !allDigits(p.Get("phone-cc")) || !allDigits(p.Get("phone")) {
		return errReply(http.StatusBadRequest, "phone-cc and phone must be digits")
	}
	id := s.nextCustomer
	s.nextCustomer++
	s.customers[id] = &Customer{ID: id, Username: u, Name: p.Get("name"), Company: p.Get("company"),
		Address: p.Get("address-line-1"), City: p.Get("city"), State: p.Get("state"), Country: p.Get("country"),
		Zipcode: p.Get("zipcode"), PhoneCC: p.Get("phone-cc"), Phone: p.Get("phone"), LangPref: p.Get("lang-pref"),
		password: p.Get("passwd")}
	return reply{http.StatusOK, id} // a bare number
}

func validPassword(pw string) bool {
	if len(pw) < 8 || len(pw) > 15 {
		return false
	}
	var l, u, d, o bool
	for _, r := range pw {
		switch {
		case r >= 'a' && r <= 'z':
			l = true
		case r >= 'A' && r <= 'Z':
			u = true
		case r >= '0' && r <= '9':
			d = true
		default:
			o = true
		}
	}
	return l && u && d && o
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func (s *Server) add(p url.Values) reply {
	domain := strings.ToLower(strings.TrimSpace(p.Get("domain-name")))
	if domain == "" || !strings.Contains(domain, ".") {
		return errReply(http.StatusBadRequest, "Invalid domain-name %q", p.Get("domain-name"))
	}
	cid, err := strconv.ParseInt(p.Get("customer-id"), 10, 64)
	if err != nil || s.customers[cid] == nil {
		return errReply(http.StatusBadRequest, "Invalid customer-id %s", p.Get("customer-id"))
	}
	plan, rep, ok := s.plan(p.Get("plan-id"))
	if !ok {
		return rep
	}
	months, rep, ok := monthsParam(p)
	if !ok {
		return rep
	}
	inv, rep, ok := invoiceParam(p)
	if !ok {
		return rep
	}
	auto := false
	if v := p.Get("auto-renew"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errReply(http.StatusBadRequest, "auto-renew must be true or false")
		}
		auto = b
	}
	now := s.now()
	id := s.nextOrder
	s.nextOrder++
	o := &Order{ID: id, CustomerID: cid, PlanID: plan, Domain: domain, Status: Active, Created: now.Unix(),
		End: now.AddDate(0, months, 0).Unix(), AutoRenew: auto, InvoiceOption: inv}
	s.orders[id] = o
	s.created++
	return s.action(o, "Add", "Addition of CodeGuard for "+domain, inv)
}

func (s *Server) renew(p url.Values) reply {
	o, rep, ok := s.liveOrder(p)
	if !ok {
		return rep
	}
	months, rep, ok := monthsParam(p)
	if !ok {
		return rep
	}
	auto, err := strconv.ParseBool(p.Get("auto-renew"))
	if err != nil {
		return errReply(http.StatusBadRequest, "auto-renew is required (true or false)")
	}
	inv, rep, ok := invoiceParam(p)
	if !ok {
		return rep
	}
	o.End = time.Unix(o.End, 0).AddDate(0, months, 0).Unix()
	o.AutoRenew = auto
	o.Renewals++
	s.renewals++
	return s.action(o, "Renew", fmt.Sprintf("Renewal of CodeGuard for %s for %d months", o.Domain, months), inv)
}

func (s *Server) modify(p url.Values) reply {
	o, rep, ok := s.liveOrder(p)
	if !ok {
		return rep
	}
	plan, rep, ok := s.plan(p.Get("new-plan-id"))
	if !ok {
		return rep
	}
	if _, rep, ok := monthsParam(p); !ok {
		return rep
	}
	inv, rep, ok := invoiceParam(p)
	if !ok {
		return rep
	}
	o.PlanID = plan
	o.Modifications++
	return s.action(o, "Modify", "Upgrade/Downgrade of CodeGuard for "+o.Domain, inv)
}

func (s *Server) delete(p url.Values) reply {
	o, rep, ok := s.liveOrder(p)
	if !ok {
		return rep
	}
	o.Status = Deleted
	return s.action(o, "Delete", "Deletion of CodeGuard for "+o.Domain, "NoInvoice")
}

func (s *Server) suspend(p url.Values) reply {
	o, rep, ok := s.liveOrder(p)
	if !ok {
		return rep
	}
	if strings.TrimSpace(p.Get("reason")) == "" {
		return errReply(http.StatusBadRequest, "reason is required")
	}
	if o.Status == Suspended {
		return errReply(http.StatusBadRequest, "Order %d is already suspended", o.ID)
	}
	o.Status, o.SuspendReason = Suspended, p.Get("reason")
	rep = s.action(o, "Suspend", "Suspension of CodeGuard for "+o.Domain, "NoInvoice")
	rep.body.(map[string]string)["status"] = "Success"
	return rep
}

func (s *Server) unsuspend(p url.Values) reply {
	o, rep, ok := s.liveOrder(p)
	if !ok {
		return rep
	}
	if o.Status != Suspended {
		return errReply(http.StatusBadRequest, "Order %d is not suspended", o.ID)
	}
	o.Status, o.SuspendReason = Active, ""
	rep = s.action(o, "UnSuspend", "Unsuspension of CodeGuard for "+o.Domain, "NoInvoice")
	rep.body.(map[string]string)["status"] = "Success"
	return rep
}

func (s *Server) details(p url.Values) reply {
	o, rep, ok := s.order(p)
	if !ok {
		return rep
	}
	return reply{http.StatusOK, map[string]any{
		"entityid": itoa(o.ID), "description": o.Domain, "domainname": o.Domain, "currentstatus": o.Status,
		"productkey": "codeguard", "productcategory": "codeguard", "planid": itoa(o.PlanID), "paused": "false",
		"creationtime": itoa(o.Created), "endtime": itoa(o.End), "isImmediateReseller": true,
		"parentkey": s.AuthUserID + "_999999998_", "customerid": itoa(o.CustomerID),
		"isOrderSuspendedUponExpiry": "false", "orderSuspendedByParent": "false",
		"allowdeletion": "true", "recurring": strconv.FormatBool(o.AutoRenew),
	}}
}

// orderID answers with the newest live order for the domain, else the
// newest deleted one, as a bare number.
func (s *Server) orderID(p url.Values) reply {
	domain := strings.ToLower(p.Get("domain-name"))
	if domain == "" {
		return errReply(http.StatusBadRequest, "domain-name is required")
	}
	var live, dead int64
	for _, o := range s.orders {
		if o.Domain != domain {
			continue
		}
		if o.Status == Deleted {
			dead = max(dead, o.ID)
		} else {
			live = max(live, o.ID)
		}
	}
	switch {
	case live > 0:
		return reply{http.StatusOK, live}
	case dead > 0:
		return reply{http.StatusOK, dead}
	}
	return errReply(http.StatusBadRequest, "Website doesn't exist for %s", domain)
}

func (s *Server) search(p url.Values) reply {
	records, err1 := strconv.Atoi(p.Get("no-of-records"))
	page, err2 := strconv.Atoi(p.Get("page-no"))
	if err1 != nil || err2 != nil || records <= 0 || page <= 0 {
		return errReply(http.StatusBadRequest, "no-of-records and page-no are required")
	}
	var match []*Order
	for _, o := range s.orders {
		switch {
		case p.Has("order-id") && !slices.Contains(p["order-id"], itoa(o.ID)),
			p.Has("customer-id") && !slices.Contains(p["customer-id"], itoa(o.CustomerID)),
			p.Has("status") && !slices.Contains(p["status"], o.Status),
			p.Get("domain-name") != "" && !strings.EqualFold(p.Get("domain-name"), o.Domain):
			continue
		}
		match = append(match, o)
	}
	sort.Slice(match, func(i, j int) bool { return match[i].ID < match[j].ID })
	out := map[string]any{"recsindb": strconv.Itoa(len(match))}
	from := (page - 1) * records
	n := 0
	for i := from; i < len(match) && i < from+records; i++ {
		o := match[i]
		n++
		out[strconv.Itoa(n)] = map[string]string{
			"orders.orderid": itoa(o.ID), "entity.entityid": itoa(o.ID), "entity.customerid": itoa(o.CustomerID),
			"entity.description": o.Domain, "orders.creationtime": itoa(o.Created), "orders.endtime": itoa(o.End),
			"entity.currentstatus": o.Status, "entitytype.entitytypename": "CodeGuard", "entitytype.entitytypekey": "codeguard",
		}
	}
	out["recsonpage"] = strconv.Itoa(n)
	return reply{http.StatusOK, out}
}

func (s *Server) customerPrice(p url.Values) reply {
	plans := map[string]any{}
	for id := range Plans {
		base := float64(id-228) * 2.5
		plans[itoa(id)] = map[string]any{
			"add":   map[string]any{"6": base * 6, "12": fmt.Sprintf("%.2f", base*12), "24": base * 24},
			"renew": map[string]any{"6": base * 6, "12": fmt.Sprintf("%.2f", base*12), "24": base * 24},
		}
	}
	return reply{http.StatusOK, map[string]any{
		"codeguard": map[string]any{"plans": plans},
		"domcno":    map[string]any{"addnewdomain": map[string]any{"1": "9.99"}},
	}}
}

func (s *Server) planDetails(p url.Values) reply {
	cg := map[string]any{}
	for id, name := range Plans {
		cg[itoa(id)] = map[string]string{"plan_name": name, "plan_status": "Active"}
	}
	return reply{http.StatusOK, map[string]any{
		"codeguard": cg,
		"sitelock":  map[string]any{"581": map[string]string{"plan_name": "SiteLock Basic", "plan_status": "Active"}},
	}}
}

// --- helpers (s.mu held) ---

func (s *Server) action(o *Order, typ, desc, inv string) reply {
	id := s.nextAction
	s.nextAction++
	m := map[string]string{
		"description": o.Domain, "entityid": itoa(o.ID), "actiontype": typ, "actiontypedesc": desc,
		"eaqid": itoa(id), "actionstatus": "Success", "actionstatusdesc": "Order Completed Successfully",
	}
	if inv != "NoInvoice" {
		m["invoiceid"] = itoa(id + 7000000)
		m["sellingcurrencysymbol"] = "USD"
		m["sellingamount"] = "-30.000"
		m["unutilisedsellingamount"] = "-30.000"
		m["customerid"] = itoa(o.CustomerID)
	}
	return reply{http.StatusOK, m}
}

func (s *Server) order(p url.Values) (*Order, reply, bool) {
	id, err := strconv.ParseInt(p.Get("order-id"), 10, 64)
	if err != nil {
		return nil, errReply(http.StatusBadRequest, "order-id is required"), false
	}
	o := s.orders[id]
	if o == nil {
		return nil, errReply(http.StatusBadRequest, "No Entity found for Entityid: %d", id), false
	}
	return o, reply{}, true
}

func (s *Server) liveOrder(p url.Values) (*Order, reply, bool) {
	o, rep, ok := s.order(p)
	if ok && o.Status == Deleted {
		return nil, errReply(http.StatusBadRequest, "Order %d is deleted", o.ID), false
	}
	return o, rep, ok
}

func (s *Server) plan(v string) (int64, reply, bool) {
	id, err := strconv.ParseInt(v, 10, 64)
	if _, ok := Plans[id]; err != nil || !ok {
		return 0, errReply(http.StatusBadRequest, "Invalid plan-id %s", v), false
	}
	return id, reply{}, true
}

func monthsParam(p url.Values) (int, reply, bool) {
	m, err := strconv.Atoi(p.Get("months"))
	if err != nil || m <= 0 || m > 120 {
		return 0, errReply(http.StatusBadRequest, "Invalid months %q", p.Get("months")), false
	}
	return m, reply{}, true
}

func invoiceParam(p url.Values) (string, reply, bool) {
	v := p.Get("invoice-option")
	switch v {
	case "NoInvoice", "PayInvoice", "KeepInvoice", "OnlyAdd":
		return v, reply{}, true
	}
	return "", errReply(http.StatusBadRequest, "Invalid invoice-option %q", v), false
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
