// Package storegridtest is a fake StoreGrid backup server speaking exactly
// the wire format package storegrid assumes (defined once in
// storegrid/internal/sgwire): form-encoded POSTs to one endpoint, JSON
// replies. It keeps resellers, and customers under their reseller, checks
// the admin credentials and the parameters it is sent, and can be told to
// fail, to drop a connection after applying a change, or to be slow.
//
// It needs no *testing.T: tests use it, and so can a running program (for
// example a local demo of the worker) — call Close when done.
package storegridtest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookworker/hookworker/providers/storegrid/internal/sgwire"
)

// Account kinds, as Account.Kind reports them.
const (
	KindReseller = string(sgwire.Reseller)
	KindCustomer = string(sgwire.Customer)
)

// Account is one reseller or customer the fake holds.
type Account struct {
	Kind     string // KindReseller or KindCustomer
	Name     string
	Reseller string // a customer's reseller; "" for a reseller
	Active   bool
	// Fields are the parameters of the add request as received, updated by
	// edit requests; never the action or the admin credentials.
	Fields  map[string]string
	PassKey string // customers only
}

func (a *Account) clone() Account {
	c := *a
	c.Fields = make(map[string]string, len(a.Fields))
	for k, v := range a.Fields {
		c.Fields[k] = v
	}
	return c
}

// Request is one request the fake received, without the admin password.
type Request struct {
	Action  string
	Params  url.Values // every parameter except the password
	Status  int        // HTTP status answered; 0 when the connection was dropped
	Dropped bool       // the connection was closed without a reply
}

type fault struct {
	status        int
	code, message string
}

// Server is the fake. Its exported fields are what a provider needs to reach
// it; the zero value is not usable: call NewServer.
type Server struct {
	// URL is the console's base URL (http://127.0.0.1:port).
	URL string
	// Username and Password are the admin credentials the fake accepts.
	Username string
	Password string

	srv *httptest.Server

	mu        sync.Mutex
	resellers map[string]*Account
	customers map[string]map[string]*Account // reseller → name → customer
	created   int
	faults    []fault
	drop      bool
	delay     time.Duration
	requests  []Request
}

// NewServer starts a fake on a local port with admin user "admin" and a
// random password.
func NewServer() *Server {
	s := newServer()
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

func newServer() *Server {
	return &Server{
		Username:  "admin",
		Password:  "pw-" + randomHex(12),
		resellers: map[string]*Account{},
		customers: map[string]map[string]*Account{},
	}
}

// Close shuts the fake down.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// AddReseller creates an active reseller directly, as an administrator
// would in the console (it does not count in Created). It is how a test
// provides the reseller a Signup Customer product names.
func (s *Server) AddReseller(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.resellers[name]; !ok {
		s.resellers[name] = &Account{Kind: KindReseller, Name: name, Active: true,
			Fields: map[string]string{sgwire.ParamReseller: name}}
	}
}

// FailNext answers the next n requests with the HTTP status and an error
// reply in the assumed format (code "INJECTED_FAILURE"), changing nothing.
func (s *Server) FailNext(n, status int) {
	s.FailNextReply(n, status, "INJECTED_FAILURE", "injected failure")
}

// FailNextReply answers the next n requests with the HTTP status and an
// error reply of the given code and message (e.g. status 200, code
// "SERVER_BUSY"), changing nothing.
func (s *Server) FailNextReply(n, status int, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, fault{status: status, code: code, message: message})
	}
}

// DropAfterEffect makes the fake apply the next state-changing request (add,
// edit, activate, deactivate) and then close the connection without
// replying, as if the reply were lost.
func (s *Server) DropAfterEffect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = true
}

// Delay makes every later request wait d before it is handled (0 turns the
// delay off). A request whose client gives up first is not handled.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Created returns how many accounts add requests created.
func (s *Server) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Accounts returns a copy of every account: resellers, then customers,
// each sorted by name.
func (s *Server) Accounts() []Account {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Account
	for _, name := range sortedKeys(s.resellers) {
		out = append(out, s.resellers[name].clone())
	}
	for _, r := range sortedKeys(s.customers) {
		for _, name := range sortedKeys(s.customers[r]) {
			out = append(out, s.customers[r][name].clone())
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Account returns the reseller or customer called name (a reseller first,
// when both exist).
func (s *Server) Account(name string) (Account, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.resellers[name]; ok {
		return a.clone(), true
	}
	for _, r := range sortedKeys(s.customers) {
		if a, ok := s.customers[r][name]; ok {
			return a.clone(), true
		}
	}
	return Account{}, false
}

// Requests returns every request received so far, oldest first, without
// the admin password.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		out[i] = r
		out[i].Params = sgwire.Redact(r.Params)
	}
	return out
}

// ServeHTTP handles one request; the fake is an http.Handler, so a test can
// also serve it itself (over TLS, behind a wrapper, ...).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The body is read first, so that a client giving up during the delay
	// cancels r.Context().
	var form url.Values
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), sgwire.ContentType) {
		if err := r.ParseForm(); err == nil {
			form = r.PostForm
		}
	}

	s.mu.Lock()
	d := s.delay
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	req := Request{Action: form.Get(sgwire.ParamAction), Params: sgwire.Redact(form)}

	s.mu.Lock()
	status, reply, drop := s.handleLocked(r, form)
	req.Status, req.Dropped = status, drop
	if drop {
		req.Status = 0
	}
	s.requests = append(s.requests, req)
	s.mu.Unlock()

	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without a reply
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(reply.Encode())
}

// handleLocked answers one request; drop says to close the connection
// instead of replying.
func (s *Server) handleLocked(r *http.Request, form url.Values) (status int, reply sgwire.Reply, drop bool) {
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		return f.status, sgwire.Errorf(f.code, "%s", f.message), false
	}
	if r.URL.Path != sgwire.Path {
		return http.StatusNotFound, sgwire.Errorf(sgwire.CodeInvalid, "no such page %q", r.URL.Path), false
	}
	if form == nil {
		return http.StatusBadRequest, sgwire.Errorf(sgwire.CodeInvalid, "want a form-encoded POST"), false
	}
	if form.Get(sgwire.ParamUsername) != s.Username || form.Get(sgwire.ParamPassword) != s.Password {
		return http.StatusUnauthorized, sgwire.Errorf(sgwire.CodeAuthFailed, "invalid web console credentials"), false
	}
	action := form.Get(sgwire.ParamAction)
	if action == sgwire.ActionServerInfo {
		return http.StatusOK, ok(map[string]string{sgwire.DataVersion: "storegridtest"}), false
	}
	kind, verb, known := sgwire.Lookup(action)
	if !known {
		return http.StatusOK, sgwire.Errorf(sgwire.CodeInvalid, "unknown action %q", action), false
	}
	if msg := checkParams(form, kind, verb); msg != "" {
		return http.StatusOK, sgwire.Errorf(sgwire.CodeInvalid, "%s", msg), false
	}
	reply = s.applyLocked(form, kind, verb)
	if s.drop && sgwire.StateChanging(action) {
		s.drop = false
		return 0, reply, true
	}
	return http.StatusOK, reply, false
}

func ok(data map[string]string) sgwire.Reply {
	return sgwire.Reply{Status: sgwire.StatusOK, Data: data}
}

// params lists the fields an add or edit request may carry, with a check of
// each value.
var params = map[string]func(string) bool{
	sgwire.ParamActivationStatus:        isBool,
	sgwire.ParamAutoAuthorization:       isBool,
	sgwire.ParamStorageAllotted:         isPositive,
	sgwire.ParamStorageLocation:         func(v string) bool { return v != "" },
	sgwire.ParamConsolidatedReport:      isBool,
	sgwire.ParamConsolidatedReportEmail: func(v string) bool { return strings.Contains(v, "@") },
	sgwire.ParamAutoMCAL:                isBool,
	sgwire.ParamAllotMCAL:               isPositive,
	sgwire.ParamBandwidthThrottling:     oneOf(sgwire.ThrottlingGlobal, sgwire.ThrottlingNew),
	sgwire.ParamThrottleEnabled:         isBool,
	sgwire.ParamThrottleMode:            oneOf(sgwire.ThrottleAlways, sgwire.ThrottleScheduled),
	sgwire.ParamThrottleFrom:            isHHMM,
	sgwire.ParamThrottleTill:            isHHMM,
	sgwire.ParamRestrictedRate:          isPositive,
	sgwire.ParamSendMail:                isBool,
	sgwire.ParamEmail:                   func(v string) bool { return strings.Contains(v, "@") },
	sgwire.ParamFirstName:               func(string) bool { return true },
	sgwire.ParamLastName:                func(string) bool { return true },
	sgwire.ParamCompanyName:             func(string) bool { return true },
}

// signupOnly are the fields an edit request may not carry.
var signupOnly = []string{sgwire.ParamActivationStatus, sgwire.ParamStorageLocation, sgwire.ParamSendMail,
	sgwire.ParamEmail, sgwire.ParamFirstName, sgwire.ParamLastName, sgwire.ParamCompanyName}

func isBool(v string) bool { _, ok := sgwire.ParseBool(v); return ok }

func isPositive(v string) bool { n, err := strconv.ParseInt(v, 10, 64); return err == nil && n > 0 }

func isHHMM(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && len(v) == 4 && n/100 < 24 && n%100 < 60
}

func oneOf(vals ...string) func(string) bool {
	return func(v string) bool { return slices.Contains(vals, v) }
}

// checkParams returns what is wrong with a request's parameters, or "".
func checkParams(form url.Values, kind sgwire.Kind, verb sgwire.Verb) string {
	if form.Get(sgwire.ParamReseller) == "" {
		return sgwire.ParamReseller + " is required"
	}
	if kind == sgwire.Customer && form.Get(sgwire.ParamCustomer) == "" {
		return sgwire.ParamCustomer + " is required"
	}
	for k, vs := range form {
		switch k {
		case sgwire.ParamAction, sgwire.ParamUsername, sgwire.ParamPassword, sgwire.ParamReseller:
			continue
		case sgwire.ParamCustomer:
			if kind == sgwire.Customer {
				continue
			}
		}
		check, known := params[k]
		switch {
		case !known:
			return "unknown parameter " + k
		case verb != sgwire.Add && verb != sgwire.Edit:
			return "parameter " + k + " is not taken by this action"
		case verb == sgwire.Edit && slices.Contains(signupOnly, k):
			return "parameter " + k + " cannot be edited"
		case kind == sgwire.Reseller && (k == sgwire.ParamConsolidatedReport || k == sgwire.ParamConsolidatedReportEmail):
			return "parameter " + k + " applies to customers only"
		case len(vs) != 1 || !check(vs[0]):
			return "bad value of " + k
		}
	}
	if verb == sgwire.Add && form.Get(sgwire.ParamStorageAllotted) == "" {
		return sgwire.ParamStorageAllotted + " is required"
	}
	return ""
}

func (s *Server) applyLocked(form url.Values, kind sgwire.Kind, verb sgwire.Verb) sgwire.Reply {
	reseller, name := form.Get(sgwire.ParamReseller), form.Get(sgwire.ParamCustomer)
	if kind == sgwire.Reseller {
		name = reseller
	}
	var acct *Account
	if kind == sgwire.Reseller {
		acct = s.resellers[name]
	} else {
		acct = s.customers[reseller][name]
	}
	if verb == sgwire.Add {
		if acct != nil {
			return sgwire.Errorf(sgwire.CodeAlreadyExists, "%s %q already exists", kind, name)
		}
		if _, ok := s.resellers[reseller]; kind == sgwire.Customer && !ok {
			return sgwire.Errorf(sgwire.CodeNotFound, "reseller %q not found", reseller)
		}
		active := form.Get(sgwire.ParamActivationStatus) != sgwire.False
		acct = &Account{Kind: string(kind), Name: name, Active: active, Fields: fields(form)}
		if kind == sgwire.Reseller {
			s.resellers[name] = acct
		} else {
			acct.Reseller = reseller
			acct.PassKey = randomHex(16)
			if s.customers[reseller] == nil {
				s.customers[reseller] = map[string]*Account{}
			}
			s.customers[reseller][name] = acct
		}
		s.created++
		return ok(nil)
	}
	if acct == nil {
		return sgwire.Errorf(sgwire.CodeNotFound, "%s %q not found", kind, name)
	}
	switch verb {
	case sgwire.Get:
		data := fields(url.Values{})
		for k, v := range acct.Fields {
			data[k] = v
		}
		data[sgwire.DataActive] = sgwire.Bool(acct.Active)
		return ok(data)
	case sgwire.Edit:
		for k, v := range fields(form) {
			acct.Fields[k] = v
		}
	case sgwire.Activate:
		acct.Active = true
	case sgwire.Deactivate:
		acct.Active = false
	case sgwire.PassKey:
		return ok(map[string]string{sgwire.DataPassKey: acct.PassKey})
	}
	return ok(nil)
}

// fields is a request's parameters without the action and credentials.
func fields(form url.Values) map[string]string {
	m := map[string]string{}
	for k := range form {
		switch k {
		case sgwire.ParamAction, sgwire.ParamUsername, sgwire.ParamPassword:
		default:
			m[k] = form.Get(k)
		}
	}
	return m
}
