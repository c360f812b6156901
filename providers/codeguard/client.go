package codeguard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// maxReply bounds how much of a reply is read; pricing replies list every
// product of the reseller and can be a few hundred KiB.
const maxReply = 8 << 20

// APIError is a reply LogicBoxes marked as an error: a body
// {"status":"ERROR","message":...} (or "error" in either place), on any HTTP
// status, or a non-2xx status with a body that is not an error object. It is
// always wrapped in an *events.ClassifiedError; use errors.As to read it.
type APIError struct {
	// Path is the API path called, e.g. "codeguard/add.json" (never the
	// URL: its query carries the api-key).
	Path string
	// HTTPStatus is the reply's HTTP status code.
	HTTPStatus int
	// Message is LogicBoxes' error message ("" when the body held none).
	Message string
}

// Error names the path, the HTTP status and LogicBoxes' message.
func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Path, e.HTTPStatus)
	}
	return fmt.Sprintf("%s: LogicBoxes error (HTTP %d): %s", e.Path, e.HTTPStatus, e.Message)
}

// Client makes typed calls to the LogicBoxes HTTP API. Every call carries
// auth-userid and api-key, uses GET for reads and POST (form body) for
// writes, waits for the provider's Limiter, and returns errors classified
// once (events.ClassOf) with the reply body attached (events.ReplyOf) and
// the api-key redacted from both. A Client is safe for concurrent use.
type Client struct {
	base    string
	userID  string
	apiKey  string
	secrets providers.Secrets // the api-key, in every form a reply may echo it
	http    *http.Client
	lim     *providers.Limiter
	timeout time.Duration
	log     *zap.Logger
}

// NewClient returns a client for cfg. It fails when cfg does not validate.
func NewClient(cfg Config, log *zap.Logger) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Client{
		base:    strings.TrimRight(cfg.URL, "/"),
		userID:  cfg.AuthUserID,
		apiKey:  cfg.APIKey,
		secrets: providers.NewSecrets(cfg.APIKey),
		http:    cfg.HTTPClient(),
		lim:     providers.NewLimiter(cfg.MaxConcurrent, cfg.RatePerSecond),
		timeout: cfg.Timeout,
		log:     log,
	}, nil
}

// String never prints the api-key.
func (c *Client) String() string {
	return fmt.Sprintf("codeguard.Client{URL:%q AuthUserID:%q}", c.base, c.userID)
}

// GoString never prints the api-key.
func (c *Client) GoString() string { return c.String() }

// secretParams are request parameters whose values are secrets besides
// the api-key (customers/signup.json's passwd; auth-password, which older
// LogicBoxes setups use instead of api-key).
var secretParams = []string{"passwd", "new-passwd", "password", "auth-password"}

// redact removes the api-key from s, in every form a reply may echo it.
func (c *Client) redact(s string) string { return c.secrets.Scrub(s) }

// call sends one request and returns the reply body of a successful call.
// params must not hold auth-userid or api-key: they are added here.
func (c *Client) call(ctx context.Context, method, path string, params url.Values) ([]byte, error) {
	release, err := c.lim.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer release()

	q := url.Values{}
	for k, v := range params {
		q[k] = append([]string(nil), v...)
	}
	q.Set("auth-userid", c.userID)
	q.Set("api-key", c.apiKey)
	endpoint := c.base + "/" + path
	// Every secret this request carries is scrubbed from everything its
	// reply brings back: the body handed to the parsers (whose errors
	// attach it), error messages and attached replies.
	secrets := c.secrets
	for _, k := range secretParams {
		for _, v := range params[k] {
			secrets = secrets.With(v)
		}
	}

	var req *http.Request
	if method == http.MethodGet {
		req, err = http.NewRequestWithContext(ctx, method, endpoint+"?"+q.Encode(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, endpoint, strings.NewReader(q.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		// Only a malformed base URL gets here; Validate rejects those.
		return nil, events.Permanentf("%s: building the request failed", path)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hookworker-codeguard")

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		err = secrets.ScrubError(providers.ClassifyTransport(path, err)) // drops the URL: its query holds the api-key
		c.log.Debug("codeguard call failed", zap.String("method", method), zap.String("path", path),
			zap.Duration("took", time.Since(start)), zap.Error(err))
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	c.log.Debug("codeguard call", zap.String("method", method), zap.String("path", path),
		zap.Int("status", resp.StatusCode), zap.Duration("took", time.Since(start)))
	if err != nil {
		return nil, secrets.ScrubError(providers.ClassifyTransport(path+": reading the reply", err))
	}
	body = secrets.ScrubBytes(body)
	return body, c.replyError(path, resp, body)
}

// replyError classifies a reply (its body already scrubbed of the
// request's secrets): nil for a 2xx without an error body.
// An error body on 2xx or 4xx is permanent, on 5xx transient; 408, 425 and
// 429 stay transient whatever the body (they mean "slow down / try again").
func (c *Client) replyError(path string, resp *http.Response, body []byte) error {
	msg, isErr := errorBody(body)
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if ok && !isErr {
		return nil
	}
	apiErr := &APIError{Path: path, HTTPStatus: resp.StatusCode, Message: c.redact(msg)}
	var err error
	if ok {
		err = events.AsPermanent(apiErr)
	} else {
		err = providers.ClassifyStatus(resp.StatusCode, resp.Header, apiErr)
	}
	return events.WithReply(err, c.redact(strings.TrimSpace(string(body))))
}

// errorBody reports whether body is a LogicBoxes error object and returns
// its message: {"status":"ERROR","message":...}, any case of "error", and
// an "error" key instead of "message".
func errorBody(body []byte) (string, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return "", false
	}
	status := str(m, "status")
	if !strings.EqualFold(status, "error") {
		return "", false
	}
	msg := str(m, "message")
	if msg == "" {
		msg = str(m, "error")
	}
	if msg == "" {
		if raw, ok := m["error"]; ok {
			msg = strings.TrimSpace(string(raw)) // an object: keep its JSON
		}
	}
	return msg, true
}

// object decodes a reply that must be a JSON object.
func object(path string, body []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, events.WithReply(events.Permanentf("%s: reply is not a JSON object", path), strings.TrimSpace(string(body)))
	}
	return m, nil
}

// bareInt reads a reply that is a bare number, a number in a JSON string,
// or an object carrying the number under one of keys.
func bareInt(path string, body []byte, keys ...string) (int64, error) {
	b := bytes.TrimSpace(body)
	if n, ok := parseInt(b); ok {
		return n, nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) == nil {
		for _, k := range keys {
			if n := num(m, k); n > 0 {
				return n, nil
			}
		}
	}
	return 0, events.WithReply(events.Permanentf("%s: reply is not a number", path), string(b))
}

// parseInt reads a JSON number or a JSON string holding an integer
// (also "12.0", as some LogicBoxes numbers arrive).
func parseInt(raw []byte) (int64, bool) {
	s := strings.TrimSpace(string(raw))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if err := json.Unmarshal([]byte(s), &s); err != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	if s == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f), true
	}
	return 0, false
}

// parseFloat reads a JSON number or a JSON string holding one.
func parseFloat(raw []byte) (float64, bool) {
	s := strings.TrimSpace(string(raw))
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal([]byte(s), &s); err != nil {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil
}

// str returns m[k] as a string whatever its JSON type ("" when absent or
// null).
func str(m map[string]json.RawMessage, k string) string {
	raw, ok := m[k]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" {
		return ""
	}
	return t
}

// num returns m[k] as an integer whether LogicBoxes sent a number or a
// string (0 when absent or not a number).
func num(m map[string]json.RawMessage, k string) int64 {
	raw, ok := m[k]
	if !ok {
		return 0
	}
	n, _ := parseInt(raw)
	return n
}

// flag reads a LogicBoxes boolean: true/false, "true"/"false", "yes"/"no".
func flag(m map[string]json.RawMessage, k string) bool {
	switch strings.ToLower(str(m, k)) {
	case "true", "yes", "1", "y":
		return true
	}
	return false
}
