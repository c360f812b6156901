// Package whmcstest is a fake WHMCS External API (includes/api.php) for
// tests and for running hookworker without a WHMCS: it checks what the real
// API checks (POST, identifier/secret, optional access key,
// responsetype=json, the action and its required fields), keeps services,
// client notes, the activity log and client custom fields in memory, and
// can inject faults.
//
// It implements the actions hookworker uses: UpdateClientProduct,
// AddClientNote, LogActivity, UpdateClient (customfields only),
// GetClientsProducts and GetActivityLog. Module* actions are answered with
// an error and recorded, so that a test can assert they were never called.
//
// By default services are canned: a service id the fake has not seen is
// created on first use as a Pending service with a generated password, as
// if WHMCS had taken the order. SetStrict(true) makes unknown services an
// error ("Service ID Not Found"), as in WHMCS.
package whmcstest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

// Product is a WHMCS service (tblhosting row) held by the fake.
type Product struct {
	ServiceID    int
	ClientID     int
	ProductID    int
	Status       string // Pending, Active, Suspended, Terminated, Cancelled, Fraud, Completed
	Username     string
	Password     string
	Domain       string
	Notes        string         // the service's admin notes
	CustomFields map[int]string // service custom fields by field id
}

// Note is a client note added with AddClientNote.
type Note struct {
	ID       int
	ClientID int
	Text     string
	Sticky   bool
}

// Activity is an activity log line added with LogActivity.
type Activity struct {
	ID          int
	ClientID    int
	Description string
	At          time.Time
}

// Call is one API request the fake received, without the credentials
// (identifier, secret, accesskey are removed from Params).
type Call struct {
	Action string
	Params url.Values
	// Status is the HTTP status the fake answered with (0: the reply was
	// dropped on purpose).
	Status int
}

// Server is a running fake WHMCS API. Its methods are safe for concurrent
// use. It also implements http.Handler, for mounting on another server.
type Server struct {
	// URL is the API endpoint, http://127.0.0.1:<port>/includes/api.php.
	URL string
	// Identifier and Secret are the API credentials the fake accepts
	// (random per server).
	Identifier string
	Secret     string

	srv *httptest.Server

	mu        sync.Mutex
	accessKey string
	strict    bool
	products  map[int]*Product
	notes     []Note
	activity  []Activity
	fields    map[int]map[int]string
	calls     []Call
	failN     int
	failCode  int
	failTo    string
	loseN     int
	loseTo    string
	delay     time.Duration
	nextID    int
	v7        bool // LogActivity as WHMCS 7.x: userid only
}

// NewServer starts a fake WHMCS API on a random local port. Close it when
// done.
func NewServer() *Server {
	s := newState()
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL + "/includes/api.php"
	return s
}

// NewHandler returns a fake that is not listening, for mounting its
// ServeHTTP on a server of the caller's (its URL is empty).
func NewHandler() *Server { return newState() }

func newState() *Server {
	return &Server{
		Identifier: "fake-identifier-" + randHex(8),
		Secret:     "fake-secret-" + randHex(16),
		products:   map[int]*Product{},
		fields:     map[int]map[int]string{},
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Close stops the server.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// SetAccessKey makes the fake require accesskey=key ("" = not required).
func (s *Server) SetAccessKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accessKey = key
}

// SetWHMCS7 makes LogActivity read its client id as WHMCS 7.x does
// (includes/api/logactivity.php in 7.8: `$userid` only), instead of as 8.x
// does (8.7: `clientid`, falling back to `userid`).
func (s *Server) SetWHMCS7(v7 bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v7 = v7
}

// SetStrict turns canned services off (true): unknown service ids are then
// "Service ID Not Found", as in WHMCS.
func (s *Server) SetStrict(strict bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.strict = strict
}

// AddProduct adds or replaces a service.
func (s *Server) AddProduct(p Product) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := p
	cp.CustomFields = cloneFields(p.CustomFields)
	if cp.Status == "" {
		cp.Status = "Pending"
	}
	s.products[p.ServiceID] = &cp
}

// FailNext makes the next n requests fail before they are processed, with
// HTTP status (200: a result "error" reply; 403: "Authentication Failed";
// 0: the connection is closed without a reply).
func (s *Server) FailNext(n, status int) { s.FailNextTo("", n, status) }

// FailNextTo is FailNext for the next n requests of action only ("" = any
// action).
func (s *Server) FailNextTo(action string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failN, s.failCode, s.failTo = n, status, action
}

// LoseNextReply makes the next n requests be processed and then the
// connection closed without a reply: the caller cannot know the outcome.
func (s *Server) LoseNextReply(n int) { s.LoseNextReplyTo("", n) }

// LoseNextReplyTo is LoseNextReply for the next n requests of action only
// ("" = any action).
func (s *Server) LoseNextReplyTo(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loseN, s.loseTo = n, action
}

// Delay makes every request wait d before it is processed (0: no delay). A
// request whose client gives up during the delay is not processed.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Notes returns the notes of client clientID, oldest first.
func (s *Server) Notes(clientID int) []Note {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Note
	for _, n := range s.notes {
		if n.ClientID == clientID {
			out = append(out, n)
		}
	}
	return out
}

// Activity returns the activity log, oldest first.
func (s *Server) Activity() []Activity {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.activity)
}

// Product returns service serviceID.
func (s *Server) Product(serviceID int) (Product, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.products[serviceID]
	if !ok {
		return Product{}, false
	}
	cp := *p
	cp.CustomFields = cloneFields(p.CustomFields)
	return cp, true
}

// CustomFields returns the client custom field values of client clientID
// by field id, as set with UpdateClient.
func (s *Server) CustomFields(clientID int) map[int]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneFields(s.fields[clientID])
}

// Calls returns every request received, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Call, len(s.calls))
	for i, c := range s.calls {
		out[i] = Call{Action: c.Action, Params: cloneValues(c.Params), Status: c.Status}
	}
	return out
}

// CallsTo returns the requests for action, oldest first.
func (s *Server) CallsTo(action string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Action == action {
			out = append(out, c)
		}
	}
	return out
}

func cloneFields(m map[int]string) map[int]string {
	if m == nil {
		return nil
	}
	out := make(map[int]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// reply is what a handler answers: an HTTP status and a JSON object.
type reply struct {
	status int
	body   map[string]any
}

func ok(body map[string]any) reply {
	if body == nil {
		body = map[string]any{}
	}
	body["result"] = "success"
	return reply{http.StatusOK, body}
}

func apiErr(status int, msg string) reply {
	return reply{status, map[string]any{"result": "error", "message": msg}}
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.record(Call{Action: r.URL.Query().Get("action"), Status: http.StatusMethodNotAllowed})
		writeJSON(w, apiErr(http.StatusMethodNotAllowed, "fake WHMCS: the API takes POST requests"))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.record(Call{Status: http.StatusBadRequest})
		writeJSON(w, apiErr(http.StatusBadRequest, "fake WHMCS: unreadable form"))
		return
	}
	form := r.PostForm
	params := cloneValues(form)
	for _, k := range []string{"identifier", "secret", "accesskey", "username", "password"} {
		params.Del(k)
	}
	call := Call{Action: form.Get("action"), Params: params}

	s.mu.Lock()
	delay := s.delay
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			call.Status = 0
			s.record(call)
			return
		}
	}

	s.mu.Lock()
	if s.failN > 0 && (s.failTo == "" || s.failTo == call.Action) {
		s.failN--
		code := s.failCode
		call.Status = code
		s.calls = append(s.calls, call)
		s.mu.Unlock()
		switch code {
		case 0:
			hangUp(w)
		case http.StatusForbidden:
			writeJSON(w, apiErr(code, "Authentication Failed"))
		default:
			writeJSON(w, apiErr(code, fmt.Sprintf("fake WHMCS: injected failure (HTTP %d)", code)))
		}
		return
	}
	rep := s.dispatch(form)
	lose := s.loseN > 0 && (s.loseTo == "" || s.loseTo == call.Action)
	if lose {
		s.loseN--
		call.Status = 0
	} else {
		call.Status = rep.status
	}
	s.calls = append(s.calls, call)
	s.mu.Unlock()
	if lose {
		hangUp(w)
		return
	}
	writeJSON(w, rep)
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

// hangUp closes the connection without a reply.
func hangUp(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func writeJSON(w http.ResponseWriter, rep reply) {
	b, _ := json.Marshal(rep.body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
}

// dispatch checks the credentials and runs the action; s.mu is held.
func (s *Server) dispatch(f url.Values) reply {
	if f.Get("identifier") != s.Identifier || f.Get("secret") != s.Secret {
		return apiErr(http.StatusForbidden, "Authentication Failed")
	}
	if s.accessKey != "" && f.Get("accesskey") != s.accessKey {
		return apiErr(http.StatusForbidden, "Invalid IP 127.0.0.1")
	}
	if f.Get("responsetype") != "json" {
		return apiErr(http.StatusBadRequest, "fake WHMCS: responsetype=json is required")
	}
	action := f.Get("action")
	switch {
	case action == "":
		return apiErr(http.StatusOK, "Command Not Found")
	case strings.HasPrefix(strings.ToLower(action), "module"):
		return apiErr(http.StatusOK, "fake WHMCS: "+action+" must never be called by hookworker (it re-fires the module hooks)")
	}
	switch action {
	case "UpdateClientProduct":
		return s.updateClientProduct(f)
	case "AddClientNote":
		return s.addClientNote(f)
	case "LogActivity":
		return s.logActivity(f)
	case "UpdateClient":
		return s.updateClient(f)
	case "GetClientsProducts":
		return s.getClientsProducts(f)
	case "GetActivityLog":
		return s.getActivityLog(f)
	}
	return apiErr(http.StatusOK, "Command Not Found")
}

func (s *Server) id() int {
	s.nextID++
	return s.nextID
}

func atoi(v string) int {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0
	}
	return n
}

// phpTrue is PHP's truthiness of a form value.
func phpTrue(v string) bool { return v != "" && v != "0" }

// service returns service id, creating a canned one unless strict.
func (s *Server) service(id, clientID int) *Product {
	if p, ok := s.products[id]; ok {
		return p
	}
	if s.strict || id <= 0 {
		return nil
	}
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s:%d", s.Secret, id)))
	p := &Product{ServiceID: id, ClientID: clientID, ProductID: 1, Status: "Pending",
		Password: "Pw" + hex.EncodeToString(sum[:6])}
	s.products[id] = p
	return p
}

var statuses = []string{"Pending", "Active", "Completed", "Suspended", "Terminated", "Cancelled", "Fraud"}

func (s *Server) updateClientProduct(f url.Values) reply {
	p := s.service(atoi(f.Get("serviceid")), 0)
	if p == nil {
		return apiErr(http.StatusOK, "Service ID Not Found")
	}
	if st := f.Get("status"); f.Has("status") && !slices.Contains(statuses, st) {
		return apiErr(http.StatusOK, fmt.Sprintf("Invalid status %q", st))
	}
	var cf map[int]string
	if f.Has("customfields") {
		var err error
		if cf, err = DecodeCustomFields(f.Get("customfields")); err != nil {
			return apiErr(http.StatusOK, "Invalid customfields: "+err.Error())
		}
	}
	if f.Has("status") {
		p.Status = f.Get("status")
	}
	if f.Has("serviceusername") {
		p.Username = f.Get("serviceusername")
	}
	if f.Has("servicepassword") {
		p.Password = f.Get("servicepassword")
	}
	if f.Has("domain") {
		p.Domain = f.Get("domain")
	}
	if f.Has("notes") {
		p.Notes = f.Get("notes")
	}
	for k, v := range cf {
		if p.CustomFields == nil {
			p.CustomFields = map[int]string{}
		}
		p.CustomFields[k] = v
	}
	return ok(map[string]any{"serviceid": strconv.Itoa(p.ServiceID)})
}

func (s *Server) addClientNote(f url.Values) reply {
	cid := atoi(f.Get("userid"))
	if cid <= 0 {
		return apiErr(http.StatusOK, "Client ID not found")
	}
	if strings.TrimSpace(f.Get("notes")) == "" {
		return apiErr(http.StatusOK, "Notes can not be empty")
	}
	n := Note{ID: s.id(), ClientID: cid, Text: f.Get("notes"), Sticky: phpTrue(f.Get("sticky"))}
	s.notes = append(s.notes, n)
	return ok(map[string]any{"noteid": strconv.Itoa(n.ID)})
}

func (s *Server) logActivity(f url.Values) reply {
	if strings.TrimSpace(f.Get("description")) == "" {
		return apiErr(http.StatusOK, "Description is required")
	}
	cid := atoi(f.Get("clientid"))
	if cid == 0 || s.v7 {
		cid = atoi(f.Get("userid"))
	}
	s.activity = append(s.activity, Activity{ID: s.id(), ClientID: cid, Description: f.Get("description"), At: time.Now().UTC()})
	return ok(nil)
}

func (s *Server) updateClient(f url.Values) reply {
	cid := atoi(f.Get("clientid"))
	if cid <= 0 {
		return apiErr(http.StatusOK, "Client ID Not Found")
	}
	if f.Has("customfields") {
		cf, err := DecodeCustomFields(f.Get("customfields"))
		if err != nil {
			return apiErr(http.StatusOK, "Invalid customfields: "+err.Error())
		}
		if s.fields[cid] == nil {
			s.fields[cid] = map[int]string{}
		}
		for k, v := range cf {
			s.fields[cid][k] = v
		}
	}
	return ok(map[string]any{"clientid": strconv.Itoa(cid)})
}

func (s *Server) getClientsProducts(f url.Values) reply {
	sid, cid := atoi(f.Get("serviceid")), atoi(f.Get("clientid"))
	var list []*Product
	if sid > 0 {
		if p := s.service(sid, cid); p != nil && (cid == 0 || p.ClientID == cid || p.ClientID == 0) {
			list = append(list, p)
		}
	} else {
		for _, p := range s.products {
			if cid == 0 || p.ClientID == cid {
				list = append(list, p)
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].ServiceID < list[j].ServiceID })
	}
	out := make([]any, 0, len(list))
	for _, p := range list {
		cfs := []any{}
		for k, v := range p.CustomFields {
			cfs = append(cfs, map[string]any{"id": strconv.Itoa(k), "value": v})
		}
		// WHMCS sends ids and most numbers as strings.
		out = append(out, map[string]any{
			"id": strconv.Itoa(p.ServiceID), "clientid": strconv.Itoa(p.ClientID), "pid": strconv.Itoa(p.ProductID),
			"domain": p.Domain, "status": p.Status, "username": p.Username, "password": p.Password,
			"notes": p.Notes, "customfields": map[string]any{"customfield": cfs},
			"configoptions": map[string]any{"configoption": []any{}},
		})
	}
	body := map[string]any{"clientid": f.Get("clientid"), "serviceid": f.Get("serviceid"),
		"totalresults": strconv.Itoa(len(out)), "startnumber": 0, "numreturned": len(out)}
	if len(out) == 0 {
		body["products"] = ""
	} else {
		body["products"] = map[string]any{"product": out}
	}
	return ok(body)
}

func (s *Server) getActivityLog(f url.Values) reply {
	desc, cid := f.Get("description"), atoi(f.Get("clientid"))
	limit := atoi(f.Get("limitnum"))
	if limit <= 0 {
		limit = 25
	}
	var entries []any
	for i := len(s.activity) - 1; i >= 0 && len(entries) < limit; i-- {
		a := s.activity[i]
		if (desc != "" && !strings.Contains(a.Description, desc)) || (cid != 0 && a.ClientID != cid) {
			continue
		}
		entries = append(entries, map[string]any{"id": strconv.Itoa(a.ID), "userid": strconv.Itoa(a.ClientID),
			"date": a.At.Format("2006-01-02 15:04:05"), "description": a.Description, "username": "API", "ipaddress": "127.0.0.1"})
	}
	return ok(map[string]any{"totalresults": strconv.Itoa(len(entries)), "startnumber": 0,
		"activity": map[string]any{"entry": entries}})
}
