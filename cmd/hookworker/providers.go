package main

import (
	"context"
	"embed"
	"fmt"
	neturl "net/url"
	"slices"
	"strconv"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
	"github.com/hookworker/hookworker/providers/comet"
	"github.com/hookworker/hookworker/providers/comet/comettest"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/providers/storegrid"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
)

//go:embed catalogs/*.yaml
var builtinCatalogs embed.FS

// validators are the catalog validators of every provider hookworker has.
var validators = map[string]catalog.Validator{
	sandbox.Name:   nil,
	comet.Name:     comet.ValidateSettings,
	codeguard.Name: codeguard.ValidateSettings,
	storegrid.Name: storegrid.ValidateSettings,
}

// passwordSource gives providers the service passwords they send.
type passwordSource interface {
	ServicePassword(ctx context.Context, op events.Operation) (string, error)
}

// setup holds the providers and the catalog a command works with, and
// stops the fake servers of the fakes sandbox.
type setup struct {
	providers map[string]worker.Provider
	catalog   *catalog.Catalog
	closers   []func()
}

func (s *setup) close() {
	for _, c := range s.closers {
		c()
	}
}

// buildProviders configures every provider whose URL is set, or, with no
// catalog file, the sandbox (memory or fakes), and loads the catalog.
func buildProviders(cfg Config, passwords passwordSource, log *zap.Logger) (*setup, error) {
	s := &setup{providers: map[string]worker.Provider{}}
	if cfg.sandboxMode() == "fakes" {
		cs, cg, sg := comettest.NewServer(), codeguardtest.NewServer(), storegridtest.NewServer()
		sg.AddReseller("hookworker-demo")
		s.closers = append(s.closers, cs.Close, cg.Close, sg.Close)
		fast := providers.Settings{Timeout: cfg.Comet.Timeout, MaxConcurrent: 4, RatePerSecond: 0}
		if fast.Timeout == 0 {
			fast.Timeout = defaultProviderTimeout
		}
		cfg.Comet = comet.Config{Settings: fast, Username: cs.Username, Password: cs.Password}
		cfg.Comet.URL = cs.URL
		cfg.CodeGuard = codeguard.Config{Settings: fast, AuthUserID: cg.AuthUserID, APIKey: cg.APIKey, InvoiceOption: "NoInvoice"}
		cfg.CodeGuard.URL = cg.URL
		cfg.StoreGrid = storegrid.Config{Settings: fast, Username: sg.Username, Password: sg.Password}
		cfg.StoreGrid.URL = sg.URL
		log.Info("sandbox: fake Comet, CodeGuard and StoreGrid servers started in process",
			zap.String("comet", cs.URL), zap.String("codeguard", cg.URL), zap.String("storegrid", sg.URL))
	}
	if cfg.Comet.URL != "" {
		p, err := comet.New(cfg.Comet, passwords, log.Named("comet"))
		if err != nil {
			s.close()
			return nil, configError{fmt.Errorf("comet: %w", err)}
		}
		s.providers[comet.Name] = p
	}
	if cfg.CodeGuard.Enabled() {
		p, err := codeguard.New(cfg.CodeGuard, passwords, log.Named("codeguard"))
		if err != nil {
			s.close()
			return nil, configError{fmt.Errorf("codeguard: %w", err)}
		}
		s.providers[codeguard.Name] = p
	}
	if cfg.StoreGrid.URL != "" {
		p, err := storegrid.New(cfg.StoreGrid, log.Named("storegrid"))
		if err != nil {
			s.close()
			return nil, configError{fmt.Errorf("storegrid: %w", err)}
		}
		s.providers[storegrid.Name] = p
	}
	fake := cfg.sandboxMode() == "fakes"
	for name, p := range s.providers {
		s.providers[name] = described{p, backendName(name, providerURL(cfg, name), fake)}
	}
	var err error
	switch {
	case cfg.Catalog != "":
		s.catalog, err = catalog.Load(cfg.Catalog, validators)
	case cfg.sandboxMode() == "fakes":
		s.catalog, err = builtinCatalog("fakes.yaml")
	default:
		s.providers[sandbox.Name] = described{sandbox.New(), "sandbox (in-process memory)"}
		s.catalog, err = builtinCatalog("sandbox.yaml")
	}
	if err != nil {
		s.close()
		return nil, configError{fmt.Errorf("HOOKWORKER_CATALOG: %w", err)}
	}
	if cfg.Catalog != "" && slices.Contains(s.catalog.Providers(), sandbox.Name) && s.providers[sandbox.Name] == nil {
		// The sandbox needs no URL: a catalog may route test products to it.
		s.providers[sandbox.Name] = described{sandbox.New(), "sandbox (in-process memory)"}
		var ids []string
		for _, p := range s.catalog.Products() {
			if p.Provider == sandbox.Name {
				ids = append(ids, strconv.Itoa(p.ID))
			}
		}
		log.Warn("the catalog routes to the in-process sandbox provider: those products are never provisioned at a real provider",
			zap.String("catalog", cfg.Catalog), zap.Strings("products", ids))
	}
	return s, nil
}

func builtinCatalog(name string) (*catalog.Catalog, error) {
	b, err := builtinCatalogs.ReadFile("catalogs/" + name)
	if err != nil {
		return nil, err
	}
	return catalog.Parse(b, "built-in "+name, validators)
}

// described is a provider that tells operation records where it applies
// effects, so a record written in another mode is explained.
type described struct {
	worker.Provider
	backend string
}

// Backend says where the provider applies effects.
func (d described) Backend() string { return d.backend }

// Unwrap returns the provider described, so that its optional methods
// (Comet's SingleSignOn) stay reachable.
func (d described) Unwrap() worker.Provider { return d.Provider }

func backendName(name, url string, fake bool) string {
	if fake {
		return name + " (sandbox fake server in process)"
	}
	if u, err := neturl.Parse(url); err == nil {
		u.User, u.RawQuery = nil, "" // never a secret in a record
		url = u.String()
	}
	return name + " at " + url
}

func providerURL(cfg Config, name string) string {
	switch name {
	case comet.Name:
		return cfg.Comet.URL
	case codeguard.Name:
		return cfg.CodeGuard.URL
	case storegrid.Name:
		return cfg.StoreGrid.URL
	}
	return ""
}
