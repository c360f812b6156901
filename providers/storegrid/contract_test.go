package storegrid_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/providertest"
	"github.com/hookworker/hookworker/providers/storegrid"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
)

// testReseller is the reseller a Signup Customer product's reseller_name
// names; the fixtures create it in the fake as an administrator would.
const testReseller = "acme-backup"

// newFake starts a fake server closed at the end of the test.
func newFake(t *testing.T) *storegridtest.Server {
	t.Helper()
	srv := storegridtest.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// config returns a provider configuration for srv.
func config(srv *storegridtest.Server) storegrid.Config {
	return storegrid.Config{
		Settings: providers.Settings{URL: srv.URL, Timeout: 5 * time.Second, MaxConcurrent: 4},
		Username: srv.Username, Password: srv.Password,
	}
}

// newProvider returns a provider talking to srv, logging to log (a test
// logger when nil).
func newProvider(t *testing.T, srv *storegridtest.Server, log *zap.Logger) *storegrid.Provider {
	t.Helper()
	if log == nil {
		log = zaptest.NewLogger(t)
	}
	p, err := storegrid.New(config(srv), log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func customerSettings() map[string]string {
	return map[string]string{
		"reseller_name": testReseller, "activation_status": "yes", "auto_authorization": "yes",
		"storage_allotted": "107374182400", "auto_mcal": "no", "allot_mcal": "5",
		"bandwidth_throttling": "global", "send_mail": "no", "retrieve_pass_key": "yes",
	}
}

func resellerSettings() map[string]string {
	return map[string]string{
		"activation_status": "yes", "auto_authorization": "no", "storage_allotted": "1099511627776",
		"auto_mcal": "yes", "bandwidth_throttling": "new", "throttle_enabled": "yes",
		"throttle_mode": "always", "restricted_rate": "1048576",
	}
}

// terminations wraps the provider to remember which accounts Terminate
// de-activated: StoreGrid's terminate is a de-activation (seed 001), so the
// fake alone cannot tell a terminated account from a suspended one.
type terminations struct {
	*storegrid.Provider
	mu   sync.Mutex
	last map[string]events.Action
}

func (w *terminations) Apply(ctx context.Context, op events.Operation) (events.Outcome, error) {
	out, err := w.Provider.Apply(ctx, op)
	if err == nil {
		w.mu.Lock()
		w.last[out.Reference] = op.Action
		w.mu.Unlock()
	}
	return out, err
}

func (w *terminations) terminated(ref string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[ref] == events.Terminate
}

func fixture(t *testing.T, signup events.Action, settings map[string]string) providertest.Fixture {
	t.Helper()
	srv := newFake(t)
	srv.AddReseller(testReseller)
	p := &terminations{Provider: newProvider(t, srv, nil), last: map[string]events.Action{}}
	return providertest.Fixture{
		Provider:    p,
		Signup:      signup,
		Settings:    settings,
		Unsupported: []events.Action{events.ChangePassword},
		Created:     srv.Created,
		Renewals:    func() int { return 0 }, // renewals are billed in WHMCS
		State: func(ref string) string {
			a, ok := srv.Account(ref)
			switch {
			case !ok:
				return ""
			case a.Active:
				return providertest.Active
			case p.terminated(ref):
				return providertest.Deleted
			}
			return providertest.Suspended
		},
		FailNext:        srv.FailNext,
		DropAfterEffect: srv.DropAfterEffect,
	}
}

func TestContractSignupCustomer(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		return fixture(t, events.SignupCustomer, customerSettings())
	})
}

func TestContractSignupReseller(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		return fixture(t, events.SignupReseller, resellerSettings())
	})
}
