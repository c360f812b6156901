package codeguard_test

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/codeguard"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
	"github.com/hookworker/hookworker/providers/providertest"
)

// newFake starts a fake LogicBoxes server for the test.
func newFake(t *testing.T) *codeguardtest.Server {
	t.Helper()
	srv := codeguardtest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// configFor is a provider config pointing at srv.
func configFor(srv *codeguardtest.Server) codeguard.Config {
	return codeguard.Config{
		Settings:   providers.Settings{URL: srv.URL, Timeout: 5 * time.Second, MaxConcurrent: 4, RatePerSecond: 0},
		AuthUserID: srv.AuthUserID, APIKey: srv.APIKey, InvoiceOption: codeguard.NoInvoice,
	}
}

func passwords(t *testing.T) codeguard.PasswordSource {
	t.Helper()
	pw, err := providers.NewDerivedPasswords("test-secret-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	return pw
}

// newProvider wires a provider to srv; log may be nil.
func newProvider(t *testing.T, srv *codeguardtest.Server, log *zap.Logger) *codeguard.Provider {
	t.Helper()
	if log == nil {
		log = zaptest.NewLogger(t)
	}
	p, err := codeguard.New(configFor(srv), passwords(t), log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func state(srv *codeguardtest.Server) func(ref string) string {
	return func(ref string) string {
		o, ok := srv.OrderByRef(ref)
		if !ok {
			return ""
		}
		switch o.Status {
		case codeguardtest.Active:
			return providertest.Active
		case codeguardtest.Suspended:
			return providertest.Suspended
		case codeguardtest.Deleted:
			return providertest.Deleted
		}
		return o.Status
	}
}

func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		srv := newFake(t)
		return providertest.Fixture{
			Provider:        newProvider(t, srv, nil),
			Signup:          events.SignupCustomer,
			Settings:        map[string]string{"plan_id": "229"},
			Unsupported:     []events.Action{events.ChangePassword},
			Created:         srv.Created,
			Renewals:        srv.Renewals,
			State:           state(srv),
			FailNext:        srv.FailNext,
			DropAfterEffect: srv.DropAfterEffect,
		}
	})
}
