package catalog_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/catalog"
)

// planRequired is a validator like a real provider's: plan_id is required.
func planRequired(a events.Action, s map[string]string) error {
	if a == events.ChangePassword {
		return catalog.ErrUnsupported
	}
	if s["plan_id"] == "" {
		return errors.New(`setting "plan_id": is required`)
	}
	return nil
}

var validators = map[string]catalog.Validator{"sandbox": nil, "codeguard": planRequired}

func TestParseValid(t *testing.T) {
	c, err := catalog.Parse([]byte(`
client_added:
  - provider: sandbox
    action: signup_reseller
    settings: {storage: 1073741824, active: true}
products:
  - id: 12
    name: CodeGuard Basic
    provider: codeguard
    provision_on: invoice.paid
    settings: {plan_id: 229, ratio: 1.5}
  - id: 13
    provider: sandbox
`), "test", validators)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := c.Product(12)
	if !ok || p.Provider != "codeguard" || p.ProvisionOn != events.InvoicePaid || p.Signup != events.SignupCustomer || p.Settings["plan_id"] != "229" || p.Settings["ratio"] != "1.5" {
		t.Fatalf("product 12: %+v", p)
	}
	if q, _ := c.Product(13); q.ProvisionOn != events.OrderAccepted {
		t.Fatalf("default provision_on: %+v", q)
	}
	if r := c.ClientAdded[0]; r.Settings["active"] != "yes" || r.Settings["storage"] != "1073741824" {
		t.Fatalf("client_added settings %+v", r.Settings)
	}
	if got := fmt.Sprint(c.Providers()); got != "[codeguard sandbox]" {
		t.Fatal(got)
	}
	if c.IgnoreUnknown {
		t.Fatal("unknown products are rejected by default")
	}
}

func TestParseErrorsNameProductAndField(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad id", "products:\n  - id: 0\n    provider: sandbox\n", "products[0]: id"},
		{"duplicate", "products:\n  - id: 1\n    provider: sandbox\n  - id: 1\n    provider: sandbox\n", "product 1: listed twice"},
		{"unknown provider", "products:\n  - id: 4\n    provider: acronis\n", `product 4: provider: "acronis" is not a known provider`},
		{"no provider", "products:\n  - id: 4\n", "product 4: provider: is required"},
		{"provider setting", "products:\n  - id: 5\n    name: CG\n    provider: codeguard\n", `product 5 ("CG"): codeguard settings for signup_customer: setting "plan_id": is required`},
		{"provision_on", "products:\n  - id: 6\n    provider: sandbox\n    provision_on: whenever\n", "product 6: provision_on"},
		{"signup", "products:\n  - id: 7\n    provider: sandbox\n    signup: renew\n", "product 7: signup"},
		{"client_added action", "client_added:\n  - provider: sandbox\n    action: terminate\n", "client_added[0]: action"},
		{"unknown key", "products:\n  - id: 8\n    provider: sandbox\n    price: 5\n", `unknown key "price" in a product`},
		{"nested setting", "products:\n  - id: 9\n    provider: sandbox\n    settings: {a: {b: c}}\n", `product 9: settings: "a"`},
		{"unknown_products", "unknown_products: maybe\n", "unknown_products"},
		{"yaml", "products: [", "catalog test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Parse([]byte(tc.yaml), "test", validators)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	_, err := catalog.Load(filepath.Join(t.TempDir(), "missing.yaml"), validators)
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func ExampleLoad() {
	dir, _ := os.MkdirTemp("", "catalog")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "catalog.yaml")
	_ = os.WriteFile(path, []byte("products:\n  - id: 12\n    name: Backup 100 GB\n    provider: sandbox\n"), 0o600)
	c, err := catalog.Load(path, map[string]catalog.Validator{"sandbox": nil})
	if err != nil {
		panic(err)
	}
	p, _ := c.Product(12)
	fmt.Println(p.Name, p.Provider, p.Signup, p.ProvisionOn)
	// Output: Backup 100 GB sandbox signup_customer order.accepted
}
