package ops_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/ops"
	"github.com/hookworker/hookworker/worker/workertest"
)

const testToken = "test-token-0123456789abcdef"

const testCatalog = `
products:
  - id: 1
    name: Backup 100 GB
    provider: sandbox
  - id: 2
    name: Always fails
    provider: sandbox
    settings: {fail: permanent}
  - id: 3
    name: Flaky
    provider: sandbox
    settings: {fail_first: 1}
  - id: 5
    name: Never up
    provider: sandbox
    settings: {fail_first: 1000}
`

// env is a real JetStream server, a running worker with the sandbox
// provider, and the ops page in front of them.
type env struct {
	t       testing.TB
	js      jetstream.JetStream
	sb      *sandbox.Provider
	w       *worker.Worker
	results *workertest.Results
	ops     *ops.Server
	srv     *httptest.Server
	opts    worker.Options
}

func newEnv(t testing.TB, cfg ops.Config) *env {
	t.Helper()
	ns := workertest.Server(t)
	_, js := workertest.Connect(t, ns.ClientURL())
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	o := workertest.Options()
	o.Concurrency, o.RetryMax, o.AttemptBudget, o.MaxDeliver, o.ProviderCheck = 2, 400*time.Millisecond, 0, 3, 200*time.Millisecond
	if _, _, err := worker.Setup(workertest.Context(t, 10*time.Second), js, o); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, js: js, sb: sandbox.New(), opts: o}
	e.results = workertest.CollectResults(t, js)
	e.w, err = worker.New(js, cat, map[string]worker.Provider{sandbox.Name: e.sb}, o, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)), nil)
	if err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, e.w)
	workertest.Eventually(t, 10*time.Second, "the worker to be ready", func() bool { return e.w.Ready() == nil })
	e.ops, err = ops.New(cfg, js, e.w, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.ops.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) event(typ events.Type, id string, data any) events.Envelope {
	e.t.Helper()
	env, err := events.NewEnvelope(id, typ, "main", time.Now(), data)
	if err != nil {
		e.t.Fatal(err)
	}
	return env
}

// order publishes an order with one service and returns its event id.
func (e *env) order(orderID, serviceID, productID int) string {
	e.t.Helper()
	env := e.event(events.OrderAccepted, fmt.Sprintf("whmcs:main:AcceptOrder:%d", orderID), events.OrderAcceptedData{
		OrderID: orderID, Client: events.Client{ID: 7, Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"},
		Services: []events.OrderedService{{ServiceID: serviceID, ProductID: productID, BillingCycle: "Annually", Domain: "example.com"}}})
	workertest.Publish(e.t, e.js, env)
	return env.ID
}

func (e *env) deadLetters() []worker.Entry {
	e.t.Helper()
	d, err := worker.OpenDeadLetters(workertest.Context(e.t, 5*time.Second), e.js)
	if err != nil {
		e.t.Fatal(err)
	}
	list, err := d.List(workertest.Context(e.t, 5*time.Second), worker.Filter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

// waitDeadLetters waits until the dead-letter stream holds n entries.
func (e *env) waitDeadLetters(n int) []worker.Entry {
	e.t.Helper()
	var list []worker.Entry
	workertest.Eventually(e.t, 15*time.Second, fmt.Sprintf("%d dead letters", n), func() bool {
		list = e.deadLetters()
		return len(list) == n
	})
	return list
}

// failedReplayable dead-letters an order whose first attempt fails
// permanently with a provider reply; a replay then succeeds.
func (e *env) failedReplayable(orderID, serviceID int) string {
	e.t.Helper()
	before := len(e.deadLetters())
	e.sb.FailNext(events.WithReply(events.Permanentf("sandbox: quota exceeded for reseller acme"), `{"status":403,"message":"quota exceeded"}`))
	id := e.order(orderID, serviceID, 1)
	e.waitDeadLetters(before + 1)
	return id
}

// client is a browser-like client: a cookie jar, no redirects followed,
// and optional credentials on every request.
type client struct {
	t     testing.TB
	base  string
	hc    *http.Client
	auth  func(*http.Request)
	csrf  string
	flash string
}

func (e *env) client(auth func(*http.Request)) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: e.t, base: e.srv.URL, auth: auth, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func (c *client) do(req *http.Request) (*http.Response, string) {
	c.t.Helper()
	if c.auth != nil {
		c.auth(req)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if m := csrfRe.FindStringSubmatch(string(b)); m != nil {
		c.csrf = m[1]
	}
	return res, string(b)
}

var csrfRe = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	return c.do(req)
}

// post sends a form; the CSRF token of the last page is added unless
// form already has one (use csrf_token="" to send none).
func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf_token"]; !ok {
		form.Set("csrf_token", c.csrf)
	} else if form.Get("csrf_token") == "" {
		form.Del("csrf_token")
	}
	req, _ := http.NewRequest(http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// follow posts and follows the 303 with a GET, returning the page.
func (c *client) follow(path string, form url.Values) (string, string) {
	c.t.Helper()
	res, body := c.post(path, form)
	if res.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("POST %s: status %d, want 303: %s", path, res.StatusCode, body)
	}
	loc := res.Header.Get("Location")
	res, body = c.get(loc)
	if res.StatusCode != http.StatusOK {
		c.t.Fatalf("GET %s after POST %s: status %d", loc, path, res.StatusCode)
	}
	return loc, body
}

var flashRe = regexp.MustCompile(`(?s)<div class="flash (ok|error)" role="status" id="flash">(.*?)</div>`)

func flashOf(body string) (kind, text string) {
	m := flashRe.FindStringSubmatch(body)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

func rowSeqs(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<td class="num"><a href="/dlq/(\d+)">`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func newRecorder(h http.Handler, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
