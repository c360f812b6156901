// Package comettest is a fake Comet Server admin API for tests and for
// running hookworker without a real Comet Server. It keeps users and
// policies in memory, answers with the reply shapes of the real server
// (UserProfileConfig, GetProfileAndHashResponseMessage, {Status, Message}
// errors), checks the admin credentials on every call, and can be told to
// fail, to be slow, to lose a reply after applying its effect, or to lose a
// race for a profile hash.
//
// Error styles. Comet is known to answer errors in two styles and the fake
// uses both, so that a client must handle both:
//
//	HTTP 403 + {"Status":403,"Message":"Invalid username or password"}  bad admin credentials
//	HTTP 404 + {"Status":404,"Message":"Unknown API ..."}               unknown endpoint
//	HTTP 405                                                             not a POST
//	HTTP 404 + {"Status":404,"Message":"Policy not found"}              policies/get of a missing policy
//	HTTP <n> + {"Status":<n>,"Message":"comettest: injected failure"}   FailNext(…, n)
//	HTTP 200 + {"Status":500,"Message":"User not found"}                a call on a missing user (as the WHMCS module expects)
//	HTTP 200 + {"Status":400,"Message":"User already exists"}           add-user of an existing user
//	HTTP 200 + {"Status":400,"Message":"Profile hash mismatch ..."}     set-user-profile-hash / request-storage-vault with a stale hash
//	HTTP 200 + {"Status":400,"Message":...}                             missing or invalid parameters
//	HTTP 200 + {"Status":<n>,"Message":"comettest: injected failure"}   FailNextBody(…, n)
//
// The real server's exact wording, and which style it uses for which case,
// are not public; these follow the official WHMCS module's expectations.
//
// Field names follow the official Go SDK's struct tags (comet-go-sdk
// v2.6.0; the list is in providers/comet/testdata and checked by this
// package's contract test). FutureFields lists the fields the fake adds on
// purpose that no SDK type has.
//
// Every profile carries fields no client knows ("SomeFutureField" at the top
// level, "SomeFutureDestinationField" in each Storage Vault) so that a test
// can prove a read-modify-write keeps them; ProfileHash changes on every
// write.
package comettest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FutureFields are the JSON fields the fake adds that the SDK does not
// know, standing for fields of a newer Comet Server (and ConcurrentEdits,
// the trace ConflictNext leaves): a client must keep them on
// read-modify-write.
var FutureFields = []string{"SomeFutureField", "SomeFutureDestinationField", "SomeFutureMetaField", "ConcurrentEdits"}

// Default credentials of a new Server.
const (
	DefaultUsername = "admin"
	DefaultPassword = "comettest-admin-password"
)

// StorageTemplate is the id of the one Storage Vault template
// (StorageProvider) the fake offers.
const StorageTemplate = "comettest-vault-template"

// DestinationTypeComet is Comet's DESTINATIONTYPE_COMET.
const DestinationTypeComet = 1003

// Request is one call the fake received. Form holds the posted fields with
// every secret (Password, TargetPassword, NewPassword, OldPassword)
// replaced by "REDACTED", so a test can see that a secret was sent without
// the log holding it.
type Request struct {
	Method      string
	Path        string
	Op          string // the part after /api/v1/admin/
	ContentType string
	Form        url.Values
}

// User is a copy of one user the fake holds.
type User struct {
	Name string
	// Profile is the UserProfileConfig as JSON-decoded values (numbers are
	// json.Number).
	Profile     map[string]any
	ProfileHash string
	// RecoveryCode is true when the user was created with
	// StoreRecoveryCode=1 (reset-user-password then needs no OldPassword).
	RecoveryCode bool
}

// Suspended reports the profile's IsSuspended.
func (u User) Suspended() bool { b, _ := u.Profile["IsSuspended"].(bool); return b }

type account struct {
	profile  map[string]any
	hash     string
	password string
	recovery bool
}

type policy struct {
	body map[string]any
	hash string
}

type reply struct {
	status int
	body   any
	effect bool // the call changed state
	header http.Header
}

// Server is the fake Comet Server. Its methods are safe for concurrent use.
// Server is also an http.Handler, so a test can put it behind its own
// handler.
type Server struct {
	// URL is the server's base URL (no trailing slash).
	URL string
	// Username and Password are the admin credentials it accepts. They are
	// read-only once the server runs.
	Username, Password string

	srv *httptest.Server

	mu        sync.Mutex
	users     map[string]*account
	policies  map[string]*policy
	created   int
	seq       int
	requests  []Request
	failNext  []failure
	drop      bool
	delay     time.Duration
	conflicts int
	inFlight  int
	maxFlight int
	start     time.Time
	sessions  map[string]string // session key → user (sso.go)
}

type failure struct {
	status int
	inBody bool
	op     string // only requests to this op ("" = any)
}

// NewServer starts a fake Comet Server on a loopback port with the default
// credentials. Call Close when done. It needs no *testing.T, so a program
// can run one too.
func NewServer() *Server {
	s := &Server{
		Username: DefaultUsername,
		Password: DefaultPassword,
		users:    map[string]*account{},
		policies: map[string]*policy{},
		start:    time.Now(),
	}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down, closing any connection still open.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// FailNext makes the next n requests, whatever they are, fail with HTTP
// status and a Comet error body {"Status":status,...}, before touching any
// state. 429 and 503 replies carry Retry-After: 1.
func (s *Server) FailNext(n, status int) { s.addFailures(n, status, false) }

// FailNextBody makes the next n requests fail in Comet's other style: HTTP
// 200 with a body {"Status":status,"Message":...}.
func (s *Server) FailNextBody(n, status int) { s.addFailures(n, status, true) }

// FailNextOp makes the next n requests to op (e.g. "add-user") fail as
// FailNext does; requests to other ops are answered normally meanwhile.
func (s *Server) FailNextOp(op string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, failure{status: status, op: op})
	}
}

func (s *Server) addFailures(n, status int, inBody bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext = append(s.failNext, failure{status: status, inBody: inBody})
	}
}

// DropAfterEffect makes the fake apply the next call that changes state
// (add-user, set-user-profile(-hash), request-storage-vault, delete-user,
// reset-user-password, policies/set) and then close the connection without
// replying, as if the reply were lost.
func (s *Server) DropAfterEffect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop = true
}

// Delay makes every following request wait d before it is answered (0
// turns the delay off). A request whose client gives up stops waiting.
func (s *Server) Delay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// ConflictNext makes the next set-user-profile-hash lose a race: just before
// it is handled, a concurrent writer changes the profile (it increments the
// unknown field "ConcurrentEdits") and so its hash, and the call is answered
// with a hash mismatch. Calls add up: ConflictNext twice loses two races.
func (s *Server) ConflictNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conflicts++
}

// Created returns how many users were ever created (add-user that
// succeeded, or AddUser).
func (s *Server) Created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.created
}

// Users returns the names of the users the fake holds, sorted.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.users))
	for n := range s.users {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// User returns a deep copy of the named user.
func (s *Server) User(name string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.users[name]
	if !ok {
		return User{}, false
	}
	return User{Name: name, Profile: deepCopy(a.profile), ProfileHash: a.hash, RecoveryCode: a.recovery}, true
}

// CheckPassword reports whether name's password is password.
func (s *Server) CheckPassword(name, password string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.users[name]
	return ok && a.password == password
}

// AddUser creates a user directly, as if an administrator had (with a
// recovery code). It fails when the name is taken.
func (s *Server) AddUser(name, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; ok {
		return fmt.Errorf("comettest: user %q exists", name)
	}
	s.createLocked(name, password, true, false)
	return nil
}

// Mutate changes name's profile in place, as a concurrent administrator
// would, and gives it a new hash. It reports whether the user exists.
func (s *Server) Mutate(name string, change func(profile map[string]any)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.users[name]
	if !ok {
		return false
	}
	change(a.profile)
	a.profile = deepCopy(a.profile) // normalise values the callback set
	a.hash = s.nextHash(name)
	return true
}

// Policy returns a deep copy of the GroupPolicy stored under id.
func (s *Server) Policy(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.policies[id]
	if !ok {
		return nil, false
	}
	return deepCopy(p.body), true
}

// SetPolicy stores a GroupPolicy under id, as an administrator would.
func (s *Server) SetPolicy(id string, groupPolicy map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policies[id] = &policy{body: deepCopy(groupPolicy), hash: s.nextHash("policy:" + id)}
}

// Requests returns every request received, in order, secrets redacted.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Form = cloneValues(r.Form)
		out[i] = r
	}
	return out
}

// Ops returns the op name of every request received, in order.
func (s *Server) Ops() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ops := make([]string, len(s.requests))
	for i, r := range s.requests {
		ops[i] = r.Op
	}
	return ops
}

// Count returns how many requests named op.
func (s *Server) Count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Op == op {
			n++
		}
	}
	return n
}

// MaxInFlight returns the most requests the fake was handling at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxFlight
}

var secretFields = []string{"Password", "TargetPassword", "NewPassword", "OldPassword"}

// ServeHTTP answers one admin API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	op, isAPI := strings.CutPrefix(r.URL.Path, "/api/v1/admin/")
	logged := Request{Method: r.Method, Path: r.URL.Path, Op: op, ContentType: r.Header.Get("Content-Type"), Form: cloneValues(r.PostForm)}
	for _, f := range secretFields {
		if _, ok := logged.Form[f]; ok {
			logged.Form.Set(f, "REDACTED")
		}
	}

	s.mu.Lock()
	s.requests = append(s.requests, logged)
	s.inFlight++
	s.maxFlight = max(s.maxFlight, s.inFlight)
	delay := s.delay
	var fail *failure
	for i, f := range s.failNext {
		if f.op == "" || f.op == op {
			s.failNext = slices.Delete(s.failNext, i, i+1)
			fail = &f
			break
		}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case fail != nil:
		h := http.Header{}
		if fail.status == http.StatusTooManyRequests || fail.status == http.StatusServiceUnavailable {
			h.Set("Retry-After", "1")
		}
		code := fail.status
		if fail.inBody {
			code = http.StatusOK
		}
		writeReply(w, reply{status: code, header: h, body: carm(fail.status, "comettest: injected failure")})
		return
	case r.Method != http.MethodPost:
		writeReply(w, reply{status: http.StatusMethodNotAllowed, body: carm(405, "Method not allowed; use POST")})
		return
	case !isAPI:
		writeReply(w, reply{status: http.StatusNotFound, body: carm(404, "Unknown API path "+r.URL.Path)})
		return
	case r.PostForm.Get("Username") != s.Username || r.PostForm.Get("AuthType") != "Password" || r.PostForm.Get("Password") != s.Password:
		writeReply(w, reply{status: http.StatusForbidden, body: carm(403, "Invalid username or password")})
		return
	}

	s.mu.Lock()
	rep := s.handleLocked(op, r.PostForm)
	rep.body = encode(rep.body) // while the state it refers to cannot change
	drop := rep.effect && s.drop
	if drop {
		s.drop = false
	}
	s.mu.Unlock()
	if drop {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
			return
		}
		panic(http.ErrAbortHandler) // aborts the reply without writing it
	}
	writeReply(w, rep)
}

func carm(status int, msg string) map[string]any {
	return map[string]any{"Status": status, "Message": msg}
}

// bodyErr is an error in Comet's HTTP-200 style.
func bodyErr(status int, msg string) reply { return reply{status: 200, body: carm(status, msg)} }

func userNotFound() reply { return bodyErr(500, "User not found") }

func writeReply(w http.ResponseWriter, rep reply) {
	for k, v := range rep.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	b, ok := rep.body.([]byte)
	if !ok {
		b = encode(rep.body)
	}
	_, _ = w.Write(b)
}

func encode(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("comettest: encoding a reply: %v", err))
	}
	return b.Bytes()
}

func (s *Server) handleLocked(op string, f url.Values) reply {
	user := f.Get("TargetUser")
	switch op {
	case "meta/version":
		return reply{status: 200, body: map[string]any{
			"Version": "25.9.6", "VersionCodename": "comettest", "StorageRole": true, "AuthenticationRole": true,
			"ServerStartTime": s.start.Unix(), "ServerStartHash": "comettest-start", "CurrentTime": time.Now().Unix(),
			"ServerLicenseHash": "comettest-license", "SomeFutureMetaField": "x",
		}}
	case "list-users":
		names := make([]string, 0, len(s.users))
		for n := range s.users {
			names = append(names, n)
		}
		slices.Sort(names)
		return reply{status: 200, body: names}
	case "list-users-full":
		all := make(map[string]any, len(s.users))
		for n, a := range s.users {
			all[n] = a.profile
		}
		return reply{status: 200, body: all}
	case "add-user":
		pw := f.Get("TargetPassword")
		switch {
		case len([]rune(user)) < 6:
			return bodyErr(400, "Username must be at least 6 characters")
		case len([]rune(pw)) < 8:
			return bodyErr(400, "Password must be at least 8 characters")
		case s.users[user] != nil:
			return bodyErr(400, "User already exists")
		}
		s.createLocked(user, pw, f.Get("StoreRecoveryCode") == "1", f.Get("RequirePasswordChange") == "1")
		return reply{status: 200, body: carm(200, "OK"), effect: true}
	case "get-user-profile":
		a := s.users[user]
		if a == nil {
			return userNotFound()
		}
		return reply{status: 200, body: a.profile}
	case "get-user-profile-and-hash":
		a := s.users[user]
		if a == nil {
			return userNotFound()
		}
		return reply{status: 200, body: map[string]any{"Status": 200, "Message": "OK", "ProfileHash": a.hash, "Profile": a.profile}}
	case "get-user-profile-hash":
		a := s.users[user]
		if a == nil {
			return userNotFound()
		}
		return reply{status: 200, body: map[string]any{"Status": 200, "Message": "OK", "ProfileHash": a.hash}}
	case "set-user-profile-hash", "set-user-profile":
		a := s.users[user]
		if a == nil {
			return userNotFound()
		}
		prof, err := decode(f.Get("ProfileData"))
		switch {
		case err != nil:
			return bodyErr(400, "ProfileData is not a JSON object: "+err.Error())
		case prof["Username"] != user:
			return bodyErr(400, "ProfileData.Username does not match TargetUser (usernames cannot be changed)")
		}
		if op == "set-user-profile-hash" {
			if f.Get("RequireHash") == "" {
				return bodyErr(400, "RequireHash is required")
			}
			if s.conflicts > 0 {
				s.conflicts--
				n, _ := strconv.Atoi(fmt.Sprint(a.profile["ConcurrentEdits"]))
				a.profile["ConcurrentEdits"] = json.Number(strconv.Itoa(n + 1))
				a.hash = s.nextHash(user)
			}
			if f.Get("RequireHash") != a.hash {
				return bodyErr(400, "Profile hash mismatch: the profile was modified by another request")
			}
		}
		a.profile = prof
		a.hash = s.nextHash(user)
		return reply{status: 200, body: map[string]any{"Status": 200, "Message": "OK", "ProfileHash": a.hash, "Profile": a.profile}, effect: true}
	case "delete-user":
		if s.users[user] == nil {
			return userNotFound()
		}
		delete(s.users, user)
		return reply{status: 200, body: carm(200, "OK"), effect: true}
	case "reset-user-password":
		a := s.users[user]
		pw := f.Get("NewPassword")
		switch {
		case a == nil:
			return userNotFound()
		case len([]rune(pw)) < 8:
			return bodyErr(400, "Password must be at least 8 characters")
		case !a.recovery && f.Get("OldPassword") != a.password:
			return bodyErr(400, "OldPassword is required when the user has no recovery code")
		}
		a.password = pw
		a.profile["PasswordHash"] = passwordHash(user, pw)
		a.hash = s.nextHash(user)
		return reply{status: 200, body: carm(200, "OK"), effect: true}
	case "request-storage-vault-providers":
		return reply{status: 200, body: map[string]string{StorageTemplate: "Comet Storage (comettest)"}}
	case "request-storage-vault":
		a := s.users[user]
		switch {
		case a == nil:
			return userNotFound()
		case f.Get("StorageProvider") != StorageTemplate:
			return bodyErr(400, fmt.Sprintf("Unknown storage provider %q", f.Get("StorageProvider")))
		case f.Get("ProfileHash") != "" && f.Get("ProfileHash") != a.hash:
			return bodyErr(400, "Profile hash mismatch: the profile was modified by another request")
		}
		id := s.nextHash("destination:" + user)
		dests, _ := a.profile["Destinations"].(map[string]any)
		if dests == nil {
			dests = map[string]any{}
			a.profile["Destinations"] = dests
		}
		dests[id] = map[string]any{
			"Description": "Storage Vault", "DestinationType": json.Number(strconv.Itoa(DestinationTypeComet)),
			"StorageLimitEnabled": false, "StorageLimitBytes": json.Number("0"),
			"CreateTime":                 json.Number(strconv.FormatInt(time.Now().Unix(), 10)),
			"SomeFutureDestinationField": map[string]any{"Keep": "me"},
		}
		a.hash = s.nextHash(user)
		return reply{status: 200, effect: true, body: map[string]any{
			"Status": 200, "Message": "OK", "DestinationID": id, "ProfileHash": a.hash, "Profile": a.profile}}
	case "account/session-start-as-user":
		return s.sessionStartAsUserLocked(user) // sso.go
	case "policies/list":
		m := map[string]string{}
		for id, p := range s.policies {
			m[id] = fmt.Sprint(p.body["Description"])
		}
		return reply{status: 200, body: m}
	case "policies/get":
		p := s.policies[f.Get("PolicyID")]
		if p == nil {
			return reply{status: http.StatusNotFound, body: carm(404, "Policy not found")}
		}
		return reply{status: 200, body: map[string]any{"Status": 200, "Message": "OK", "Policy": p.body, "PolicyHash": p.hash}}
	case "policies/set":
		id := f.Get("PolicyID")
		body, err := decode(f.Get("Policy"))
		switch {
		case id == "":
			return bodyErr(400, "PolicyID is required")
		case err != nil:
			return bodyErr(400, "Policy is not a JSON object: "+err.Error())
		}
		if h := f.Get("CheckPolicyHash"); h != "" && (s.policies[id] == nil || s.policies[id].hash != h) {
			return bodyErr(400, "Policy hash mismatch: the policy was modified by another request")
		}
		s.policies[id] = &policy{body: body, hash: s.nextHash("policy:" + id)}
		return reply{status: 200, body: carm(200, "OK"), effect: true}
	}
	return reply{status: http.StatusNotFound, body: carm(404, "Unknown API "+op)}
}

func (s *Server) createLocked(name, password string, recovery, requireChange bool) {
	s.created++
	now := time.Now().Unix()
	guid := s.nextHash("guid:" + name)
	// Every field of the official SDK's UserProfileConfig (comet-go-sdk
	// v2.6.0, see providers/comet/testdata/comet-go-sdk-v2.6.0-fields.txt and
	// the contract test), in its order, plus one deliberately unknown field.
	prof, _ := decode(fmt.Sprintf(`{
		"Username": %q, "AccountName": "", "LocalTimezone": "", "LanguageCode": "", "OrganizationID": "", "GroupID": "",
		"Emails": [], "OverrideEmailSettings": {}, "SendEmailReports": false,
		"Destinations": {}, "SupportsDeviceAssociations": false, "Sources": {}, "BackupRules": {}, "Devices": {},
		"IsSuspended": false, "LastSuspended": 0,
		"AllProtectedItemsQuotaEnabled": false, "AllProtectedItemsQuotaBytes": 0, "MaximumDevices": 0,
		"QuotaOffice365ProtectedAccounts": 0, "QuotaHyperVGuests": 0, "QuotaVMwareGuests": 0,
		"PolicyID": "", "Policy": {},
		"PasswordFormat": 1, "PasswordHash": %q, "PasswordRecovery": %q,
		"AllowPasswordLogin": true, "AllowPasswordAndTOTPLogin": false, "TOTPKeyEncryptionFormat": 0, "TOTPKey": "",
		"RequirePasswordChange": %t, "CreateTime": %d, "CreationGUID": %q,
		"ServerConfig": {}, "AutoStorageTemplateGUID": "", "LinuxHomedirSandbox": false,
		"SomeFutureField": {"Nested": [1, 2, 3], "Flag": true, "Big": 9007199254740993}
	}`, name, passwordHash(name, password), map[bool]string{true: "comettest-recovery-blob", false: ""}[recovery],
		requireChange, now, guid))
	s.users[name] = &account{profile: prof, hash: s.nextHash(name), password: password, recovery: recovery}
}

func (s *Server) nextHash(salt string) string {
	s.seq++
	sum := sha256.Sum256([]byte(strconv.Itoa(s.seq) + "\x00" + salt))
	return hex.EncodeToString(sum[:16])
}

func passwordHash(user, pw string) string {
	sum := sha256.Sum256([]byte("comettest\x00" + user + "\x00" + pw))
	return hex.EncodeToString(sum[:])
}

func decode(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("null")
	}
	return m, nil
}

func deepCopy(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("comettest: copying a profile: %v", err))
	}
	c, err := decode(string(b))
	if err != nil {
		panic(fmt.Sprintf("comettest: copying a profile: %v", err))
	}
	return c
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}
