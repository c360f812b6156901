package providers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"github.com/hookworker/hookworker/events"
)

// DerivedPasswords gives each service a password derived from a secret and
// the service's signup key: the same service always gets the same password,
// so a retried signup after a crash sends the password the first attempt
// sent. It is the password source when the WHMCS API is not configured; with
// the WHMCS API the worker reads the service password WHMCS generated.
type DerivedPasswords struct {
	secret []byte
}

// NewDerivedPasswords fails when secret is shorter than 16 bytes.
func NewDerivedPasswords(secret string) (*DerivedPasswords, error) {
	if len(secret) < 16 {
		return nil, errors.New("password secret must be at least 16 bytes")
	}
	return &DerivedPasswords{secret: []byte(secret)}, nil
}

// ServicePassword returns op's service password: 24 URL-safe characters.
func (d *DerivedPasswords) ServicePassword(_ context.Context, op events.Operation) (string, error) {
	m := hmac.New(sha256.New, d.secret)
	m.Write([]byte(AccountName(op, "", 1)))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))[:24], nil
}
