package events

import "strings"

// ModuleManaged is the value of InvoiceItem.Module for a service whose
// product uses the hookworker WHMCS server module: the module's own
// CreateAccount / Renew calls publish its signup and renewals, so the
// InvoicePaid hook's item is informational and routes to nothing.
const ModuleManaged = "hookworker"

// ModuleSettings are a product's Module Settings in WHMCS: what the
// hookworker server module's ConfigOptions select (provider, signup action
// and the provider's product settings). Every event the module publishes
// carries them, and for those events they take the place of the catalog
// entry of the product: module settings win over the YAML catalog. Events
// from the hooks carry none and are routed by the catalog.
type ModuleSettings struct {
	Provider string `json:"provider"`
	// Signup is the action a CreateAccount performs (signup_customer or
	// signup_reseller; empty = signup_customer).
	Signup Action `json:"signup,omitempty"`
	// Settings are the provider's product settings, the same keys a
	// catalog entry's settings take (never credentials).
	Settings map[string]string `json:"settings,omitempty"`
}

func (m *ModuleSettings) validate(prefix string) error {
	if m == nil {
		return nil
	}
	if strings.TrimSpace(m.Provider) == "" || !validToken(m.Provider) {
		return fieldErr(prefix+".provider", "must name a provider (e.g. comet, codeguard, storegrid), got %q", m.Provider)
	}
	if m.Signup != "" && !m.Signup.IsSignup() {
		return fieldErr(prefix+".signup", "want signup_customer or signup_reseller, got %q", m.Signup)
	}
	return nil
}

// SignupAction is the module's signup action, signup_customer by default.
func (m ModuleSettings) SignupAction() Action {
	if m.Signup == "" {
		return SignupCustomer
	}
	return m.Signup
}
