package codeguard_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/providertest"
)

// The secrets a fuzzed reply may echo: the api-key every request carries
// and the customer password customers/signup.json carries.
const (
	fuzzAPIKey   = "Api-K3y-0123456789abc"
	fuzzPassword = `Cu5t<pw>"x_9&`
)

// FuzzReplyParsing feeds arbitrary replies (status and body) to every call
// of the LogicBoxes client: no reply may panic it, and no error it returns
// may hold the configured api-key (or, for the customer signup, the
// customer password it sent), in its text or attached reply (issue 10). Seeds: testdata/fuzz/FuzzReplyParsing and below.
func FuzzReplyParsing(f *testing.F) {
	providertest.FuzzReplies(f, providertest.ReplyFuzz{
		Seeds: []providertest.FuzzReply{
			{Status: 200, Body: `80000001`},
			{Status: 200, Body: `"80000001"`},
			{Status: 200, Body: `{"entityid":"80000001","currentstatus":"Active","endtime":"1767225600","planid":"229"}`},
			{Status: 200, Body: `{"status":"ERROR","message":"Invalid api-key {{key}}"}`},
			{Status: 400, Body: `{"status":"error","error":"password {{pw}} too weak"}`},
			{Status: 200, Body: `{"status":"ERROR","message":"password {{pwjson}} too weak"}`},
			{Status: 500, Body: `<html>auth-userid=1&api-key={{key}}&passwd={{pwq}}</html>`},
			{Status: 200, Body: `["{{key}}"]`},
			{Status: 200, Body: `{"echo":"{{pw}}","eaqid":"x"}`},
			{Status: 200, Body: `{"recsonpage":"1","recsindb":"1","1":{"orders.orderid":"1","entity.description":"{{key}}"}}`},
			{Status: 200, Body: `{"codeguard":{"plans":{"229":{"add":{"12":"{{key}}"}}}}}`},
			{Status: 503, Body: ``},
			{Status: 200, Body: `null`},
		},
		Echoes: map[string]string{"key": fuzzAPIKey, "pw": fuzzPassword},
		// Each error is checked for the configured api-key and for the
		// secrets of the request that got the reply (only the signup
		// carries the customer password).
		Secrets: []string{fuzzAPIKey},
		Timeout: 5 * time.Second,
		Start:   startCodeGuardFuzz,
	})
}

// startCodeGuardFuzz builds a LogicBoxes client against the fuzzed server
// at url and returns FuzzReplyParsing's calls: every call of the client.
func startCodeGuardFuzz(f *testing.F, url string) func(context.Context, func(error, ...string)) {
	c, err := codeguard.NewClient(codeguard.Config{
		Settings:   providers.Settings{URL: url + "/api", Timeout: 2 * time.Second, MaxConcurrent: 1},
		AuthUserID: "42", APIKey: fuzzAPIKey,
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	return func(ctx context.Context, check func(error, ...string)) {
		signup := codeguard.CustomerSignup{Username: "ada@example.com", Password: fuzzPassword, Name: "Ada", Company: "N/A",
			AddressLine1: "x", City: "x", State: "Not Applicable", Country: "GB", Zipcode: "1", PhoneCC: "44", Phone: "1", LangPref: "en"}
		_, err := c.SignupCustomer(ctx, signup)
		check(err, fuzzPassword)
		_, _, err = c.CustomerByUsername(ctx, "ada@example.com")
		check(err)
		_, err = c.Add(ctx, codeguard.AddRequest{DomainName: "example.com", CustomerID: 1, PlanID: 229, Months: 12, InvoiceOption: "NoInvoice"})
		check(err)
		_, err = c.Renew(ctx, codeguard.RenewRequest{OrderID: 1, Months: 12, InvoiceOption: "NoInvoice"})
		check(err)
		_, err = c.Details(ctx, 1)
		check(err)
		_, _, err = c.OrderID(ctx, "example.com")
		check(err)
		_, err = c.Search(ctx, codeguard.SearchRequest{DomainName: "example.com"})
		check(err)
		_, err = c.CustomerPrice(ctx, 1)
		check(err)
		_, _, err = c.PlanDetails(ctx)
		check(err)
	}
}
