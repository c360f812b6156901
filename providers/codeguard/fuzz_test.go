package codeguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
)

// The secrets a fuzzed reply may echo: the api-key every request carries
// and the customer password customers/signup.json carries.
const (
	fuzzAPIKey   = "Api-K3y-0123456789abc"
	fuzzPassword = `Cu5t<pw>"x_9&`
)

// cannedReply is a server that answers every request with one reply.
type cannedReply struct {
	mu     sync.Mutex
	status int
	body   []byte
}

func (c *cannedReply) set(status int, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status, c.body = status, body
}

func (c *cannedReply) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	status, body := c.status, c.body
	c.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// secretForms are the forms of each secret that must never appear in an
// error: as configured, JSON-escaped and URL-encoded.
func secretForms(secrets ...string) []string {
	var out []string
	for _, s := range secrets {
		j, _ := json.Marshal(s)
		out = append(out, s, strings.Trim(string(j), `"`), url.QueryEscape(s))
	}
	return out
}

// expand puts the secrets into a fuzzed body where it has placeholders, as
// an echoing server would.
func expand(body []byte) []byte {
	j, _ := json.Marshal(fuzzPassword)
	r := strings.NewReplacer("{{key}}", fuzzAPIKey, "{{pw}}", fuzzPassword,
		"{{pwjson}}", strings.Trim(string(j), `"`), "{{pwq}}", url.QueryEscape(fuzzPassword))
	return []byte(r.Replace(string(body)))
}

// FuzzReplyParsing feeds arbitrary replies (status and body) to every call
// of the LogicBoxes client: no reply may panic it, and no error it returns
// may hold the configured api-key (or, for the customer signup, the
// customer password it sent), in its text or attached reply (issue 10). Seeds: testdata/fuzz/FuzzReplyParsing and below.
func FuzzReplyParsing(f *testing.F) {
	for _, seed := range []struct {
		status uint16
		body   string
	}{
		{200, `80000001`},
		{200, `"80000001"`},
		{200, `{"entityid":"80000001","currentstatus":"Active","endtime":"1767225600","planid":"229"}`},
		{200, `{"status":"ERROR","message":"Invalid api-key {{key}}"}`},
		{400, `{"status":"error","error":"password {{pw}} too weak"}`},
		{200, `{"status":"ERROR","message":"password {{pwjson}} too weak"}`},
		{500, `<html>auth-userid=1&api-key={{key}}&passwd={{pwq}}</html>`},
		{200, `["{{key}}"]`},
		{200, `{"echo":"{{pw}}","eaqid":"x"}`},
		{200, `{"recsonpage":"1","recsindb":"1","1":{"orders.orderid":"1","entity.description":"{{key}}"}}`},
		{200, `{"codeguard":{"plans":{"229":{"add":{"12":"{{key}}"}}}}}`},
		{503, ``},
		{200, `null`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	canned := &cannedReply{}
	hs := httptest.NewServer(canned)
	f.Cleanup(hs.Close)
	c, err := codeguard.NewClient(codeguard.Config{
		Settings:   providers.Settings{URL: hs.URL + "/api", Timeout: 2 * time.Second, MaxConcurrent: 1},
		AuthUserID: "42", APIKey: fuzzAPIKey,
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	keyForms, allForms := secretForms(fuzzAPIKey), secretForms(fuzzAPIKey, fuzzPassword)
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		canned.set(200+int(status)%400, expand(body))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		signup := codeguard.CustomerSignup{Username: "ada@example.com", Password: fuzzPassword, Name: "Ada", Company: "N/A",
			AddressLine1: "x", City: "x", State: "Not Applicable", Country: "GB", Zipcode: "1", PhoneCC: "44", Phone: "1", LangPref: "en"}
		// Each error is checked for the configured api-key and for the
		// secrets of the request that got the reply (only the signup
		// carries the customer password).
		type checked struct {
			err   error
			forms []string
		}
		var errs []checked
		collect := func(err error) {
			if err != nil {
				errs = append(errs, checked{err, keyForms})
			}
		}
		if _, err := c.SignupCustomer(ctx, signup); err != nil {
			errs = append(errs, checked{err, allForms})
		}
		var err error
		_, _, err = c.CustomerByUsername(ctx, "ada@example.com")
		collect(err)
		_, err = c.Add(ctx, codeguard.AddRequest{DomainName: "example.com", CustomerID: 1, PlanID: 229, Months: 12, InvoiceOption: "NoInvoice"})
		collect(err)
		_, err = c.Renew(ctx, codeguard.RenewRequest{OrderID: 1, Months: 12, InvoiceOption: "NoInvoice"})
		collect(err)
		_, err = c.Details(ctx, 1)
		collect(err)
		_, _, err = c.OrderID(ctx, "example.com")
		collect(err)
		_, err = c.Search(ctx, codeguard.SearchRequest{DomainName: "example.com"})
		collect(err)
		_, err = c.CustomerPrice(ctx, 1)
		collect(err)
		_, _, err = c.PlanDetails(ctx)
		collect(err)
		for _, e := range errs {
			err := e.err
			_ = events.ClassOf(err)
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err)} {
				for _, s := range e.forms {
					if bytes.Contains([]byte(text), []byte(s)) {
						t.Fatalf("a secret (%q) is in an error: %q", s, text)
					}
				}
			}
		}
	})
}
