package catalog_test

import (
	"strings"
	"testing"

	"github.com/hookworker/hookworker/worker/catalog"
)

// Catalog mistakes are reported in the author's terms: an empty file says
// so, a mis-indented line is named by its own line number, a typo names
// the keys known there, never a Go type.
func TestCatalogErrorsNameTheMistake(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
		not        []string
	}{
		{"empty", "", []string{"the file is empty", "products:"}, []string{"EOF"}},
		{"comments only", "# nothing yet\n", []string{"the file is empty"}, []string{"EOF"}},
		{"shallower line", "products:\n  - id: 1\n    name: A\n    provider: sandbox\n   settings: {a: b}\n",
			[]string{"line 5 is mis-indented (3 spaces", "0, 2 or 4 spaces"}, []string{"line 1"}},
		{"deeper line", "products:\n  - id: 1\n    provider: sandbox\n      signup: signup_customer\n",
			[]string{"line 4 is mis-indented (6 spaces"}, nil},
		{"product key typo", "products:\n  - id: 1\n    nme: A\n    provider: sandbox\n",
			[]string{`line 3: unknown key "nme" in a product`, "provision_on"}, []string{"fileProduct", "catalog.file"}},
		{"top-level typo", "prodcts:\n  - id: 1\n", []string{`line 1: unknown key "prodcts" at the top level`, "products"}, []string{"catalog.file"}},
		{"route typo", "client_added:\n  - provder: sandbox\n", []string{`unknown key "provder" in a client_added route`}, []string{"fileRoute"}},
		{"not a number", "products:\n  - id: abc\n    provider: sandbox\n", []string{`line 2: "abc" is not a whole number`}, []string{"!!str", "into int"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := catalog.Parse([]byte(tc.yaml), "catalog.yaml", map[string]catalog.Validator{"sandbox": nil})
			if err == nil {
				t.Fatal("parsed")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(err.Error(), n) {
					t.Errorf("error %q says %q", err, n)
				}
			}
		})
	}
}
