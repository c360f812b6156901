package catalog

import (
	"fmt"

	"github.com/hookworker/hookworker/events"
)

// ModuleProduct is the product a WHMCS service is provisioned as when the
// event carries the product's Module Settings (the hookworker WHMCS server
// module publishes them with every event): the module settings win over
// the catalog entry of the same product, which is not consulted. The
// settings are validated like a catalog entry's, with the validators the
// catalog was loaded with; the error names the product and the setting.
func (c *Catalog) ModuleProduct(productID int, m events.ModuleSettings) (Product, error) {
	signup := m.SignupAction()
	where := fmt.Sprintf("module settings of product %d", productID)
	for _, a := range events.Actions() {
		if a.IsSignup() && a != signup {
			continue
		}
		if err := check(c.validators, m.Provider, a, m.Settings); err != nil {
			return Product{}, events.Permanentf("%s: %v", where, err)
		}
	}
	settings := make(map[string]string, len(m.Settings))
	for k, v := range m.Settings {
		settings[k] = v
	}
	return Product{ID: productID, Name: "WHMCS module settings", Provider: m.Provider, Signup: signup,
		ProvisionOn: events.OrderAccepted, Settings: settings}, nil
}
