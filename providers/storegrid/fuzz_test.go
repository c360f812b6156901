package storegrid_test

import (
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

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/providertest"
	"github.com/hookworker/hookworker/providers/storegrid"
)

// fuzzAdminPassword is the configured secret every request carries.
const fuzzAdminPassword = `Adm1n<pa"ss>&word`

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

func adminForms() []string {
	j, _ := json.Marshal(fuzzAdminPassword)
	return []string{fuzzAdminPassword, strings.Trim(string(j), `"`), url.QueryEscape(fuzzAdminPassword)}
}

// expand puts the admin password into a fuzzed body where it has
// placeholders, as an echoing server would.
func expand(body []byte) []byte {
	f := adminForms()
	return []byte(strings.NewReplacer("{{pw}}", f[0], "{{pwjson}}", f[1], "{{pwq}}", f[2]).Replace(string(body)))
}

// FuzzReplyParsing answers every request of a customer signup (with pass
// key retrieval), a reseller signup, a suspension and Test Connection with
// one arbitrary reply: nothing may panic, and no error may hold the
// configured admin password, in its text or attached reply (issue 10).
// Seeds: testdata/fuzz and below.
func FuzzReplyParsing(f *testing.F) {
	for _, seed := range []struct {
		status uint16
		body   string
	}{
		{200, `{"status":"OK","data":{"activationStatus":"true"}}`},
		{200, `{"status":"OK","data":{"passKey":"pk-123"}}`},
		{200, `{"status":"ERROR","code":"NOT_FOUND","message":"no such customer"}`},
		{200, `{"status":"ERROR","code":"AUTH","message":"bad password {{pw}}"}`},
		{200, `{"status":"ERROR","code":"AUTH","message":"bad password {{pwjson}}"}`},
		{503, `{"status":"ERROR","code":"BUSY","message":"busy"}`},
		{500, `<html>action=x&username=admin&password={{pwq}}</html>`},
		{200, `{"status":"OK","data":{"version":"{{pw}}"}}`},
		{200, `{"status":"OK","data":{"activationStatus":"maybe","x":"{{pw}}"}}`},
		{200, `{"status":"weird","message":"{{pw}}"}`},
		{200, `null`},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	canned := &cannedReply{}
	hs := httptest.NewServer(canned)
	f.Cleanup(hs.Close)
	p, err := storegrid.New(storegrid.Config{Settings: providers.Settings{URL: hs.URL, Timeout: 2 * time.Second, MaxConcurrent: 1},
		Username: "admin", Password: fuzzAdminPassword}, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	forms := adminForms()
	f.Fuzz(func(t *testing.T, status uint16, body []byte) {
		canned.set(200+int(status)%400, expand(body))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		run := func(a events.Action, serviceID int, settings map[string]string) {
			o := providertest.Fixture{Provider: p, Settings: settings}.Op(a, serviceID)
			if a == events.SignupReseller {
				o.ServiceID = 0
			}
			plan, err := p.Prepare(ctx, o)
			if err == nil {
				o.Plan = plan
				if _, _, err = p.Lookup(ctx, o); err == nil {
					_, err = p.Apply(ctx, o)
				}
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		run(events.SignupCustomer, 1, customerSettings())
		run(events.SignupReseller, 0, resellerSettings())
		run(events.Suspend, 1, customerSettings())
		if err := p.Check(ctx); err != nil {
			errs = append(errs, err)
		}
		for _, err := range errs {
			_ = events.ClassOf(err)
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err)} {
				for _, s := range forms {
					if strings.Contains(text, s) {
						t.Fatalf("the admin password (%q) is in an error: %q", s, text)
					}
				}
			}
		}
	})
}
