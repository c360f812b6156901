// Package providers holds what every provider client shares: the settings
// each provider takes from the environment, per-provider concurrency and rate
// limits, and the one place an HTTP reply is classified as a transient or
// permanent error. Each provider lives in its own sub-package (comet,
// codeguard, storegrid, sandbox) and keeps its wire format there.
//
// A provider satisfies this contract, checked for each of them by
// providertest.Run:
//
//	Name() string
//	Prepare(ctx, op) (plan map[string]string, err error)
//	Lookup(ctx, op) (events.Outcome, bool, error)
//	Apply(ctx, op) (events.Outcome, error)
//	Check(ctx) error
//
// Prepare runs once before the first attempt and its plan is recorded
// durably; Lookup says whether the effect of op.Key already exists; Apply is
// safe to call again after an attempt that failed, timed out or crashed
// half-way: it never creates a second account, order or renewal.
package providers
