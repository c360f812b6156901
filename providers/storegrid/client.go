package storegrid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/storegrid/internal/sgwire"
)

// maxReply bounds the reply body read.
const maxReply = 1 << 20

// Errors matched (errors.Is) by what the provider returns.
var (
	// ErrNotFound: the account, or a customer's reseller, does not exist
	// at the server.
	ErrNotFound = errors.New("storegrid: no such account")
	// ErrAlreadyExists: the server already holds an account by that name.
	ErrAlreadyExists = errors.New("storegrid: account already exists")
	// ErrAuth: the server refused the admin credentials.
	ErrAuth = errors.New("storegrid: admin credentials refused")
	// ErrBusy: the server said it is busy (transient).
	ErrBusy = errors.New("storegrid: server busy")
	// ErrUnsupported: the action has no StoreGrid counterpart.
	ErrUnsupported = errors.New("storegrid: action not supported")
)

// ReplyError is an error reply of the server: its code and message.
type ReplyError struct {
	Action  string // the request's action, e.g. "addcustomer"
	Code    string
	Message string
}

// Error describes the reply.
func (e *ReplyError) Error() string {
	return fmt.Sprintf("server replied %s: %s", e.Code, e.Message)
}

// Is matches ErrNotFound, ErrAlreadyExists, ErrAuth and ErrBusy by code.
func (e *ReplyError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == sgwire.CodeNotFound
	case ErrAlreadyExists:
		return e.Code == sgwire.CodeAlreadyExists
	case ErrAuth:
		return e.Code == sgwire.CodeAuthFailed
	case ErrBusy:
		return sgwire.Reply{Code: e.Code, Message: e.Message}.Busy()
	}
	return false
}

// call posts one request and returns the successful reply, or an error
// classified once: transport errors by providers.ClassifyTransport, non-2xx
// by providers.ClassifyStatus, error replies permanent unless the server is
// busy, unreadable replies permanent. The reply body is attached to the
// error for the operator; the request never is (it holds the admin
// password). When secret is true (the reply may carry a pass key) only the
// parsed error message is attached, never the raw body.
func (p *Provider) call(ctx context.Context, form url.Values, secret bool) (sgwire.Reply, error) {
	action := form.Get(sgwire.ParamAction)
	what := "storegrid " + action
	release, err := p.limiter.Acquire(ctx)
	if err != nil {
		return sgwire.Reply{}, fmt.Errorf("%s: %w", what, err)
	}
	defer release()

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return sgwire.Reply{}, events.AsPermanent(fmt.Errorf("%s: building the request: %w", what, err))
	}
	req.Header.Set("Content-Type", sgwire.ContentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hookworker")

	start := time.Now()
	resp, err := p.http.Do(req)
	if err != nil {
		p.log.Debug("storegrid request failed", zap.String("request", action), zap.Duration("took", time.Since(start)))
		return sgwire.Reply{}, providers.ClassifyTransport(what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return sgwire.Reply{}, events.AsTransient(fmt.Errorf("%s: reading the reply: %w", what, err), 0)
	}
	// The request's secret (the admin password) is scrubbed from whatever
	// the reply brings back, in every form a server may echo it.
	body = providers.NewSecrets(form.Get(sgwire.ParamPassword)).ScrubBytes(body)
	p.log.Debug("storegrid request", zap.String("request", action), zap.Int("status", resp.StatusCode),
		zap.Duration("took", time.Since(start)))

	reply, perr := sgwire.DecodeReply(body)
	var rerr error
	if perr == nil && !reply.OK() {
		rerr = &ReplyError{Action: action, Code: reply.Code, Message: reply.Message}
	}
	shown := strings.TrimSpace(string(body))
	if secret {
		shown = ""
		if rerr != nil {
			shown = string(sgwire.Reply{Status: reply.Status, Code: reply.Code, Message: reply.Message}.Encode())
		}
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		err := fmt.Errorf("%s: HTTP %d", what, resp.StatusCode)
		if rerr != nil {
			err = fmt.Errorf("%s: HTTP %d: %w", what, resp.StatusCode, rerr)
		}
		return sgwire.Reply{}, events.WithReply(providers.ClassifyStatus(resp.StatusCode, resp.Header, err), shown)
	}
	if perr != nil {
		return sgwire.Reply{}, events.WithReply(events.AsPermanent(fmt.Errorf("%s: %w", what, perr)), shown)
	}
	if rerr != nil {
		err := fmt.Errorf("%s: %w", what, rerr)
		if reply.Busy() {
			err = events.AsTransient(err, 0)
		} else {
			err = events.AsPermanent(err)
		}
		return sgwire.Reply{}, events.WithReply(err, shown)
	}
	return reply, nil
}

// form starts a request for verb on the account t.
func (p *Provider) form(t target, v sgwire.Verb) url.Values {
	f := sgwire.NewForm(sgwire.Action(t.kind, v), p.cfg.Username, p.cfg.Password)
	sgwire.Target(f, t.kind, t.reseller, t.name)
	return f
}

// account is an account as a get* reply shows it.
type account struct {
	active bool
	fields map[string]string
}

// get reads the account t; found is false when the server says there is no
// such account.
func (p *Provider) get(ctx context.Context, t target) (account, bool, error) {
	r, err := p.call(ctx, p.form(t, sgwire.Get), false)
	if errors.Is(err, ErrNotFound) && events.ClassOf(err) == events.Permanent {
		// The server answered, and said there is no such account (a
		// NOT_FOUND riding on a 5xx is an outage, not an answer).
		return account{}, false, nil
	}
	if err != nil {
		return account{}, false, fmt.Errorf("read %s %q: %w", t.kind, t.name, err)
	}
	active, ok := sgwire.ParseBool(r.Data[sgwire.DataActive])
	if !ok {
		err := events.Permanentf("read %s %q: reply has %s %q, want %s or %s", t.kind, t.name,
			sgwire.DataActive, r.Data[sgwire.DataActive], sgwire.True, sgwire.False)
		return account{}, false, events.WithReply(err, string(r.Encode()))
	}
	return account{active: active, fields: r.Data}, true, nil
}

// passKey retrieves a customer's pass key. The key is a secret: it never
// appears in an error or a log.
func (p *Provider) passKey(ctx context.Context, t target) (string, error) {
	r, err := p.call(ctx, p.form(t, sgwire.PassKey), true)
	if err != nil {
		return "", fmt.Errorf("retrieve the pass key of customer %q: %w", t.name, err)
	}
	key := strings.TrimSpace(r.Data[sgwire.DataPassKey])
	if key == "" {
		return "", events.Permanentf("retrieve the pass key of customer %q: reply has no %s", t.name, sgwire.DataPassKey)
	}
	return key, nil
}
