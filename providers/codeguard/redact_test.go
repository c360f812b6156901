package codeguard_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/codeguard"
)

// Issue 10 point 5: every secret a request carried is scrubbed on every
// path: the customer's password echoed in a signup error, and the api-key
// echoed in 2xx replies of an unexpected shape (object() / bareInt()),
// raw or JSON-escaped.
func TestEverySecretRedactedOnEveryPath(t *testing.T) {
	const apiKey = "sekrit-key-abc"
	const pw = `Pa<ss>w0rd_1`
	signup := codeguard.CustomerSignup{Username: "ada@example.com", Password: pw, Name: "Ada", Company: "N/A",
		AddressLine1: "x", City: "x", State: "Not Applicable", Country: "GB", Zipcode: "1", PhoneCC: "44", Phone: "1", LangPref: "en"}
	for _, tc := range []struct {
		name string
		path string
		rep  reply
		call func(c *codeguard.Client) error
	}{
		{"password echoed in an error", codeguard.PathCustomerSignup,
			reply{400, `{"status":"ERROR","message":"password ` + pw + ` is too weak"}`},
			func(c *codeguard.Client) error { _, err := c.SignupCustomer(testCtx(t), signup); return err }},
		{"password JSON-escaped in an error", codeguard.PathCustomerSignup,
			reply{200, `{"status":"ERROR","message":"password Pa\u003css\u003ew0rd_1 rejected"}`},
			func(c *codeguard.Client) error { _, err := c.SignupCustomer(testCtx(t), signup); return err }},
		{"password in a 2xx that is not a number (bareInt)", codeguard.PathCustomerSignup,
			reply{200, `{"echo":"` + pw + `"}`},
			func(c *codeguard.Client) error { _, err := c.SignupCustomer(testCtx(t), signup); return err }},
		{"api-key in a 2xx that is not an object (object)", codeguard.PathDetails,
			reply{200, `["auth-userid=42&api-key=` + apiKey + `"]`},
			func(c *codeguard.Client) error { _, err := c.Details(testCtx(t), 5); return err }},
		{"api-key in a 2xx that is not a number (bareInt)", codeguard.PathOrderID,
			reply{200, `"no order for api-key ` + apiKey + `"`},
			func(c *codeguard.Client) error { _, _, err := c.OrderID(testCtx(t), "example.com"); return err }},
		{"api-key escaped in an object of the wrong shape", codeguard.PathDetails,
			reply{200, `{"entityid":"5","note":"\u0073ekrit-key-abc"}`},
			func(c *codeguard.Client) error { _, err := c.Details(testCtx(t), 5); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := canned(t, map[string]reply{tc.path: tc.rep})
			err := tc.call(c)
			if err == nil {
				t.Fatal("no error from a reply of the wrong shape")
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), events.ReplyOf(err)} {
				if strings.Contains(s, pw) || strings.Contains(s, `Pa\u003css\u003ew0rd_1`) || strings.Contains(s, apiKey) {
					t.Errorf("a secret leaked: %q", s)
				}
			}
		})
	}
}
