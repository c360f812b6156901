package providers

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookworker/hookworker/events"
)

// Settings are the connection settings every provider reads from the
// environment, under HOOKWORKER_<PROVIDER>_ (for example
// HOOKWORKER_COMET_URL).
type Settings struct {
	URL           string        `envconfig:"URL" desc:"base URL of the provider's API; empty disables the provider"`
	Timeout       time.Duration `envconfig:"TIMEOUT" default:"30s" desc:"timeout of one API call"`
	MaxConcurrent int           `envconfig:"MAX_CONCURRENT" default:"4" desc:"most API calls in flight at once to this provider"`
	RatePerSecond float64       `envconfig:"RATE" default:"10" desc:"most API calls a second to this provider (0 = unlimited)"`
	TLSInsecure   bool          `envconfig:"TLS_INSECURE_SKIP_VERIFY" default:"false" desc:"skip TLS certificate verification (never in production)"`
}

// Validate checks the settings; errors name the environment variable, given
// the prefix (e.g. HOOKWORKER_COMET_).
func (s Settings) Validate(prefix string) error {
	if s.URL == "" {
		return nil
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%sURL: %q is not an http(s) URL", prefix, redactURL(s.URL))
	}
	if u.User != nil {
		return fmt.Errorf("%sURL: must not carry credentials; use the provider's credential variables", prefix)
	}
	if s.Timeout <= 0 {
		return fmt.Errorf("%sTIMEOUT: must be positive, got %s", prefix, s.Timeout)
	}
	if s.MaxConcurrent <= 0 {
		return fmt.Errorf("%sMAX_CONCURRENT: must be at least 1, got %d", prefix, s.MaxConcurrent)
	}
	if s.RatePerSecond < 0 {
		return fmt.Errorf("%sRATE: must not be negative, got %g", prefix, s.RatePerSecond)
	}
	return nil
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = url.User("REDACTED")
		return u.String()
	}
	return s
}

// HTTPClient returns an http.Client for s. TLS certificates are verified
// unless TLSInsecure is set.
func (s Settings) HTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: s.TLSInsecure} //nolint:gosec // opt-in only
	tr.MaxIdleConnsPerHost = max(s.MaxConcurrent, 2)
	return &http.Client{Timeout: s.Timeout, Transport: tr}
}

// Limiter bounds the calls in flight to one provider and their rate, so that
// a slow or rate-limiting provider holds up only its own work: a call that
// cannot get a slot within MaxWait fails with a transient "busy" error
// instead of waiting on, so the worker hands its event back to the queue and
// its slot to other providers' work.
type Limiter struct {
	slots chan struct{}
	rate  *rate.Limiter
	// MaxWait bounds the wait for a slot and the rate limit together.
	MaxWait time.Duration
}

// DefaultLimiterWait is the MaxWait of a new Limiter.
const DefaultLimiterWait = 5 * time.Second

// ErrProviderBusy is returned (transient) when a provider's call slots stay
// taken for MaxWait.
var ErrProviderBusy = errors.New("provider busy: every call slot taken")

// NewLimiter allows maxConcurrent calls at once and perSecond calls a second
// (0 = no rate limit).
func NewLimiter(maxConcurrent int, perSecond float64) *Limiter {
	l := &Limiter{slots: make(chan struct{}, max(maxConcurrent, 1)), MaxWait: DefaultLimiterWait}
	if perSecond > 0 {
		l.rate = rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
	}
	return l
}

// Acquire waits for a slot and the rate limit, at most MaxWait; the caller
// must call the returned release once. It fails, transiently, when ctx ends
// or MaxWait passes first.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	wait := l.MaxWait
	if wait <= 0 {
		wait = DefaultLimiterWait
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	select {
	case l.slots <- struct{}{}:
	case <-wctx.Done():
		if ctx.Err() != nil {
			return nil, events.AsTransient(fmt.Errorf("waiting for a provider slot: %w", ctx.Err()), 0)
		}
		return nil, events.AsTransient(fmt.Errorf("%w for %s", ErrProviderBusy, wait), wait)
	}
	if l.rate != nil {
		if err := l.rate.Wait(wctx); err != nil {
			<-l.slots
			if ctx.Err() == nil {
				return nil, events.AsTransient(fmt.Errorf("%w: rate limit for %s", ErrProviderBusy, wait), wait)
			}
			return nil, events.AsTransient(fmt.Errorf("waiting for the provider rate limit: %w", err), 0)
		}
	}
	return func() { <-l.slots }, nil
}

// ClassifyStatus classifies a non-success HTTP status: 408, 425, 429 and 5xx
// are transient (429 and 503 honour Retry-After), other 4xx are permanent.
// err describes the failure and is wrapped.
func ClassifyStatus(status int, h http.Header, err error) error {
	switch {
	case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable:
		return events.AsTransient(err, ParseRetryAfter(h.Get("Retry-After"), time.Now()))
	case status == http.StatusRequestTimeout || status == http.StatusTooEarly || status >= 500:
		return events.AsTransient(err, 0)
	default:
		return events.AsPermanent(err)
	}
}

// ParseRetryAfter reads a Retry-After header (seconds or an HTTP date); it
// returns zero when the header is absent or unreadable, and caps the delay at
// one hour.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), time.Hour)
}

// ClassifyTransport classifies an error from http.Client.Do: timeouts,
// refused or dropped connections are transient; a TLS certificate that does
// not verify is permanent (retrying will not fix it). The message never
// includes the request URL's query, which may carry credentials.
func ClassifyTransport(op string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // drop the URL: its query may hold credentials
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return events.AsPermanent(fmt.Errorf("%s: TLS certificate not trusted: %w", op, err))
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return events.AsTransient(fmt.Errorf("%s: %w", op, err), 0)
	}
	return events.AsTransient(fmt.Errorf("%s: %w", op, err), 0)
}
