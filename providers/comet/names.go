package comet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
)

// How a signup's Comet username is chosen (issue 8 point 3).
//
// The base name follows the official Comet WHMCS module
// (CometBackup/comet-whmcs-module 7171d7f, cometbackup.php
// cometbackup_CreateAccount): the product custom field "Username" when set,
// else the client's e-mail address, else the client's first name (lower
// case) and the service id; padded to Comet's 6 characters. Where the
// module pads and suffixes with rand(), hookworker uses digits derived from
// the service's signup key, so every attempt of one signup tries the same
// names. Without client details (an event that carries none) the name is
// the one hookworker always derived: "hw" and 10 characters of the key.
//
// A name is taken only when it is free, or when the user under it carries
// this service's marker; otherwise the next candidate is tried,
// "<base>_NNNN" as the official module does. The marker, a token
// "hookworker:<20 hex digits of sha256 of the signup key>", is written into
// the profile's AccountName right after add-user, so an account is never
// adopted by another service, and a lifecycle action never acts on an
// account another service owns.

// PlanProbe is the plan key that records what Prepare found under the
// chosen username: ProbeFree (no user) or ProbeOurs (a user with this
// service's marker).
const PlanProbe = "username_probe"

// Values of PlanProbe.
const (
	ProbeFree = "free"
	ProbeOurs = "ours"
)

// markerPrefix starts the ownership token in a profile's AccountName.
const markerPrefix = "hookworker:"

// markerHex is how many hex digits follow markerPrefix.
const markerHex = 20

// maxCandidates bounds how many names Prepare tries for one signup.
const maxCandidates = 12

// ServiceMarker returns the ownership token hookworker writes into the
// AccountName of the Comet user it creates for the service op concerns;
// signup and lifecycle operations of one service give the same token.
func ServiceMarker(op events.Operation) string {
	sum := sha256.Sum256([]byte(events.ServiceKey(op.Source, op.ServiceID, events.SignupCustomer)))
	return markerPrefix + hex.EncodeToString(sum[:])[:markerHex]
}

// markerOf returns the hookworker token in prof's AccountName, "" when
// there is none.
func markerOf(prof map[string]any) string {
	an, _ := prof["AccountName"].(string)
	i := strings.Index(an, markerPrefix)
	if i < 0 {
		return ""
	}
	tok := an[i+len(markerPrefix):]
	n := 0
	for n < len(tok) && n < markerHex && strings.IndexByte("0123456789abcdef", tok[n]) >= 0 {
		n++
	}
	return markerPrefix + tok[:n]
}

// withMarker returns prof's AccountName carrying marker: unchanged when it
// already does, else the current name (or the client's name) followed by
// the marker in brackets.
func withMarker(op events.Operation, prof map[string]any, marker string) string {
	an, _ := prof["AccountName"].(string)
	if markerOf(prof) == marker {
		return an
	}
	an = strings.TrimSpace(an)
	if an == "" && op.Client != nil {
		an = strings.TrimSpace(op.Client.FirstName + " " + op.Client.LastName)
		if an == "" {
			an = strings.TrimSpace(op.Client.CompanyName)
		}
	}
	if an == "" {
		return "[" + marker + "]"
	}
	return an + " [" + marker + "]"
}

// keyDigits returns n decimal digits derived from op's signup key and salt.
func keyDigits(op events.Operation, salt string, n int) string {
	sum := sha256.Sum256([]byte(events.ServiceKey(op.Source, op.ServiceID, events.SignupCustomer) + "\x00" + salt))
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteByte('0' + sum[i%len(sum)]%10)
	}
	return b.String()
}

// baseUsername is the first name a signup tries (see the comment above).
func baseUsername(op events.Operation) string {
	name := strings.TrimSpace(op.CustomUsername)
	if name == "" && op.Client != nil {
		switch {
		case strings.TrimSpace(op.Client.Email) != "":
			name = strings.TrimSpace(op.Client.Email)
		case strings.TrimSpace(op.Client.FirstName) != "":
			name = strings.ToLower(strings.TrimSpace(op.Client.FirstName)) + strconv.Itoa(op.ServiceID)
		}
	}
	if name == "" {
		return providers.AccountName(events.Operation{Source: op.Source, ServiceID: op.ServiceID, ClientID: op.ClientID,
			Action: events.SignupCustomer}, usernamePrefix, usernameLen)
	}
	if l := utf8.RuneCountInString(name); l < minUsernameLen {
		name += keyDigits(op, "pad", minUsernameLen-l)
	}
	return name
}

// candidates lists the names a signup tries, in order: the base name, then
// "<base>_NNNN" with NNNN in 1000–9999 derived from the signup key.
func candidates(op events.Operation) []string {
	base := baseUsername(op)
	out := []string{base}
	seen := map[string]bool{base: true}
	for i := 0; len(out) < maxCandidates && i < 4*maxCandidates; i++ {
		n, _ := strconv.Atoi(keyDigits(op, "suffix"+strconv.Itoa(i), 4))
		c := fmt.Sprintf("%s_%d", base, 1000+n%9000)
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

// checkName refuses a username Comet would refuse.
func checkName(a events.Action, name, field string) error {
	if utf8.RuneCountInString(name) < minUsernameLen {
		return events.Permanentf("comet %s %q: the username (%s) is shorter than %d characters, the least Comet accepts", a, name, field, minUsernameLen)
	}
	if strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 {
		return events.Permanentf("comet %s %q: the username (%s) holds spaces or control characters", a, name, field)
	}
	return nil
}

// usernameSource names where baseUsername took its name from, for errors.
func usernameSource(op events.Operation) string {
	switch {
	case strings.TrimSpace(op.CustomUsername) != "":
		return `custom field "Username"`
	case op.Client != nil && strings.TrimSpace(op.Client.Email) != "":
		return "the client's e-mail address"
	case op.Client != nil && strings.TrimSpace(op.Client.FirstName) != "":
		return "the client's first name"
	}
	return "derived from the signup key"
}

// nameReservationTTL is how long a username claim lasts in
// MemoryReservations (the provider used without shared reservations).
const nameReservationTTL = 30 * time.Minute

// errTaken: another signup holds a claim on the name.
var errTaken = errors.New("username claimed by another signup")

// usernameClaim names a Comet username's claim in Reservations.
func usernameClaim(name string) string { return "comet.username." + name }

// UseReservations makes the provider claim the usernames its signups
// choose in r, shared with every replica (the worker passes its NATS
// key-value reservations when it sets up), so that two signups planned at
// the same time on two replicas never choose the same free name. Without
// it claims are kept in this process only. Call it before the first
// Prepare.
func (p *Provider) UseReservations(r providers.Reservations) {
	if r != nil {
		p.shared.Store(&r)
	}
}

func (p *Provider) reservations() providers.Reservations {
	if r := p.shared.Load(); r != nil {
		return *r
	}
	return p.memory
}

// claimName gives op's signup the claim on name; false when another signup
// holds it.
func (p *Provider) claimName(ctx context.Context, op events.Operation, name string) (bool, error) {
	_, err := p.reservations().Reserve(ctx, usernameClaim(name), op.Key, func(others []providers.Claim) (string, error) {
		if len(others) > 0 {
			p.log.Info("comet username claimed by another signup; trying the next candidate", zap.String("username", name),
				zap.String("op_key", op.Key), zap.String("claimed_by", others[0].Holder))
			return "", errTaken
		}
		return "", nil
	})
	switch {
	case errors.Is(err, errTaken):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("comet %s: claiming username %q: %w", op.Action, name, err)
	}
	return true, nil
}

// releaseName drops op's claim on name: its user exists now (or the name
// was not free), or the signup failed for good. A release that fails is
// logged; the claim then ends when the reservations judge the operation
// finished (see providers.Reservations).
func (p *Provider) releaseName(ctx context.Context, op events.Operation, name string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.Timeout)
	defer cancel()
	if err := p.reservations().Release(rctx, usernameClaim(name), op.Key); err != nil {
		p.log.Warn("comet: could not release a username claim; it ends with its operation", zap.String("username", name),
			zap.String("op_key", op.Key), zap.Error(err))
	}
}

// probeUser reads user with get-user-profile: (profile, true) when the user
// exists, (nil, false) when a reply says it does not (settled with
// list-users when ambiguous).
func (p *Provider) probeUser(ctx context.Context, user string) (map[string]any, bool, error) {
	var prof map[string]any
	err := p.call(ctx, "get-user-profile", user, url.Values{"TargetUser": {user}}, &prof)
	if err == nil {
		if _, ok := prof["Username"]; ok {
			return prof, true, nil
		}
		listed, err := p.userListed(ctx, user)
		return prof, listed, err
	}
	if _, serr := settleMissing(err, func() (bool, error) { return p.userListed(ctx, user) }); serr != nil {
		return nil, false, serr
	}
	return nil, false, nil
}

// chooseUsername picks a signup's username: the first candidate that is
// free (and not claimed by another signup, on any replica sharing the
// provider's Reservations) or already this service's. The free name stays
// claimed for this signup until its user is created or it fails for good;
// a second Prepare of the same operation finds its own claim and chooses
// the same name.
func (p *Provider) chooseUsername(ctx context.Context, op events.Operation) (map[string]string, error) {
	cands := candidates(op)
	if err := checkName(op.Action, cands[0], usernameSource(op)); err != nil {
		return nil, err
	}
	mine := ServiceMarker(op)
	for _, name := range cands {
		ok, err := p.claimName(ctx, op, name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		prof, exists, err := p.probeUser(ctx, name)
		if err != nil {
			p.releaseName(ctx, op, name)
			return nil, err
		}
		if !exists {
			return map[string]string{PlanUsername: name, PlanProbe: ProbeFree}, nil
		}
		p.releaseName(ctx, op, name)
		if markerOf(prof) == mine {
			return map[string]string{PlanUsername: name, PlanProbe: ProbeOurs}, nil
		}
		p.log.Info("comet username taken by another account; trying the next candidate", zap.String("username", name),
			zap.String("op_key", op.Key))
	}
	return nil, events.Permanentf("comet %s: every candidate username (%s and %d more) belongs to another account; set the service's custom field \"Username\"",
		op.Action, cands[0], len(cands)-1)
}

// findByMarker looks for the user carrying op's service marker
// (list-users-full); "" when there is none.
func (p *Provider) findByMarker(ctx context.Context, op events.Operation) (string, error) {
	var all map[string]map[string]any
	if err := p.call(ctx, "list-users-full", "", nil, &all); err != nil {
		return "", err
	}
	mine := ServiceMarker(op)
	for name, prof := range all {
		if markerOf(prof) == mine {
			return name, nil
		}
	}
	return "", nil
}

// notOurs is the permanent error for a user that carries another service's
// marker.
func notOurs(a events.Action, name, owner string) error {
	return events.Permanentf("comet %s %q: the user belongs to another WHMCS service (its AccountName carries %s); hookworker never acts on another service's account",
		a, name, owner)
}
