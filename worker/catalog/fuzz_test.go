package catalog_test

import (
	"testing"

	"github.com/hookworker/hookworker/worker/catalog"
)

// FuzzParse: no catalog file makes Parse panic, and a catalog it accepts
// routes only to the providers it was told about. Seeds:
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte("products:\n  - id: 1\n    name: Backup\n    provider: sandbox\n"))
	f.Add([]byte("unknown_products: ignore\nclient_added:\n  - provider: sandbox\n    action: signup_reseller\nproducts:\n  - {id: 2, provider: sandbox, provision_on: invoice.paid, settings: {quota: 100, fail: permanent}}\n"))
	f.Add([]byte("products:\n  - id: 1\n    provider: nowhere\n"))
	f.Add([]byte("products: [{id: -1}]"))
	f.Add([]byte("products:\n  - id: 1\n    provider: sandbox\n    settings: {nested: {a: 1}}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := catalog.Parse(b, "fuzz", map[string]catalog.Validator{"sandbox": nil})
		if err != nil {
			if c != nil {
				t.Fatal("a catalog and an error")
			}
			return
		}
		for _, p := range c.Providers() {
			if p != "sandbox" {
				t.Fatalf("routes to unconfigured provider %q", p)
			}
		}
		for _, p := range c.Products() {
			if p.ID <= 0 || p.Provider != "sandbox" || !p.Signup.IsSignup() {
				t.Fatalf("accepted product %+v", p)
			}
			if q, ok := c.Product(p.ID); !ok || q.ID != p.ID {
				t.Fatalf("product %d not found by id", p.ID)
			}
		}
	})
}
