package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/worker"
)

// ledger is the account of one run.
type ledger struct {
	// the run
	seed                         uint64
	duration, total, drainedIn   time.Duration
	workers, kills, natsRestarts int
	faults                       map[string]int
	faultKeys                    []string
	drained                      bool
	crashes                      []string
	skipped                      map[string]bool
	logFindings                  []logFinding

	// events
	logical, published, inWindow, stored int
	succeeded, noop, deadLettered        int
	deadValid, doubleDead                int
	deadValidWhy                         []string
	stuck                                uint64
	kinds                                map[string]*kindTally
	rejectedValid, rejectedMalformed     []string
	lost, dlqNoResult, malformedDone     []string

	// effects at the fakes
	effectsHeld, renewalsPaid, renewalsApplied int
	duplicates, missing, renewalMismatch       []string
	malformedEffects                           []string
}

// kindTally counts one kind of event.
type kindTally struct {
	published, stored, finished, dead, lost, other int
}

func (l *ledger) kind(k string) *kindTally {
	t := l.kinds[k]
	if t == nil {
		t = &kindTally{}
		l.kinds[k] = t
	}
	return t
}

// expectedNames are the names of the account or order a signup or reseller
// event may make at its provider: providers.AccountName with each provider's
// prefix, the client's e-mail address (the Comet username the provider
// plans when WHMCS holds none), or the CodeGuard order's domain.
func expectedNames(e *event) (provider string, names []string) {
	op := events.Operation{Source: source, Action: events.SignupCustomer, ServiceID: e.sid}
	switch e.kind {
	case kindComet:
		return "comet", []string{providers.AccountName(op, "hw", 12), clientOf(clientOfService(e.sid)).Email}
	case kindStoreGrid:
		return "storegrid", []string{providers.AccountName(op, "hwc", 16)}
	case kindReseller:
		return "storegrid", []string{providers.AccountName(events.Operation{Source: source, Action: events.SignupReseller, ClientID: e.clientID}, "hwr", 16)}
	case kindCodeGuard, kindCodeGuardPaid:
		return "codeguard", []string{domainOf(e.sid)}
	}
	return "", nil
}

func computeLedger(st state) *ledger {
	l := &ledger{kinds: map[string]*kindTally{}}
	byMsgID := map[string]*event{}
	logical := map[*event]bool{}
	for _, e := range st.events {
		if logical[e] {
			continue
		}
		logical[e] = true
		byMsgID[e.msgID] = e
		l.published += e.publishes
		l.inWindow += e.inWindow
		l.kind(e.kind).published += e.publishes
		if e.rejected != "" {
			line := fmt.Sprintf("%s %s: %s", e.kind, e.msgID, e.rejected)
			if e.malformed {
				l.rejectedMalformed = append(l.rejectedMalformed, line)
			} else {
				l.rejectedValid = append(l.rejectedValid, line)
			}
		}
	}
	l.logical = len(logical)
	l.stuck = st.pending + st.ackPending

	type opResults struct {
		succeeded []resultMsg
		dead      bool
		failed    int
	}
	byOp := map[string]*opResults{}
	op := func(k string) *opResults {
		r := byOp[k]
		if r == nil {
			r = &opResults{}
			byOp[k] = r
		}
		return r
	}
	succeededByEvent, succeededBySID := map[string]bool{}, map[int]bool{}
	for _, r := range st.results {
		switch r.typ {
		case events.ProvisioningSucceeded:
			op(r.data.OperationKey).succeeded = append(op(r.data.OperationKey).succeeded, r)
			succeededByEvent[r.data.SourceEventID] = true
			succeededBySID[r.data.ServiceID] = true
		case events.ProvisioningDeadLettered:
			op(r.data.OperationKey).dead = true
		case events.ProvisioningFailed:
			op(r.data.OperationKey).failed++
		}
	}
	// deadResult reports a provisioning.dead_lettered result for the
	// message at seq: by the stream sequence in its id or operation key,
	// by the event's id, or by the event's operations.
	deadResult := func(seq uint64, e *event) bool {
		s := strconv.FormatUint(seq, 10)
		for _, r := range st.results {
			if r.typ != events.ProvisioningDeadLettered {
				continue
			}
			if strings.HasSuffix(r.id, ":"+s) || r.data.OperationKey == "stream:"+worker.EventsStream+":"+s ||
				(e != nil && e.envID != "" && r.data.SourceEventID == e.envID) {
				return true
			}
		}
		if e != nil && len(e.ops) > 0 {
			for _, k := range e.ops {
				if !op(k).dead {
					return false
				}
			}
			return true
		}
		return false
	}
	deadBySeq := map[uint64]int{}
	reasonBySeq := map[uint64]string{}
	for _, d := range st.dead {
		deadBySeq[d.StreamSequence]++
		reasonBySeq[d.StreamSequence] = d.Reason
	}

	storedSeqs := map[uint64]bool{}
	for _, m := range st.stored {
		storedSeqs[m.seq] = true
		l.stored++
		e := byMsgID[m.msgID]
		kind := "unknown"
		if e != nil {
			kind = e.kind
		}
		t := l.kind(kind)
		t.stored++
		desc := fmt.Sprintf("%s seq %d (Nats-Msg-Id %.60q, subject %.60q)", kind, m.seq, m.msgID, m.subject)
		if n := deadBySeq[m.seq]; n > 0 {
			l.deadLettered++
			t.dead++
			if e != nil && !e.malformed {
				l.deadValid++
				r := reasonBySeq[m.seq]
				if len(r) > 160 {
					r = r[:160] + "…"
				}
				l.deadValidWhy = append(l.deadValidWhy, fmt.Sprintf("%s seq %d: %s", kind, m.seq, r))
			}
			if n > 1 {
				l.doubleDead++
			}
			if !deadResult(m.seq, e) {
				l.dlqNoResult = append(l.dlqNoResult, desc)
			}
			continue
		}
		switch {
		case e == nil:
			t.lost++
			l.lost = append(l.lost, desc+": published by no one chaos knows")
		case e.malformed:
			if (e.envID != "" && succeededByEvent[e.envID]) || succeededBySID[e.sid] {
				t.other++
				l.malformedDone = append(l.malformedDone, desc+": processed as a valid event, not dead-lettered")
			} else {
				t.lost++
				l.lost = append(l.lost, desc+": no dead letter")
			}
		case len(e.ops) == 0:
			if l.stuck == 0 || m.seq <= st.ackFloor {
				t.finished++
				l.noop++
			} else {
				t.lost++
				l.lost = append(l.lost, desc+": no operation, and not acknowledged")
			}
		default:
			finished := true
			var why []string
			for _, k := range e.ops {
				r := op(k)
				if len(r.succeeded) == 0 && !r.dead {
					finished = false
					why = append(why, fmt.Sprintf("%s: %d failed results, no final one", k, r.failed))
				}
			}
			if finished {
				t.finished++
				l.succeeded++
			} else {
				t.lost++
				l.lost = append(l.lost, desc+": "+strings.Join(why, "; "))
			}
		}
	}
	for _, e := range st.events {
		for _, s := range e.stored {
			if !storedSeqs[s] {
				l.kind(e.kind).lost++
				l.lost = append(l.lost, fmt.Sprintf("%s %s: acknowledged by JetStream as seq %d, not in the stream", e.kind, e.msgID, s))
			}
		}
	}

	// Effects at the fakes.
	expected := map[string]map[string]string{} // provider → name valid events make → the service or client it is for
	predictedMalformed := map[string]bool{}    // provider/name malformed events would make
	for e := range logical {
		if e.malformed {
			for _, k := range []string{kindComet, kindCodeGuard} {
				p, names := expectedNames(&event{kind: k, sid: e.sid})
				for _, n := range names {
					predictedMalformed[p+"/"+n] = true
				}
			}
			continue
		}
		if p, names := expectedNames(e); p != "" {
			if expected[p] == nil {
				expected[p] = map[string]string{}
			}
			owner := fmt.Sprintf("service %d", e.sid)
			if e.kind == kindReseller {
				owner = fmt.Sprintf("client %d", e.clientID)
			}
			for _, n := range names {
				expected[p][n] = owner
			}
		}
	}
	succeededRefs := map[string]map[string]bool{}
	for _, r := range st.results {
		if r.typ == events.ProvisioningSucceeded && r.data.Action.IsSignup() && r.data.Reference != "" {
			if succeededRefs[r.data.Provider] == nil {
				succeededRefs[r.data.Provider] = map[string]bool{}
			}
			succeededRefs[r.data.Provider][r.data.Reference] = true
		}
	}
	heldRefs := map[string]map[string]bool{}
	renewalsByName := map[string]int{} // codeguard domain → renewals applied
	for _, pe := range st.effects {
		heldRefs[pe.provider] = map[string]bool{}
		owners := map[string][]string{} // service or client → names held for it
		for _, h := range pe.held {
			l.effectsHeld++
			heldRefs[pe.provider][h.ref] = true
			if pe.provider == "codeguard" {
				renewalsByName[h.name] += h.renewals
			}
			switch owner, ok := expected[pe.provider][h.name]; {
			case ok:
				owners[owner] = append(owners[owner], h.name)
			case succeededRefs[pe.provider][h.ref]:
			case predictedMalformed[pe.provider+"/"+h.name] || strings.ContainsRune(h.name, '\uFFFD'):
				l.malformedEffects = append(l.malformedEffects, fmt.Sprintf("%s: %q made by a malformed event", pe.provider, h.name))
			default:
				l.duplicates = append(l.duplicates, fmt.Sprintf("%s: %q held, made by no event and named in no result", pe.provider, h.name))
			}
		}
		for o, names := range owners {
			if len(names) > 1 {
				l.duplicates = append(l.duplicates, fmt.Sprintf("%s: %d accounts/orders for %s: %q", pe.provider, len(names), o, names))
			}
		}
		if pe.created > len(pe.held) {
			l.duplicates = append(l.duplicates, fmt.Sprintf("%s: created %d accounts/orders, holds %d (nothing was deleted)", pe.provider, pe.created, len(pe.held)))
		}
	}
	sort.Strings(l.duplicates)
	for k, r := range byOp {
		refs := map[string]bool{}
		for _, s := range r.succeeded {
			if s.data.Action.IsSignup() && s.data.Reference != "" {
				refs[s.data.Reference] = true
			}
		}
		if len(refs) > 1 {
			l.duplicates = append(l.duplicates, fmt.Sprintf("%s: succeeded with %d different references", k, len(refs)))
		}
		for ref := range refs {
			p := r.succeeded[0].data.Provider
			if !heldRefs[p][ref] {
				l.missing = append(l.missing, fmt.Sprintf("%s: succeeded with reference %q, which %s does not hold", k, ref, p))
			}
		}
	}
	sort.Strings(l.missing)

	// Renewals: applied at the fake against paid (succeeded) per order.
	type renewal struct{ paid, dead int }
	bySID := map[int]*renewal{}
	for e := range logical {
		if e.kind != kindRenewal {
			continue
		}
		r := bySID[e.sid]
		if r == nil {
			r = &renewal{}
			bySID[e.sid] = r
		}
		switch o := op(e.ops[0]); {
		case len(o.succeeded) > 0:
			r.paid++
		case o.dead:
			r.dead++
		}
	}
	for sid, r := range bySID {
		applied := renewalsByName[domainOf(sid)]
		l.renewalsPaid += r.paid
		l.renewalsApplied += applied
		delete(renewalsByName, domainOf(sid))
		if applied < r.paid || applied > r.paid+r.dead {
			l.renewalMismatch = append(l.renewalMismatch, fmt.Sprintf("service %d (%s): %d renewals applied, %d paid and reported succeeded, %d dead-lettered",
				sid, domainOf(sid), applied, r.paid, r.dead))
		}
	}
	for name, applied := range renewalsByName {
		if applied > 0 {
			l.renewalsApplied += applied
			l.renewalMismatch = append(l.renewalMismatch, fmt.Sprintf("%s: %d renewals applied, none paid", name, applied))
		}
	}
	sort.Strings(l.renewalMismatch)
	return l
}

// failures names every broken promise; empty means the run passed.
func (l *ledger) failures() []string {
	var out []string
	add := func(n int, what string) {
		if n > 0 {
			out = append(out, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(len(l.lost), "lost")
	add(int(l.stuck), "still pending")
	add(len(l.duplicates), "duplicate effects")
	add(len(l.missing), "missing effects")
	add(len(l.renewalMismatch), "orders with renewals applied != paid")
	add(len(l.dlqNoResult), "dead letters without a dead_lettered result")
	add(len(l.malformedDone), "malformed events processed")
	add(len(l.malformedEffects), "effects of malformed events")
	add(len(l.rejectedValid), "valid events JetStream never stored")
	for _, f := range l.logFindings {
		if strings.HasPrefix(f.what, "SECRET") || f.what == "panic" || f.what == "data race" {
			add(f.count, f.what)
		}
	}
	return out
}

func (l *ledger) print(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	list := func(items []string) {
		const max = 12
		for i, s := range items {
			if i == max {
				p("      … and %d more", len(items)-max)
				break
			}
			p("      %s", s)
		}
	}
	var faults []string
	nf := 0
	for _, k := range l.faultKeys {
		faults = append(faults, fmt.Sprintf("%s %d", k, l.faults[k]))
		nf += l.faults[k]
	}
	var skipped []string
	for k := range l.skipped {
		skipped = append(skipped, k)
	}
	sort.Strings(skipped)
	p("")
	p("== chaos ledger  (seed %d; chaos %s, whole run %s; %d workers)", l.seed, l.duration, l.total.Round(time.Second), l.workers)
	p("injected         %d worker SIGKILLs, %d nats-server restarts, %d provider faults (%s)", l.kills, l.natsRestarts, nf, strings.Join(faults, ", "))
	if len(skipped) > 0 {
		p("left out         %s", strings.Join(skipped, ", "))
	}
	p("published        %d publishes of %d events; %d dropped by JetStream as in-window duplicates", l.published, l.logical, l.inWindow)
	p("stored           %d messages in the events stream (after-window duplicates stored again)", l.stored)
	p("succeeded        %d messages finished with their operations' results (+%d with no operation)", l.succeeded, l.noop)
	p("dead-lettered    %d messages (%d valid ones that exhausted their deliveries; %d dead-lettered twice)", l.deadLettered, l.deadValid, l.doubleDead)
	list(l.deadValidWhy)
	p("lost             %d", len(l.lost))
	list(l.lost)
	p("still pending    %d (consumer num_pending + num_ack_pending after %s%s)", l.stuck, l.drainedIn.Round(time.Second), map[bool]string{true: "", false: ", settle timed out"}[l.drained])
	p("duplicate effects  %d", len(l.duplicates))
	list(l.duplicates)
	p("missing effects    %d", len(l.missing))
	list(l.missing)
	p("renewals applied != paid  %d orders (paid and succeeded %d, applied %d)", len(l.renewalMismatch), l.renewalsPaid, l.renewalsApplied)
	list(l.renewalMismatch)
	p("dead letters without a dead_lettered result  %d", len(l.dlqNoResult))
	list(l.dlqNoResult)
	p("malformed events processed as valid  %d", len(l.malformedDone)+len(l.malformedEffects))
	list(append(append([]string{}, l.malformedDone...), l.malformedEffects...))
	if len(l.rejectedValid)+len(l.rejectedMalformed) > 0 {
		p("refused at publish (the publisher got the error)  %d valid, %d malformed", len(l.rejectedValid), len(l.rejectedMalformed))
		list(append(append([]string{}, l.rejectedValid...), l.rejectedMalformed...))
	}
	p("effects held at the fakes  %d accounts/orders", l.effectsHeld)
	p("")
	p("%-34s %9s %7s %9s %6s %5s %6s", "kind", "published", "stored", "finished", "dead", "lost", "other")
	var kinds []string
	for k := range l.kinds {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t := l.kinds[k]
		p("%-34s %9d %7d %9d %6d %5d %6d", k, t.published, t.stored, t.finished, t.dead, t.lost, t.other)
	}
	if len(l.logFindings) > 0 || len(l.crashes) > 0 {
		p("")
		p("worker logs:")
		for _, f := range l.logFindings {
			p("  %4d × %s", f.count, f.what)
			p("         first: %s", f.first)
		}
		if len(l.crashes) > 0 {
			p("  %4d × a worker exited by itself (restarted after 1 s, as systemd would)", len(l.crashes))
			list(l.crashes)
		}
	}
}
