package ops_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/ops"
	"github.com/hookworker/hookworker/worker/workertest"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  ops.Config
		want string // "" = valid
	}{
		{"loopback without credentials", ops.Config{Addr: "127.0.0.1:8080"}, ""},
		{"localhost without credentials", ops.Config{Addr: "localhost:8080"}, ""},
		{"ipv6 loopback", ops.Config{Addr: "[::1]:8080"}, ""},
		{"no address", ops.Config{}, ""},
		{"all interfaces", ops.Config{Addr: "0.0.0.0:8080"}, "HOOKWORKER_OPS_ADDR"},
		{"all interfaces names the token", ops.Config{Addr: "0.0.0.0:8080"}, "HOOKWORKER_OPS_TOKEN"},
		{"empty host", ops.Config{Addr: ":8080"}, "HOOKWORKER_OPS_ADDR"},
		{"lan address", ops.Config{Addr: "10.1.2.3:8080"}, "HOOKWORKER_OPS_ADDR"},
		{"all interfaces with token", ops.Config{Addr: "0.0.0.0:8080", Token: testToken}, ""},
		{"all interfaces with basic auth", ops.Config{Addr: "0.0.0.0:8080", User: "ops", Password: "pw"}, ""},
		{"short token", ops.Config{Addr: "0.0.0.0:8080", Token: "short"}, "HOOKWORKER_OPS_TOKEN"},
		{"user without password", ops.Config{Addr: "0.0.0.0:8080", User: "ops"}, "HOOKWORKER_OPS_PASSWORD"},
		{"not host:port", ops.Config{Addr: "8080"}, "HOOKWORKER_OPS_ADDR"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("Validate = %v, want an error naming %s", err, c.want)
			}
			if err != nil && (strings.Contains(err.Error(), "short") && c.cfg.Token == "short") {
				t.Fatalf("error %q contains the token", err)
			}
		})
	}
	if _, err := ops.New(ops.Config{Addr: "0.0.0.0:8080"}, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "HOOKWORKER_OPS_TOKEN") {
		t.Fatalf("New accepted 0.0.0.0 without credentials: %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken, User: "ops", Password: "correct horse battery"})

	anon := e.client(nil)
	res, body := anon.get("/")
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, `action="/login"`) {
		t.Fatalf("without credentials: %d, want 401 with the login form", res.StatusCode)
	}
	if h := res.Header.Values("WWW-Authenticate"); len(h) != 2 {
		t.Errorf("WWW-Authenticate = %q", h)
	}
	for _, p := range []string{"/dlq/1", "/nope", "/?token=wrong-token-0123456789"} {
		if res, _ := anon.get(p); res.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d", p, res.StatusCode)
		}
	}
	if res, _ := e.client(bearer("wrong-token-0123456789")).get("/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", res.StatusCode)
	}
	if res, _ := anon.post("/dlq/1/replay", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without credentials: %d", res.StatusCode)
	}

	res, body = e.client(bearer(testToken)).get("/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `id="queue"`) {
		t.Fatalf("with token: %d", res.StatusCode)
	}
	for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, testToken) || strings.Contains(body, "correct horse") {
		t.Error("the page shows a credential")
	}

	basic := e.client(func(r *http.Request) { r.SetBasicAuth("ops", "correct horse battery") })
	if res, _ := basic.get("/"); res.StatusCode != http.StatusOK {
		t.Errorf("basic auth: %d", res.StatusCode)
	}
	if res, _ := e.client(func(r *http.Request) { r.SetBasicAuth("ops", "wrong") }).get("/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", res.StatusCode)
	}
	if res, _ := e.client(func(r *http.Request) { r.SetBasicAuth("root", "correct horse battery") }).get("/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong user: %d", res.StatusCode)
	}

	// ?token= once: a session cookie, and a redirect that drops the token.
	browser := e.client(nil)
	res, _ = browser.get("/?token=" + testToken + "&class=permanent")
	if res.StatusCode != http.StatusSeeOther || strings.Contains(res.Header.Get("Location"), "token") || res.Header.Get("Location") != "/?class=permanent" {
		t.Fatalf("?token=: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "hookworker_ops_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || strings.Contains(session.Value, testToken) {
		t.Fatalf("session cookie %+v", session)
	}
	if res, body := browser.get("/"); res.StatusCode != http.StatusOK || !strings.Contains(body, "Sign out") {
		t.Fatalf("with the session cookie: %d", res.StatusCode)
	}
	// A tampered session cookie is refused.
	forged := e.client(func(r *http.Request) {
		r.AddCookie(&http.Cookie{Name: "hookworker_ops_session", Value: session.Value[:len(session.Value)-2] + "xx"})
	})
	if res, _ := forged.get("/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("forged session: %d", res.StatusCode)
	}
	// Sign out ends the session.
	if res, _ := browser.post("/logout", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	if res, _ := browser.get("/"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("after sign out: %d", res.StatusCode)
	}

	// The login form: CSRF-protected, wrong token refused, right one signs in.
	form := e.client(nil)
	form.get("/login")
	if res, _ := form.post("/login", url.Values{"token": {testToken}, "csrf_token": {""}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("login without CSRF token: %d", res.StatusCode)
	}
	if res, body := form.post("/login", url.Values{"token": {"not-the-token-at-all"}}); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not right") {
		t.Errorf("login with a wrong token: %d", res.StatusCode)
	}
	res, _ = form.post("/login", url.Values{"token": {testToken}, "next": {"//evil.example/"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("login: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := form.get("/"); res.StatusCode != http.StatusOK {
		t.Errorf("after login: %d", res.StatusCode)
	}
}

func TestWithoutCredentialsOnlyLoopbackHosts(t *testing.T) {
	e := newEnv(t, ops.Config{Addr: "127.0.0.1:0"})
	c := e.client(nil)
	if res, _ := c.get("/"); res.StatusCode != http.StatusOK {
		t.Fatalf("loopback host: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
	req.Host = "rebound.attacker.example:8080"
	if res, _ := c.do(req); res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Host: %d, want 403", res.StatusCode)
	}
}

func TestStateChangesNeedCSRFToken(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	e.order(100, 1000, 2)
	dl := e.waitDeadLetters(1)
	seq := strconv.FormatUint(dl[0].Seq, 10)

	c := e.client(bearer(testToken))
	c.get("/") // sets the CSRF cookie
	good := c.csrf
	if good == "" {
		t.Fatal("no CSRF token in the page")
	}
	for name, f := range map[string]func() (*http.Response, string){
		"no token": func() (*http.Response, string) { return c.post("/dlq/"+seq+"/replay", url.Values{"csrf_token": {""}}) },
		"wrong token": func() (*http.Response, string) {
			return c.post("/dlq/"+seq+"/replay", url.Values{"csrf_token": {"x" + good}})
		},
		"discard": func() (*http.Response, string) {
			return c.post("/dlq/"+seq+"/discard", url.Values{"csrf_token": {""}, "confirm": {"yes"}})
		},
		"bulk": func() (*http.Response, string) {
			return c.post("/dlq/bulk", url.Values{"csrf_token": {""}, "action": {"discard"}, "confirm": {"yes"}, "seq": {seq}})
		},
		"no cookie": func() (*http.Response, string) {
			fresh := e.client(bearer(testToken))
			return fresh.post("/dlq/"+seq+"/replay", url.Values{"csrf_token": {good}})
		},
		"cross origin": func() (*http.Response, string) {
			req, _ := http.NewRequest(http.MethodPost, c.base+"/dlq/"+seq+"/replay", strings.NewReader(url.Values{"csrf_token": {good}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", "https://evil.example")
			return c.do(req)
		},
	} {
		if res, _ := f(); res.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.StatusCode)
		}
	}
	if res, _ := c.get("/dlq/" + seq + "/replay"); res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET replay: %d, want 404 or 405", res.StatusCode)
	}
	if n := len(e.deadLetters()); n != 1 {
		t.Fatalf("dead letters after refused requests = %d, want 1", n)
	}
}

func TestReplayThroughTheForm(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	id := e.failedReplayable(101, 1010)
	dl := e.deadLetters()
	seq := strconv.FormatUint(dl[0].Seq, 10)
	c := e.client(bearer(testToken))

	res, body := c.get("/")
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `href="/dlq/`+seq+`"`) || !strings.Contains(body, id) {
		t.Fatalf("overview does not list dead letter %s", seq)
	}
	res, body = c.get("/dlq/" + seq)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("detail: %d", res.StatusCode)
	}
	for _, want := range []string{
		"quota exceeded for reseller acme",                   // the attempt's error
		`{&#34;status&#34;:403,&#34;message&#34;:&#34;quota`, // the provider's reply, escaped
		`&#34;order_id&#34;: 101`,                            // the original event, indented
		"keeps its idempotency key",
		events.ServiceKey("main", 1010, events.SignupCustomer), // the operation record
		`<span class="tag permanent">failed</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("detail page lacks %q", want)
		}
	}

	loc, body := c.follow("/dlq/"+seq+"/replay", nil)
	if loc != "/" {
		t.Errorf("redirected to %q", loc)
	}
	if kind, text := flashOf(body); kind != "ok" || !strings.Contains(text, "Replayed dead letter #"+seq) || !strings.Contains(text, "idempotency key") {
		t.Errorf("flash %q %q", kind, text)
	}
	// The flash is shown once.
	if _, body := c.get("/"); strings.Contains(body, `id="flash"`) {
		t.Error("the flash message is shown again")
	}
	// The event was re-published and this time succeeded.
	res2 := e.results.WaitFor(t, events.ProvisioningSucceeded, 1, 15*time.Second)
	if res2[0].Data.SourceEventID != id {
		t.Errorf("succeeded result for %q, want %q", res2[0].Data.SourceEventID, id)
	}
	if left := e.deadLetters(); len(left) != 0 {
		t.Errorf("dead letters after replay: %+v", left)
	}
	if res, _ := c.get("/dlq/" + seq); res.StatusCode != http.StatusNotFound {
		t.Errorf("detail of a replayed entry: %d, want 404", res.StatusCode)
	}
	// Replaying again fails cleanly.
	_, body = c.follow("/dlq/"+seq+"/replay", nil)
	if kind, _ := flashOf(body); kind != "error" {
		t.Errorf("second replay flash %q", kind)
	}
	// The replayed message carries the original event unchanged.
	st, _ := e.js.Stream(context.Background(), worker.EventsStream)
	m, err := st.GetLastMsgForSubject(context.Background(), "whmcs.main.order.accepted")
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Hookworker-Replay-Of") != seq || string(m.Data) != string(dl[0].Original()) {
		t.Errorf("replayed message %v %s", m.Header, m.Data)
	}
}

func TestDiscardThroughTheForm(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	e.order(102, 1020, 2)
	seq := strconv.FormatUint(e.waitDeadLetters(1)[0].Seq, 10)
	c := e.client(bearer(testToken))
	c.get("/dlq/" + seq)

	loc, body := c.follow("/dlq/"+seq+"/discard", nil) // box not ticked
	if loc != "/dlq/"+seq {
		t.Errorf("redirected to %q", loc)
	}
	if kind, text := flashOf(body); kind != "error" || !strings.Contains(text, "Nothing was discarded") {
		t.Errorf("flash %q %q", kind, text)
	}
	if n := len(e.deadLetters()); n != 1 {
		t.Fatalf("unconfirmed discard removed the entry")
	}
	_, body = c.follow("/dlq/"+seq+"/discard", url.Values{"confirm": {"yes"}})
	if kind, text := flashOf(body); kind != "ok" || !strings.Contains(text, "Discarded dead letter #"+seq) {
		t.Errorf("flash %q %q", kind, text)
	}
	if n := len(e.deadLetters()); n != 0 {
		t.Fatalf("dead letters after discard = %d", n)
	}
	if !strings.Contains(body, "The dead-letter stream is empty") {
		t.Error("overview still lists entries")
	}
}

func TestFiltersAndBulkActions(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	ctx := workertest.Context(t, 10*time.Second)
	e.order(103, 1030, 2) // permanent, order.accepted, main
	e.waitDeadLetters(1)
	e.order(104, 1040, 5) // transient, gives up after 3 deliveries
	e.waitDeadLetters(2)
	// A malformed message from another instance: permanent, client.added, other.
	if _, err := e.js.Publish(ctx, "whmcs.other.client.added", []byte(`<script>alert("x")</script>`)); err != nil {
		t.Fatal(err)
	}
	all := e.waitDeadLetters(3)
	bySeq := map[string]worker.Entry{}
	for _, d := range all {
		bySeq[strconv.FormatUint(d.Seq, 10)] = d
	}
	c := e.client(bearer(testToken))
	check := func(query string, want func(worker.Entry) bool) {
		t.Helper()
		res, body := c.get("/?" + query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /?%s: %d", query, res.StatusCode)
		}
		got := rowSeqs(body)
		n := 0
		for _, d := range all {
			if want(d) {
				n++
			}
		}
		if len(got) != n {
			t.Errorf("?%s: rows %v, want %d", query, got, n)
		}
		for _, s := range got {
			if !want(bySeq[s]) {
				t.Errorf("?%s lists #%s (%s %s %s)", query, s, bySeq[s].EventType, bySeq[s].Source, bySeq[s].ErrorClass)
			}
		}
	}
	check("", func(worker.Entry) bool { return true })
	check("class=transient", func(d worker.Entry) bool { return d.ErrorClass == events.Transient })
	check("class=permanent", func(d worker.Entry) bool { return d.ErrorClass == events.Permanent })
	check("type=order.accepted", func(d worker.Entry) bool { return d.EventType == events.OrderAccepted })
	check("source=other", func(d worker.Entry) bool { return d.Source == "other" })
	check("source=main&class=permanent", func(d worker.Entry) bool { return d.Source == "main" && d.ErrorClass == events.Permanent })
	check("type=service.suspended", func(worker.Entry) bool { return false })

	// The raw, non-JSON entry is shown escaped.
	for s, d := range bySeq {
		if d.Source == "other" {
			_, body := c.get("/dlq/" + s)
			if strings.Contains(body, `<script>alert`) || !strings.Contains(body, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
				t.Error("the raw message is not escaped on the detail page")
			}
			if !strings.Contains(body, "not JSON") {
				t.Error("the raw message is not marked as such")
			}
		}
	}

	// Bulk discard of the permanent ones: a confirmation page first.
	c.get("/?class=permanent")
	res, body := c.post("/dlq/bulk", url.Values{"action": {"discard"}, "class": {"permanent"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Discard 2 dead letters?") {
		t.Fatalf("bulk discard confirmation: %d %s", res.StatusCode, body)
	}
	if n := len(e.deadLetters()); n != 3 {
		t.Fatalf("the confirmation page discarded entries")
	}
	if !strings.Contains(body, `href="/?class=permanent#dead-letters">Cancel`) {
		t.Error("Cancel does not lead back to the filtered table")
	}
	confirm := url.Values{"action": {"discard"}, "class": {"permanent"}, "confirm": {"yes"}}
	for s, d := range bySeq {
		if d.ErrorClass == events.Permanent {
			confirm.Add("seq", s)
		}
	}
	_, body = c.follow("/dlq/bulk", confirm)
	if kind, text := flashOf(body); kind != "ok" || !strings.Contains(text, "Discarded 2 dead letters") {
		t.Errorf("flash %q %q", kind, text)
	}
	left := e.deadLetters()
	if len(left) != 1 || left[0].ErrorClass != events.Transient {
		t.Fatalf("left %+v", left)
	}
	// A stale confirmation (an entry that no longer matches) touches nothing.
	stale := url.Values{"action": {"discard"}, "class": {"permanent"}, "confirm": {"yes"}, "seq": {strconv.FormatUint(left[0].Seq, 10)}}
	_, body = c.follow("/dlq/bulk", stale)
	if _, text := flashOf(body); !strings.Contains(text, "Discarded 0") {
		t.Errorf("stale bulk flash %q", text)
	}
	// Bulk replay of the rest: the event comes back (and is dead-lettered again
	// after its retries, as the provider is still down).
	res, body = c.post("/dlq/bulk", url.Values{"action": {"replay"}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, "Replay 1 dead letter?") || !strings.Contains(body, "keeps its idempotency key") {
		t.Fatalf("bulk replay confirmation: %d", res.StatusCode)
	}
	_, body = c.follow("/dlq/bulk", url.Values{"action": {"replay"}, "confirm": {"yes"}, "seq": {strconv.FormatUint(left[0].Seq, 10)}})
	if kind, text := flashOf(body); kind != "ok" || !strings.Contains(text, "Replayed 1 dead letter.") {
		t.Errorf("flash %q %q", kind, text)
	}
	st, _ := e.js.Stream(ctx, worker.EventsStream)
	m, err := st.GetLastMsgForSubject(ctx, "whmcs.main.order.accepted")
	if err != nil || m.Header.Get("Hookworker-Replay-Of") != strconv.FormatUint(left[0].Seq, 10) {
		t.Errorf("no replayed event on the events stream: %v", err)
	}
}

func TestOverviewShowsQueueRatesAndFailures(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	e.order(110, 1100, 1)
	e.order(111, 1110, 1)
	e.order(112, 1120, 3) // fails once (will retry), then succeeds
	e.results.WaitFor(t, events.ProvisioningSucceeded, 3, 15*time.Second)
	e.order(113, 1130, 2)
	e.waitDeadLetters(1)
	e.results.WaitFor(t, events.ProvisioningDeadLettered, 1, 10*time.Second)

	_, body := e.client(bearer(testToken)).get("/")
	for _, want := range []string{
		`<td>Last 5 minutes</td>
      <td class="num">3</td>`,
		`<span class="tag failed">1</span>`,
		`<span class="tag dead_lettered">1</span>`,
		`<div class="stat alert" id="stat-dead-letters"><div class="label">Dead letters</div><div class="value">1</div>`,
		"sandbox: simulated outage",                // the failed attempt
		"sandbox: product 2 is configured to fail", // the dead letter
		"will retry",
		`<span class="pill ok">ready</span>`,
		`<span class="pill ok" title="up">sandbox</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %q", want)
		}
	}
	// Rates are read with a short-lived consumer that is removed again.
	st, _ := e.js.Stream(context.Background(), worker.ResultsStream)
	names := st.ConsumerNames(context.Background())
	var left []string
	for n := range names.Name() {
		left = append(left, n)
	}
	if len(left) > 1 { // the test's own results collector
		t.Errorf("consumers left on the results stream: %v", left)
	}
}

func TestNoWorkerStatusSource(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	s, err := ops.New(ops.Config{Token: testToken}, e.js, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(s.Handler(), "/")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "readiness not known here") {
		t.Fatalf("%d", rec.Code)
	}
}

func TestSecretLookingFieldsAreHidden(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	body := []byte(`{"id":"x9","type":"order.accepted","spec_version":"1.0","occurred_at":"2026-01-01T00:00:00Z","source":"main","data":{"order_id":0,"api_key":"SEKRIT-1","nested":[{"Password":"SEKRIT-2"}]}}`)
	if _, err := e.js.Publish(workertest.Context(t, 5*time.Second), "whmcs.main.order.accepted", body); err != nil {
		t.Fatal(err)
	}
	seq := strconv.FormatUint(e.waitDeadLetters(1)[0].Seq, 10)
	_, page := e.client(bearer(testToken)).get("/dlq/" + seq)
	if strings.Contains(page, "SEKRIT") || !strings.Contains(page, `&#34;api_key&#34;: &#34;[hidden]&#34;`) {
		t.Errorf("secret-looking fields are shown:\n%s", page)
	}
}

func TestListenAndServeShutsDownOnCancel(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	s, err := ops.New(ops.Config{Addr: "127.0.0.1:0", Token: testToken}, e.js, e.w, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Fatalf("ListenAndServe: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
}

func TestRatesReadABoundedTail(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	ctx := workertest.Context(t, 30*time.Second)
	for i := range 2100 {
		env, err := events.NewEnvelope("r"+strconv.Itoa(i), events.ProvisioningSucceeded, "main", time.Now(),
			events.ResultData{SourceEventID: "e" + strconv.Itoa(i), OperationKey: "k", Action: events.Renew, Provider: "sandbox"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(env)
		if _, err := e.js.PublishAsync(events.ResultSubject(events.OutcomeSucceeded, "main", 1+i%50), b); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-e.js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing timed out")
	}
	_, body := e.client(bearer(testToken)).get("/")
	if !strings.Contains(body, "from the newest 2,000 result events") || !strings.Contains(body, `<td class="num">2,000</td>`) ||
		!strings.Contains(body, "counts are a lower bound") {
		t.Errorf("rates are not bounded to the newest 2000 results")
	}
}

func TestForgedFlashIsIgnored(t *testing.T) {
	e := newEnv(t, ops.Config{Token: testToken})
	c := e.client(func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+testToken)
		r.AddCookie(&http.Cookie{Name: "hookworker_ops_flash", Value: "b2t8WW91ciBhY2NvdW50IGlzIGxvY2tlZA.bogus"})
	})
	if _, body := c.get("/"); strings.Contains(body, `id="flash"`) {
		t.Error("an unsigned flash message is shown")
	}
}
