// Package catalog maps WHMCS products, and the ClientAdd hook, to the
// provider, action and provider settings that provision them. A catalog is
// loaded once at start and validated completely: every error names the
// product and the field, so a bad catalog stops the worker before it
// consumes anything.
//
// The file is YAML:
//
//	unknown_products: reject     # or "ignore": events for products not listed are acked and skipped
//	client_added:                # what a new WHMCS client becomes (optional)
//	  - provider: storegrid
//	    action: signup_reseller
//	    settings: {storage_allotted: 10737418240, activation_status: yes}
//	products:
//	  - id: 12
//	    name: Comet 100 GB
//	    provider: comet
//	    signup: signup_customer     # default
//	    provision_on: order.accepted  # or invoice.paid (provision on the first payment)
//	    settings: {create_policy_group: yes, policy_group_id: WHMCS_backup}
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/hookworker/hookworker/events"
)

// Validator checks a provider's settings for an action; it returns an error
// naming the setting at fault.
type Validator func(a events.Action, settings map[string]string) error

// Route is what a WHMCS client or product is provisioned as.
type Route struct {
	Provider string
	Action   events.Action
	Settings map[string]string
}

// Product is one WHMCS product the catalog knows.
type Product struct {
	ID          int
	Name        string
	Provider    string
	Signup      events.Action
	ProvisionOn events.Type
	Settings    map[string]string
}

// Catalog is a validated catalog; it is safe for concurrent reads.
type Catalog struct {
	ClientAdded   []Route
	IgnoreUnknown bool
	products      map[int]Product
	validators    map[string]Validator // for ModuleProduct
}

// Product returns the product with the WHMCS product id.
func (c *Catalog) Product(id int) (Product, bool) {
	p, ok := c.products[id]
	return p, ok
}

// Products returns every product, by id.
func (c *Catalog) Products() []Product {
	out := make([]Product, 0, len(c.products))
	for _, p := range c.products {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Providers returns the names of every provider the catalog routes to.
func (c *Catalog) Providers() []string {
	seen := map[string]bool{}
	for _, r := range c.ClientAdded {
		seen[r.Provider] = true
	}
	for _, p := range c.products {
		seen[p.Provider] = true
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type fileRoute struct {
	Provider string         `yaml:"provider"`
	Action   string         `yaml:"action"`
	Settings map[string]any `yaml:"settings"`
}

type fileProduct struct {
	ID          int            `yaml:"id"`
	Name        string         `yaml:"name"`
	Provider    string         `yaml:"provider"`
	Signup      string         `yaml:"signup"`
	ProvisionOn string         `yaml:"provision_on"`
	Settings    map[string]any `yaml:"settings"`
}

type file struct {
	UnknownProducts string        `yaml:"unknown_products"`
	ClientAdded     []fileRoute   `yaml:"client_added"`
	Products        []fileProduct `yaml:"products"`
}

// Load reads and validates the catalog file at path. validators holds one
// entry per provider this worker can use; a product naming any other
// provider is an error.
func Load(path string, validators map[string]Validator) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	return Parse(b, path, validators)
}

// Parse validates a catalog held in memory; name is used in errors.
func Parse(b []byte, name string, validators map[string]Validator) (*Catalog, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, decodeError(name, b, err)
	}
	c := &Catalog{products: map[int]Product{}, validators: validators}
	switch f.UnknownProducts {
	case "", "reject":
	case "ignore":
		c.IgnoreUnknown = true
	default:
		return nil, fmt.Errorf("catalog %s: unknown_products: want reject or ignore, got %q", name, f.UnknownProducts)
	}
	for i, r := range f.ClientAdded {
		where := fmt.Sprintf("catalog %s: client_added[%d]", name, i)
		settings, err := stringify(r.Settings)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		a := events.Action(r.Action)
		if !a.IsSignup() {
			return nil, fmt.Errorf("%s: action: want signup_reseller or signup_customer, got %q", where, r.Action)
		}
		if err := check(validators, r.Provider, a, settings); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		c.ClientAdded = append(c.ClientAdded, Route{Provider: r.Provider, Action: a, Settings: settings})
	}
	for i, p := range f.Products {
		where := fmt.Sprintf("catalog %s: products[%d]", name, i)
		if p.ID <= 0 {
			return nil, fmt.Errorf("%s: id: must be a positive WHMCS product id, got %d", where, p.ID)
		}
		where = fmt.Sprintf("catalog %s: product %d", name, p.ID)
		if p.Name != "" {
			where += " (" + strconv.Quote(p.Name) + ")"
		}
		if _, dup := c.products[p.ID]; dup {
			return nil, fmt.Errorf("%s: listed twice", where)
		}
		settings, err := stringify(p.Settings)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		signup := events.Action(p.Signup)
		if p.Signup == "" {
			signup = events.SignupCustomer
		}
		if !signup.IsSignup() {
			return nil, fmt.Errorf("%s: signup: want signup_customer or signup_reseller, got %q", where, p.Signup)
		}
		on := events.Type(p.ProvisionOn)
		if p.ProvisionOn == "" {
			on = events.OrderAccepted
		}
		if on != events.OrderAccepted && on != events.InvoicePaid {
			return nil, fmt.Errorf("%s: provision_on: want order.accepted or invoice.paid, got %q", where, p.ProvisionOn)
		}
		for _, a := range events.Actions() {
			if a.IsSignup() && a != signup {
				continue
			}
			if err := check(validators, p.Provider, a, settings); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		c.products[p.ID] = Product{ID: p.ID, Name: p.Name, Provider: p.Provider, Signup: signup, ProvisionOn: on, Settings: settings}
	}
	return c, nil
}

// ErrUnsupported may be returned by a Validator for an action its provider
// does not offer; the catalog accepts the product, and an event asking for
// that action fails permanently with the provider's message.
var ErrUnsupported = errors.New("action not supported by the provider")

func check(validators map[string]Validator, provider string, a events.Action, settings map[string]string) error {
	if provider == "" {
		return errors.New("provider: is required")
	}
	v, ok := validators[provider]
	if !ok {
		names := make([]string, 0, len(validators))
		for n := range validators {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("provider: %q is not a known provider (known: %v)", provider, names)
	}
	if v == nil {
		return nil
	}
	if err := v(a, settings); err != nil && !errors.Is(err, ErrUnsupported) {
		return fmt.Errorf("%s settings for %s: %w", provider, a, err)
	}
	return nil
}

// stringify turns YAML scalars into the strings providers read; booleans
// become "yes" / "no" as in WHMCS module settings.
func stringify(in map[string]any) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch t := v.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = t
		case bool:
			out[k] = map[bool]string{true: "yes", false: "no"}[t]
		case int:
			out[k] = strconv.Itoa(t)
		case int64:
			out[k] = strconv.FormatInt(t, 10)
		case uint64:
			out[k] = strconv.FormatUint(t, 10)
		case float64:
			out[k] = strconv.FormatFloat(t, 'f', -1, 64)
		default:
			return nil, fmt.Errorf("settings: %q: want a scalar value, got %T", k, v)
		}
	}
	return out, nil
}
