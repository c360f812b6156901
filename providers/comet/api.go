package comet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// ErrUnauthorized is matched (errors.Is) by every error that comes from
// Comet rejecting the admin credentials (Status or HTTP status 401 or 403).
// Such errors are permanent.
var ErrUnauthorized = errors.New("comet rejected the admin credentials")

// ErrUserNotFound is matched (errors.Is) by the permanent error a lifecycle
// action returns when the Comet user it acts on does not exist.
var ErrUserNotFound = errors.New("comet user not found")

// APIError is an error reply from Comet Server, in either style: a non-2xx
// HTTP status (InBody false), or HTTP 2xx with a body {"Status": >=400,
// "Message": ...} (InBody true). Callers reach it with errors.As; it is
// always wrapped in an events.ClassifiedError that carries the reply.
type APIError struct {
	// Op is the admin API called, e.g. "add-user".
	Op string
	// HTTPStatus is the reply's HTTP status code.
	HTTPStatus int
	// Status is Comet's Status field, or the HTTP status when the body had
	// none.
	Status int
	// Message is Comet's Message field ("" when the body had none).
	Message string
	// InBody is true for HTTP 2xx replies whose body carried the error.
	InBody bool
	// CometBody is true when the body was a Comet {Status, Message} object.
	CometBody bool
}

// Error says which style the error came in, its status and Comet's message;
// it never holds the request.
func (e *APIError) Error() string {
	var s string
	if e.InBody {
		s = fmt.Sprintf("Comet Status %d", e.Status)
	} else {
		s = fmt.Sprintf("HTTP %d", e.HTTPStatus)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes an APIError for a 401 or 403 match ErrUnauthorized.
func (e *APIError) Is(target error) bool {
	return target == ErrUnauthorized && (e.Status == 401 || e.Status == 403 || e.HTTPStatus == 401 || e.HTTPStatus == 403)
}

// saysNotFound reports whether the message says the thing asked for does
// not exist. The exact wording of Comet's reply is not public; these cover
// the usual ones ("User not found", "... does not exist", "No such user").
func (e *APIError) saysNotFound() bool {
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "not found") || strings.Contains(m, "does not exist") ||
		strings.Contains(m, "doesn't exist") || strings.Contains(m, "no such")
}

// maxReply bounds the reply body read into memory.
const maxReply = 32 << 20

// secretFields are form fields whose values are secrets: they are never
// logged and are scrubbed from any reply text kept in an error.
var secretFields = []string{"Password", "TargetPassword", "NewPassword", "OldPassword"}

// call POSTs op with params and the admin credentials, and decodes a
// successful reply into out (numbers as json.Number) unless out is nil.
// target names the user or policy acted on, for error messages. Every
// error returned is classified and, when the server replied, carries the
// reply body with every secret of the request scrubbed.
func (p *Provider) call(ctx context.Context, op, target string, params url.Values, out any) error {
	label := "comet " + op
	if target != "" {
		label += fmt.Sprintf(" %q", target)
	}
	release, err := p.limit.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	defer release()

	form := url.Values{}
	for k, v := range params {
		form[k] = v
	}
	form.Set("Username", p.cfg.Username)
	form.Set("AuthType", "Password")
	form.Set("Password", p.cfg.Password)
	// Every secret this request carries is scrubbed from everything its
	// reply brings back, in every form a server may echo it (as sent,
	// URL-encoded, JSON-escaped as Go's encoder writes "<", ">", "&", ...).
	secrets := heldSecrets(ctx) // the operation's service password, once fetched
	for _, f := range secretFields {
		secrets = secrets.With(form.Get(f))
	}
	scrub := secrets.Scrub

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/api/v1/admin/"+op, strings.NewReader(form.Encode()))
	if err != nil {
		return events.AsPermanent(fmt.Errorf("%s: building the request: %w", label, err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hookworker-comet/1")

	start := time.Now()
	resp, err := p.http.Do(req)
	if err != nil {
		p.log.Debug("comet call failed", zap.String("op", op), zap.Duration("took", time.Since(start)), zap.Error(err))
		return providers.ClassifyTransport(label, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return providers.ClassifyTransport(label+": reading the reply", err)
	}
	p.log.Debug("comet call", zap.String("op", op), zap.Int("http_status", resp.StatusCode),
		zap.Int("reply_bytes", len(body)), zap.Duration("took", time.Since(start)))
	if len(body) > maxReply {
		return events.AsTransient(fmt.Errorf("%s: reply larger than %d bytes", label, maxReply), 0)
	}
	body = secrets.ScrubBytes(body)
	reply := string(bytes.TrimSpace(body))

	var carm struct {
		Status  *int
		Message string
	}
	cometBody := json.Unmarshal(body, &carm) == nil && carm.Status != nil
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		ae := &APIError{Op: op, HTTPStatus: resp.StatusCode, Status: resp.StatusCode, Message: scrub(carm.Message), CometBody: cometBody}
		if cometBody {
			ae.Status = *carm.Status
		}
		var err error = ae
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			err = fmt.Errorf("%w (redirected to %q; set %sURL to the final address)", ae, loc, EnvPrefix)
		}
		return events.WithReply(providers.ClassifyStatus(resp.StatusCode, resp.Header, fmt.Errorf("%s: %w", label, err)), reply)
	}
	// The official Go SDK (comet-go-sdk v2.6.0 cometsdk.go Request) takes an
	// HTTP 2xx body as an error when Status >= 400 and Message != ""; that
	// case is an APIError here too. It takes a Status >= 400 with an empty
	// Message as success; hookworker does not: the official PHP SDK
	// (comet-php-sdk, e.g. AdminAddUserRequest::ProcessResponse) throws on
	// any Status >= 400, and a worker that records effects must never take
	// a reply that says "failed" for a done add-user or delete-user. Status 0
	// or < 400 is success, as in both SDKs.
	if cometBody && *carm.Status >= 400 {
		ae := &APIError{Op: op, HTTPStatus: resp.StatusCode, Status: *carm.Status, Message: scrub(carm.Message), InBody: true, CometBody: true}
		return events.WithReply(providers.ClassifyStatus(ae.Status, resp.Header, fmt.Errorf("%s: %w", label, ae)), reply)
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return events.WithReply(events.AsTransient(fmt.Errorf("%s: the reply is not the JSON expected: %w", label, err), 0), reply)
	}
	return nil
}

// settleMissing decides, after a call about one user or policy failed with
// err, whether that thing is absent. A Comet error reply in the body that
// says "not found" is taken at its word (the official module relies on it);
// any other Comet error reply in the body, and an HTTP error whose Comet
// body says "not found", is settled by asking present (list-users or
// policies/list). Every other error stands: transport errors, HTTP errors
// without a Comet "not found" body (a wrong URL, an injected 400/503).
// It returns (true, nil) when absent and (false, err) otherwise.
func settleMissing(err error, present func() (bool, error)) (bool, error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		return false, err
	}
	switch {
	case ae.InBody && ae.saysNotFound():
		return true, nil
	case ae.InBody, ae.CometBody && ae.saysNotFound():
		ok, lerr := present()
		if lerr != nil || ok {
			return false, err
		}
		return true, nil
	}
	return false, err
}

// userListed reports whether list-users names user.
func (p *Provider) userListed(ctx context.Context, user string) (bool, error) {
	var names []string
	if err := p.call(ctx, "list-users", "", nil, &names); err != nil {
		return false, err
	}
	return slices.Contains(names, user), nil
}

// policyListed reports whether policies/list names id.
func (p *Provider) policyListed(ctx context.Context, id string) (bool, error) {
	var m map[string]any
	if err := p.call(ctx, "policies/list", "", nil, &m); err != nil {
		return false, err
	}
	_, ok := m[id]
	return ok, nil
}

// userExists probes user with get-user-profile: present → true; a reply
// that says the user is missing (settled with list-users when ambiguous) →
// false; anything else → the error.
func (p *Provider) userExists(ctx context.Context, user string) (bool, error) {
	var prof map[string]any
	err := p.call(ctx, "get-user-profile", user, url.Values{"TargetUser": {user}}, &prof)
	if err == nil {
		if _, ok := prof["Username"]; ok {
			return true, nil
		}
		return p.userListed(ctx, user)
	}
	if _, serr := settleMissing(err, func() (bool, error) { return p.userListed(ctx, user) }); serr != nil {
		return false, serr
	}
	return false, nil
}

// opSecrets holds the secrets one operation has handled so far (its
// service password), so that every later reply of the operation, and its
// final error, is scrubbed of them too, not only the reply to the request
// that carried them.
type opSecrets struct {
	mu sync.Mutex
	s  providers.Secrets
}

type opSecretsKey struct{}

// withOpSecrets returns ctx carrying a fresh holder.
func withOpSecrets(ctx context.Context) (context.Context, *opSecrets) {
	h := &opSecrets{}
	return context.WithValue(ctx, opSecretsKey{}, h), h
}

func (h *opSecrets) add(v string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.s = h.s.With(v)
}

func (h *opSecrets) get() providers.Secrets {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.s
}

// heldSecrets returns the secrets of ctx's operation (none outside one).
func heldSecrets(ctx context.Context) providers.Secrets {
	if h, ok := ctx.Value(opSecretsKey{}).(*opSecrets); ok {
		return h.get()
	}
	return providers.Secrets{}
}

// holdSecret adds v to ctx's operation's secrets.
func holdSecret(ctx context.Context, v string) {
	if h, ok := ctx.Value(opSecretsKey{}).(*opSecrets); ok {
		h.add(v)
	}
}
