package comet_test

import (
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/providertest"
)

func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name           string
		settings, opts map[string]string
	}{
		{"Plain", nil, nil},
		{"Configured", configured, configuredOpts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			providertest.Run(t, func(t *testing.T) providertest.Fixture {
				e := newEnv(t)
				return providertest.Fixture{
					Provider:      e.p,
					Signup:        events.SignupCustomer,
					Settings:      tc.settings,
					ConfigOptions: tc.opts,
					Unsupported:   []events.Action{events.SignupReseller},
					Created:       e.srv.Created,
					Renewals:      func() int { return 0 }, // renewal is billing-only at Comet
					State: func(ref string) string {
						u, ok := e.srv.User(ref)
						switch {
						case !ok:
							return ""
						case u.Suspended():
							return providertest.Suspended
						}
						return providertest.Active
					},
					FailNext:        e.srv.FailNext,
					DropAfterEffect: e.srv.DropAfterEffect,
				}
			})
		})
	}
}
