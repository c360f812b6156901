package storegrid_test

import (
	"context"
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

// FuzzReplyParsing answers every request of a customer signup (with pass
// key retrieval), a reseller signup, a suspension and Test Connection with
// one arbitrary reply: nothing may panic, and no error may hold the
// configured admin password, in its text or attached reply (issue 10).
// Seeds: testdata/fuzz and below.
func FuzzReplyParsing(f *testing.F) {
	providertest.FuzzReplies(f, providertest.ReplyFuzz{
		Seeds: []providertest.FuzzReply{
			{Status: 200, Body: `{"status":"OK","data":{"activationStatus":"true"}}`},
			{Status: 200, Body: `{"status":"OK","data":{"passKey":"pk-123"}}`},
			{Status: 200, Body: `{"status":"ERROR","code":"NOT_FOUND","message":"no such customer"}`},
			{Status: 200, Body: `{"status":"ERROR","code":"AUTH","message":"bad password {{pw}}"}`},
			{Status: 200, Body: `{"status":"ERROR","code":"AUTH","message":"bad password {{pwjson}}"}`},
			{Status: 503, Body: `{"status":"ERROR","code":"BUSY","message":"busy"}`},
			{Status: 500, Body: `<html>action=x&username=admin&password={{pwq}}</html>`},
			{Status: 200, Body: `{"status":"OK","data":{"version":"{{pw}}"}}`},
			{Status: 200, Body: `{"status":"OK","data":{"activationStatus":"maybe","x":"{{pw}}"}}`},
			{Status: 200, Body: `{"status":"weird","message":"{{pw}}"}`},
			{Status: 200, Body: `null`},
		},
		Echoes:  map[string]string{"pw": fuzzAdminPassword},
		Secrets: []string{fuzzAdminPassword},
		Timeout: 10 * time.Second,
		Start:   startStoreGridFuzz,
	})
}

// startStoreGridFuzz builds a StoreGrid provider against the fuzzed server
// at url and returns FuzzReplyParsing's calls.
func startStoreGridFuzz(f *testing.F, url string) func(context.Context, func(error, ...string)) {
	p, err := storegrid.New(storegrid.Config{Settings: providers.Settings{URL: url, Timeout: 2 * time.Second, MaxConcurrent: 1},
		Username: "admin", Password: fuzzAdminPassword}, zap.NewNop())
	if err != nil {
		f.Fatal(err)
	}
	return func(ctx context.Context, check func(error, ...string)) {
		run := func(a events.Action, serviceID int, settings map[string]string) {
			o := providertest.Fixture{Provider: p, Settings: settings}.Op(a, serviceID)
			if a == events.SignupReseller {
				o.ServiceID = 0
			}
			check(providertest.Attempt(ctx, p, o))
		}
		run(events.SignupCustomer, 1, customerSettings())
		run(events.SignupReseller, 0, resellerSettings())
		run(events.Suspend, 1, customerSettings())
		check(p.Check(ctx))
	}
}
