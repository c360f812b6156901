package whmcs

import (
	"context"
	"errors"

	"github.com/hookworker/hookworker/events"
)

// PasswordSource gives the service password a provider signs an account up
// with. *Client and *providers.DerivedPasswords implement it.
type PasswordSource interface {
	ServicePassword(ctx context.Context, op events.Operation) (string, error)
}

// FallbackPasswords returns a source that asks primary (normally the WHMCS
// Client) and, only when primary has no password for op (ErrNoService: a
// reseller signup on ClientAdd has no WHMCS service; ErrNoPassword), asks
// fallback (normally providers.DerivedPasswords). Any other error of
// primary (WHMCS down, service not found) is returned as it is.
func FallbackPasswords(primary, fallback PasswordSource) PasswordSource {
	return fallbackPasswords{primary, fallback}
}

type fallbackPasswords struct{ primary, fallback PasswordSource }

func (f fallbackPasswords) ServicePassword(ctx context.Context, op events.Operation) (string, error) {
	pw, err := f.primary.ServicePassword(ctx, op)
	if err != nil && f.fallback != nil && (errors.Is(err, ErrNoService) || errors.Is(err, ErrNoPassword)) {
		return f.fallback.ServicePassword(ctx, op)
	}
	return pw, err
}
