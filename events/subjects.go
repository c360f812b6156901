package events

import "strings"

// Subjects: the one place where hookworker's NATS subjects are defined.
const (
	// InboundPrefix starts every subject a WHMCS hook publishes on:
	// whmcs.<instance>.<type>, e.g. whmcs.main.order.accepted.
	InboundPrefix = "whmcs"
	// InboundWildcard matches every inbound event of every instance.
	InboundWildcard = InboundPrefix + ".>"
	// ResultsPrefix starts every result subject:
	// hookworker.results.<outcome>.
	ResultsPrefix = "hookworker.results"
	// ResultsWildcard matches every result event.
	ResultsWildcard = ResultsPrefix + ".>"
	// DeadLetterPrefix starts every dead-letter subject:
	// hookworker.dlq.<instance>.<type>.
	DeadLetterPrefix = "hookworker.dlq"
	// DeadLetterWildcard matches every dead-letter entry.
	DeadLetterWildcard = DeadLetterPrefix + ".>"
)

// InboundSubject is the subject a WHMCS instance publishes type t on.
func InboundSubject(source string, t Type) string {
	return InboundPrefix + "." + source + "." + string(t)
}

// ParseInboundSubject splits an inbound subject into its instance and type.
// ok is false when subj is not an inbound subject.
func ParseInboundSubject(subj string) (source string, t Type, ok bool) {
	rest, found := strings.CutPrefix(subj, InboundPrefix+".")
	if !found {
		return "", "", false
	}
	source, typ, found := strings.Cut(rest, ".")
	if !found || source == "" || typ == "" {
		return "", "", false
	}
	return source, Type(typ), true
}

// ResultSubject is the subject a result with the given outcome is
// published on.
func ResultSubject(outcome string) string { return ResultsPrefix + "." + outcome }

// DeadLetterSubject is the subject a dead-letter entry is stored under. An
// unknown instance or type becomes "unknown".
func DeadLetterSubject(source string, t Type) string {
	if !validToken(source) {
		source = "unknown"
	}
	typ := string(t)
	if typ == "" || strings.ContainsAny(typ, " *>\t\r\n") {
		typ = "unknown"
	}
	return DeadLetterPrefix + "." + source + "." + typ
}
