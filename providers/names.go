package providers

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/hookworker/hookworker/events"
)

// AccountName returns the provider account name for op's service (or, for a
// reseller signup on ClientAdd, op's client). It is the username WHMCS
// already holds when the event carries one; otherwise it is derived from the
// signup's idempotency key, so every attempt, every redelivery and every
// later lifecycle event of the same service names the same account.
// The result has prefix followed by lowercase letters and digits and is at
// least minLen characters long.
func AccountName(op events.Operation, prefix string, minLen int) string {
	if op.Username != "" {
		return op.Username
	}
	var key string
	switch {
	case op.Action == events.SignupReseller || (op.ServiceID == 0 && op.ClientID > 0):
		key = events.ClientKey(op.Source, op.ClientID, events.SignupReseller)
	default:
		key = events.ServiceKey(op.Source, op.ServiceID, events.SignupCustomer)
	}
	sum := sha256.Sum256([]byte(key))
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
	n := max(minLen-len(prefix), 10)
	return prefix + enc[:n]
}
