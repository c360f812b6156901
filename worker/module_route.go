package worker

import (
	"strings"

	"github.com/hookworker/hookworker/events"
)

// route is Route plus the one check Route cannot make: every operation
// names a provider this worker has configured. A catalog only routes to
// configured providers (New checks it), but the Module Settings an event
// carries may name any provider; such an event is a permanent error naming
// the provider and the product instead of a nil provider at run time.
func (w *Worker) route(env events.Envelope, payload any) ([]events.Operation, error) {
	ops, err := RoutePayload(env, payload, w.cat)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if w.providers[op.Provider] == nil {
			return nil, events.Permanentf("service %d (product %d): the module settings route %s to provider %q, which this worker has not configured (set HOOKWORKER_%s_URL)",
				op.ServiceID, op.ProductID, op.Action, op.Provider, strings.ToUpper(op.Provider))
		}
	}
	return ops, nil
}
