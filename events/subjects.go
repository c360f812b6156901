package events

import (
	"strconv"
	"strings"
)

// Subjects: the one place where hookworker's NATS subjects are defined.
const (
	// InboundPrefix starts every subject a WHMCS hook publishes on:
	// whmcs.<instance>.<type>, e.g. whmcs.main.order.accepted.
	InboundPrefix = "whmcs"
	// InboundWildcard matches every inbound event of every instance.
	InboundWildcard = InboundPrefix + ".>"
	// ResultsPrefix starts every result subject:
	// hookworker.results.<outcome>.<instance>.<service id>.
	ResultsPrefix = "hookworker.results"
	// ResultsWildcard matches every result event.
	ResultsWildcard = ResultsPrefix + ".>"
	// DeadLetterPrefix starts every dead-letter subject:
	// hookworker.dlq.<instance>.<type>.
	DeadLetterPrefix = "hookworker.dlq"
	// DeadLetterWildcard matches every dead-letter entry.
	DeadLetterWildcard = DeadLetterPrefix + ".>"
	// Unknown is the token a dead-letter subject carries in place of an
	// instance or type that is not a valid subject token.
	Unknown = "unknown"
)

// Bounds on what this package accepts as a subject token. They keep every
// subject hookworker builds far below NATS's 4,096-byte protocol line.
const (
	// MaxSourceLen is the longest instance name (source) accepted.
	MaxSourceLen = 64
	// maxTypeLen is the longest event type a dead-letter subject carries.
	maxTypeLen = 64
	// maxTypeTokens is the most dot-separated tokens of such a type.
	maxTypeTokens = 4
)

// InboundSubject is the subject a WHMCS instance publishes type t on.
func InboundSubject(source string, t Type) string {
	return InboundPrefix + "." + source + "." + string(t)
}

// ParseInboundSubject splits an inbound subject into its instance and type.
// ok is false when subj is not whmcs.<instance>.<type> with a valid
// instance name and a type made of valid, non-empty tokens.
func ParseInboundSubject(subj string) (source string, t Type, ok bool) {
	rest, found := strings.CutPrefix(subj, InboundPrefix+".")
	if !found {
		return "", "", false
	}
	source, typ, found := strings.Cut(rest, ".")
	if !found || !ValidSource(source) || !ValidSubjectType(typ) {
		return "", "", false
	}
	return source, Type(typ), true
}

// ResultSubject is the subject a result with the given outcome, about the
// given instance's service, is published on:
// hookworker.results.<outcome>.<instance>.<service id>, e.g.
// hookworker.results.succeeded.main.41. An instance that is not a valid
// source becomes "unknown"; a result about no service carries service id 0.
// The service's tokens let the worker answer "last result for a service"
// with one last-message-by-subject read of the results stream
// (ServiceResultsFilter), instead of following every result.
func ResultSubject(outcome, source string, serviceID int) string {
	if !ValidSource(source) {
		source = Unknown
	}
	return ResultsPrefix + "." + outcome + "." + source + "." + strconv.Itoa(max(serviceID, 0))
}

// ServiceResultsFilter matches the results of one outcome ("*" for every
// outcome) about one instance's service.
func ServiceResultsFilter(outcome, source string, serviceID int) string {
	return ResultsPrefix + "." + outcome + "." + source + "." + strconv.Itoa(serviceID)
}

// OutcomeResultsFilter matches every result of one outcome, e.g.
// hookworker.results.succeeded.>.
func OutcomeResultsFilter(outcome string) string { return ResultsPrefix + "." + outcome + ".>" }

// DeadLetterSubject is the subject a dead-letter entry is stored under:
// hookworker.dlq.<instance>.<type>. It is built only from validated
// tokens: an instance that is not a valid source, or a type that is not
// one to four non-empty tokens of letters, digits, '-' and '_' (64 bytes
// at most), becomes "unknown". The result is always a valid subject the
// dead-letter stream captures, at most 150 bytes long.
func DeadLetterSubject(source string, t Type) string {
	if !ValidSource(source) {
		source = Unknown
	}
	typ := string(t)
	if !ValidSubjectType(typ) {
		typ = Unknown
	}
	return DeadLetterPrefix + "." + source + "." + typ
}

// ValidSource reports whether s can be an instance name (an event's
// source): one subject token of letters, digits, '-' and '_', at most
// MaxSourceLen bytes.
func ValidSource(s string) bool { return len(s) <= MaxSourceLen && validToken(s) }

// ValidSubjectType reports whether s is safe as the type part of a
// subject: one to four non-empty tokens of letters, digits, '-' and '_',
// at most 64 bytes. It says nothing of whether the type is known.
func ValidSubjectType(s string) bool {
	if len(s) > maxTypeLen {
		return false
	}
	toks := strings.Split(s, ".")
	if len(toks) > maxTypeTokens {
		return false
	}
	for _, tok := range toks {
		if !validToken(tok) {
			return false
		}
	}
	return true
}
