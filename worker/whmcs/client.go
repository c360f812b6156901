package whmcs

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// Errors a caller can match with errors.Is. Every error the Client returns
// is also classified (events.ClassOf) as transient or permanent.
var (
	// ErrAuth: WHMCS refused the credentials or the caller's IP (HTTP 403,
	// "Authentication Failed" / "Invalid IP ..."). Permanent for the call;
	// the cause is the configuration, not the request.
	ErrAuth = errors.New("WHMCS API authentication failed")
	// ErrOutcomeUnknown: the request was sent but no reply was read
	// (timeout, dropped connection, unreadable reply), so WHMCS may have
	// carried it out. Such errors are transient.
	ErrOutcomeUnknown = errors.New("the request was sent and no reply was read: WHMCS may have carried it out")
	// ErrNoService: the operation concerns no WHMCS service (a reseller
	// signup on ClientAdd), so WHMCS holds no service password for it.
	ErrNoService = errors.New("the operation has no WHMCS service")
	// ErrNoPassword: the WHMCS service has an empty password.
	ErrNoPassword = errors.New("WHMCS holds no password for the service")
	// ErrForbiddenAction: the Client refuses the Module* API actions, which
	// run the provisioning module and fire the very hooks that publish
	// hookworker's events (a feedback loop: the ModuleCreate API runs
	// ServerCreateAccount, which fires PreModuleCreate/AfterModuleCreate, in
	// WHMCS 7.8 includes/api/modulecreate.php; ../shared/reference/whmcs.md §6.3).
	ErrForbiddenAction = errors.New("refused: Module* API actions re-fire the WHMCS hooks hookworker consumes")
)

// APIError is a reply with result "error": WHMCS understood the request and
// refused it (e.g. "Service ID Not Found"). Its message is WHMCS's own.
type APIError struct {
	Action  string
	Status  int
	Message string
}

// Error gives the action, WHMCS's message and the HTTP status.
func (e *APIError) Error() string {
	return fmt.Sprintf("whmcs %s: %s (HTTP %d)", e.Action, e.Message, e.Status)
}

// maxReply bounds how much of a reply is read.
const maxReply = 4 << 20

// Client calls the WHMCS External API (POST includes/api.php with
// identifier, secret, responsetype=json). It is safe for concurrent use. It
// never logs; its errors never contain the secret, the access key or a
// reply's data (which may hold service passwords), only WHMCS's error
// message.
type Client struct {
	cfg      Config
	endpoint string
	http     *http.Client
}

// NewClient validates cfg and returns a client. It fails when the write-back
// is disabled (empty API URL) or the configuration is invalid.
func NewClient(cfg Config) (*Client, error) {
	if !cfg.Enabled() {
		return nil, fmt.Errorf("%s_API_URL: is not set (write-back disabled)", EnvPrefix)
	}
	if cfg.WritebackConsumer == "" {
		cfg.WritebackConsumer = "hookworker-writeback"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLSInsecure} //nolint:gosec // opt-in only
	hc := &http.Client{
		Timeout:   cfg.Timeout,
		Transport: tr,
		// A redirected POST either loses its form (301/302/303 become GET)
		// or re-sends the secret to wherever the redirect points (307/308):
		// never follow one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &Client{cfg: cfg, endpoint: strings.TrimSpace(cfg.APIURL), http: hc}, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// reservedParams are set by Call itself.
var reservedParams = map[string]bool{"identifier": true, "secret": true, "accesskey": true, "action": true,
	"responsetype": true, "username": true, "password": true}

// Call performs one API action and returns the decoded reply (numbers as
// json.Number). It succeeds only when the reply's result is "success".
//
// Errors: HTTP 403 (and 401) → permanent, matching ErrAuth; HTTP 408, 425,
// 429 and 5xx, timeouts and connection errors → transient (429/503 honour
// Retry-After); other non-2xx → permanent; result "error" on any other
// status → permanent *APIError; a 2xx reply that is not JSON → transient.
// When the request was sent but no reply was read the error also matches
// ErrOutcomeUnknown. Module* actions are refused (ErrForbiddenAction).
func (c *Client) Call(ctx context.Context, action string, params url.Values) (map[string]any, error) {
	switch {
	case action == "":
		return nil, events.Permanentf("whmcs: empty API action")
	case strings.HasPrefix(strings.ToLower(action), "module"):
		return nil, events.AsPermanent(fmt.Errorf("whmcs %s: %w", action, ErrForbiddenAction))
	}
	form := url.Values{}
	for k, v := range params {
		if reservedParams[strings.ToLower(k)] {
			return nil, events.Permanentf("whmcs %s: parameter %q is set by the client", action, k)
		}
		form[k] = append([]string(nil), v...)
	}
	form.Set("action", action)
	form.Set("identifier", c.cfg.Identifier)
	form.Set("secret", c.cfg.Secret)
	if c.cfg.AccessKey != "" {
		form.Set("accesskey", c.cfg.AccessKey)
	}
	form.Set("responsetype", "json")

	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, c.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, events.Permanentf("whmcs %s: build request: %s", action, c.scrub(err.Error()))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hookworker")

	resp, err := c.http.Do(req)
	if err != nil {
		// ClassifyTransport drops the URL; the form (and the secret) is
		// never part of a transport error.
		cerr := providers.ClassifyTransport("whmcs "+action, err)
		if wrote.Load() {
			return nil, events.AsTransient(fmt.Errorf("%w: %w", cerr, ErrOutcomeUnknown), 0)
		}
		return nil, cerr
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if rerr != nil {
		e := fmt.Errorf("whmcs %s: reading the reply (HTTP %d): %s: %w", action, resp.StatusCode, c.scrub(rerr.Error()), ErrOutcomeUnknown)
		return nil, events.AsTransient(e, 0)
	}
	reply, derr := decodeReply(body)
	msg := c.scrub(messageOf(reply))
	status := resp.StatusCode
	switch {
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		if msg == "" {
			msg = "access denied"
		}
		return nil, events.AsPermanent(fmt.Errorf("whmcs %s: %w: %s (HTTP %d; check %s_IDENTIFIER/SECRET, the API role and the IP allowlist or %s_ACCESS_KEY)",
			action, ErrAuth, msg, status, EnvPrefix, EnvPrefix))
	case status >= 300 && status < 400:
		return nil, events.Permanentf("whmcs %s: HTTP %d redirect to %q: set %s_API_URL to the final URL", action, status,
			redactURL(resp.Header.Get("Location")), EnvPrefix)
	case status < 200 || status >= 300:
		detail := msg
		if detail == "" {
			detail = http.StatusText(status)
		}
		return nil, providers.ClassifyStatus(status, resp.Header, fmt.Errorf("whmcs %s: HTTP %d: %s", action, status, detail))
	case derr != nil:
		// A PHP warning before the JSON, a maintenance or proxy page: retry,
		// and say that the action may have run.
		return nil, events.AsTransient(fmt.Errorf("whmcs %s: HTTP %d reply is not a JSON API reply (is %s_API_URL the includes/api.php URL?): %w",
			action, status, EnvPrefix, ErrOutcomeUnknown), 0)
	}
	if r, _ := reply["result"].(string); r != "success" {
		if msg == "" {
			msg = fmt.Sprintf("result %q without a message", r)
		}
		return nil, events.AsPermanent(&APIError{Action: action, Status: status, Message: msg})
	}
	return reply, nil
}

// decodeReply decodes a JSON object reply, tolerating a UTF-8 BOM and
// whitespace. Numbers stay json.Number.
func decodeReply(body []byte) (map[string]any, error) {
	body = bytes.TrimPrefix(bytes.TrimSpace(body), []byte("\xef\xbb\xbf"))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("null reply")
	}
	return m, nil
}

func messageOf(reply map[string]any) string {
	if reply == nil {
		return ""
	}
	s, _ := reply["message"].(string)
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// scrub removes the secret and the access key from s, in case a proxy or
// WHMCS ever echoes the request.
func (c *Client) scrub(s string) string {
	for _, v := range []string{c.cfg.Secret, c.cfg.AccessKey, url.QueryEscape(c.cfg.Secret), url.QueryEscape(c.cfg.AccessKey)} {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "REDACTED")
		}
	}
	return s
}

// UpdateClientProduct sets fields (status, serviceusername, notes,
// customfields, ...) of service serviceID. It runs no module and fires no
// module hook (WHMCS 7.8 includes/api/updateclientproduct.php calls no
// run_hook; ../shared/reference/whmcs.md §6.3).
func (c *Client) UpdateClientProduct(ctx context.Context, serviceID int, fields url.Values) error {
	if serviceID <= 0 {
		return events.Permanentf("whmcs UpdateClientProduct: service id %d is not a WHMCS service id", serviceID)
	}
	p := url.Values{}
	for k, v := range fields {
		p[k] = v
	}
	p.Set("serviceid", strconv.Itoa(serviceID))
	_, err := c.Call(ctx, "UpdateClientProduct", p)
	return err
}

// AddClientNote adds an admin note to client clientID; a sticky note is
// shown throughout the client's admin pages.
func (c *Client) AddClientNote(ctx context.Context, clientID int, note string, sticky bool) error {
	if clientID <= 0 {
		return events.Permanentf("whmcs AddClientNote: client id %d is not a WHMCS client id", clientID)
	}
	if strings.TrimSpace(note) == "" {
		return events.Permanentf("whmcs AddClientNote: empty note")
	}
	s := "0"
	if sticky {
		s = "1" // what PHP's http_build_query sends for true; "false" would be truthy
	}
	_, err := c.Call(ctx, "AddClientNote", url.Values{"userid": {strconv.Itoa(clientID)}, "notes": {note}, "sticky": {s}})
	return err
}

// LogActivity writes a line to the WHMCS activity log, related to client
// clientID when it is positive. The client id is sent under both names:
// WHMCS 7.x reads only userid (includes/api/logactivity.php, 7.8), 8.x reads
// clientid and falls back to userid (8.7), so both versions relate the
// line to the client and neither is confused by the other name.
func (c *Client) LogActivity(ctx context.Context, clientID int, description string) error {
	if strings.TrimSpace(description) == "" {
		return events.Permanentf("whmcs LogActivity: empty description")
	}
	p := url.Values{"description": {description}}
	if clientID > 0 {
		p.Set("clientid", strconv.Itoa(clientID))
		p.Set("userid", strconv.Itoa(clientID))
	}
	_, err := c.Call(ctx, "LogActivity", p)
	return err
}

// UpdateClientCustomFields sets client custom fields of client clientID.
// fields maps a custom field id (decimal, e.g. "7") to its value; they are
// sent as UpdateClient customfields = base64(serialize(array(id => value)))
// with skipvalidation, so that a client with an incomplete profile can
// still be updated. Fields not named are left as they are. UpdateClient
// fires WHMCS's ClientEdit hook, which hookworker does not consume. Errors
// name field ids, never values.
func (c *Client) UpdateClientCustomFields(ctx context.Context, clientID int, fields map[string]string) error {
	if clientID <= 0 {
		return events.Permanentf("whmcs UpdateClient: client id %d is not a WHMCS client id", clientID)
	}
	if len(fields) == 0 {
		return nil
	}
	for k := range fields {
		if n, ok := phpIntKey(k); !ok || n <= 0 {
			return events.Permanentf("whmcs UpdateClient: custom field key %q is not a field id", k)
		}
	}
	_, err := c.Call(ctx, "UpdateClient", url.Values{
		"clientid":       {strconv.Itoa(clientID)},
		"customfields":   {encodeCustomFields(fields)},
		"skipvalidation": {"1"},
	})
	return err
}

// ServiceInfo is what the write-back needs to know about a WHMCS service.
// It deliberately has no password field.
type ServiceInfo struct {
	ID        int
	ClientID  int
	ProductID int
	Status    string // Pending, Active, Suspended, Terminated, Cancelled, Fraud, Completed
	Username  string
	Domain    string
	Notes     string // the service's admin notes
}

// Service looks service serviceID up with GetClientsProducts. A service
// WHMCS does not know is a permanent error.
func (c *Client) Service(ctx context.Context, serviceID int) (ServiceInfo, error) {
	p, err := c.product(ctx, serviceID, 0)
	if err != nil {
		return ServiceInfo{}, err
	}
	return ServiceInfo{
		ID: serviceID, ClientID: intOf(p["clientid"]), ProductID: intOf(p["pid"]),
		Status: strOf(p["status"]), Username: strOf(p["username"]), Domain: strOf(p["domain"]),
		Notes: strOf(p["notes"]),
	}, nil
}

// ServicePassword implements the providers' password source: the password
// WHMCS holds for op's service (GetClientsProducts, serviceid=op.ServiceID),
// which WHMCS generated at order time. It is never logged and never part of
// an error. An operation without a service (a reseller signup on ClientAdd)
// gets a permanent error matching ErrNoService, an empty password one
// matching ErrNoPassword: a caller may fall back to
// providers.DerivedPasswords for those.
func (c *Client) ServicePassword(ctx context.Context, op events.Operation) (string, error) {
	if op.ServiceID <= 0 {
		return "", events.AsPermanent(fmt.Errorf("whmcs service password for client #%d: %w", op.ClientID, ErrNoService))
	}
	p, err := c.product(ctx, op.ServiceID, op.ClientID)
	if err != nil {
		return "", err
	}
	pw := strOf(p["password"])
	if pw == "" {
		return "", events.AsPermanent(fmt.Errorf("whmcs service #%d: %w", op.ServiceID, ErrNoPassword))
	}
	return pw, nil
}

// product returns the GetClientsProducts entry of serviceID. The entry
// holds the service password: it must not be logged or returned whole.
func (c *Client) product(ctx context.Context, serviceID, clientID int) (map[string]any, error) {
	if serviceID <= 0 {
		return nil, events.Permanentf("whmcs GetClientsProducts: service id %d is not a WHMCS service id", serviceID)
	}
	p := url.Values{"serviceid": {strconv.Itoa(serviceID)}}
	if clientID > 0 {
		p.Set("clientid", strconv.Itoa(clientID))
	}
	reply, err := c.Call(ctx, "GetClientsProducts", p)
	if err != nil {
		return nil, err
	}
	for _, pr := range listOf(reply["products"], "product") {
		if intOf(pr["id"]) == serviceID {
			return pr, nil
		}
	}
	return nil, events.AsPermanent(&APIError{Action: "GetClientsProducts", Status: http.StatusOK,
		Message: fmt.Sprintf("service #%d not found", serviceID)})
}

// activityContains reports whether an activity log entry contains text
// (GetActivityLog's description filter, then an exact substring check).
func (c *Client) activityContains(ctx context.Context, text string) (bool, error) {
	reply, err := c.Call(ctx, "GetActivityLog", url.Values{"description": {text}, "limitnum": {"25"}})
	if err != nil {
		return false, err
	}
	for _, e := range listOf(reply["activity"], "entry") {
		if strings.Contains(strOf(e["description"]), text) {
			return true, nil
		}
	}
	return false, nil
}

// listOf reads WHMCS's list shape {"products":{"product":[...]}}, tolerating
// an empty string, an empty array or a single object in place of the list.
func listOf(v any, inner string) []map[string]any {
	if m, ok := v.(map[string]any); ok {
		v = m[inner]
	}
	switch x := v.(type) {
	case []any:
		out := make([]map[string]any, 0, len(x))
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
		return out
	case map[string]any:
		return []map[string]any{x}
	}
	return nil
}

// intOf reads a WHMCS number, which may be a JSON number or a string.
func intOf(v any) int {
	switch x := v.(type) {
	case json.Number:
		n, _ := strconv.Atoi(x.String())
		return n
	case string:
		n, _ := strconv.Atoi(strings.TrimSpace(x))
		return n
	case float64:
		return int(x)
	}
	return 0
}

func strOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}
