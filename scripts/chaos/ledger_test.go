package main

import (
	"strings"
	"testing"

	"github.com/hookworker/hookworker/events"
)

// A healthy state: a Comet signup that succeeded once with its account at
// the fake, a CodeGuard order renewed twice for two paid renewals, and a
// malformed event dead-lettered with its result.
func healthyState() state {
	comet := signupEvent(kindComet, "comet", 1, productComet)
	comet.stored = []uint64{1}
	cg := signupEvent(kindCodeGuard, "codeguard", 2, productCodeGuard)
	cg.stored = []uint64{2}
	r1, r2 := renewalEvent(2, productCodeGuard, 700000), renewalEvent(2, productCodeGuard, 700001)
	r1.stored, r2.stored = []uint64{3}, []uint64{4}
	bad := malformedEvent(malformedKinds[2], 900000) // big-raw
	bad.stored = []uint64{5}
	_, names := expectedNames(comet)
	cometName := names[0]
	ok := func(e *event, ref string) resultMsg {
		return resultMsg{id: "hookworker:" + e.ops[0] + ":succeeded", typ: events.ProvisioningSucceeded, data: events.ResultData{
			SourceEventID: e.envID, OperationKey: e.ops[0], Action: actionOf(e), Provider: e.provider, ServiceID: e.sid, Reference: ref}}
	}
	return state{
		events: []*event{comet, cg, r1, r2, bad},
		stored: []storedMsg{{1, comet.msgID, comet.subject}, {2, cg.msgID, cg.subject}, {3, r1.msgID, r1.subject},
			{4, r2.msgID, r2.subject}, {5, bad.msgID, bad.subject}},
		results: []resultMsg{ok(comet, cometName), ok(cg, "77"), ok(r1, "77"), ok(r2, "77"),
			{id: "hookworker:stream:WHMCS_EVENTS:5:dead_lettered:5", typ: events.ProvisioningDeadLettered,
				data: events.ResultData{SourceEventID: "stream:WHMCS_EVENTS:5", OperationKey: "stream:WHMCS_EVENTS:5"}}},
		dead: []events.DeadLetter{{StreamSequence: 5, Subject: bad.subject}},
		effects: []providerEffects{
			{provider: "comet", created: 1, held: []heldEffect{{name: cometName, ref: cometName}}},
			{provider: "codeguard", created: 1, held: []heldEffect{{name: domainOf(2), ref: "77", renewals: 2}}},
			{provider: "storegrid"},
		},
	}
}

func actionOf(e *event) events.Action {
	if e.kind == kindRenewal {
		return events.Renew
	}
	return events.SignupCustomer
}

func TestLedger(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(*state)
		want  string // a failure containing this; "" = passes
	}{
		{"healthy", func(*state) {}, ""},
		{"lost: no result and no dead letter", func(s *state) { s.results = s.results[1:] }, "1 lost"},
		{"lost: malformed without dead letter", func(s *state) { s.dead = nil }, "1 lost"},
		{"lost: acknowledged but not in the stream", func(s *state) { s.stored = s.stored[1:] }, "1 lost"},
		{"still pending", func(s *state) { s.ackPending = 2 }, "2 still pending"},
		{"duplicate: second account", func(s *state) {
			s.effects[0].held = append(s.effects[0].held, heldEffect{name: "hwother", ref: "hwother"})
			s.effects[0].created = 2
		}, "duplicate effects"},
		{"duplicate: accounts under both names", func(s *state) {
			email := clientOf(clientOfService(1)).Email
			s.effects[0].held = append(s.effects[0].held, heldEffect{name: email, ref: email})
			s.effects[0].created = 2
		}, "1 duplicate effects"},
		{"duplicate: created twice", func(s *state) { s.effects[1].created = 2 }, "1 duplicate effects"},
		{"duplicate: two orders for one domain", func(s *state) {
			s.effects[1].held = append(s.effects[1].held, heldEffect{name: domainOf(2), ref: "78"})
			s.effects[1].created = 2
		}, "duplicate effects"},
		{"missing: succeeded, account absent", func(s *state) { s.effects[0].held, s.effects[0].created = nil, 0 }, "1 missing effects"},
		{"renewal lost", func(s *state) { s.effects[1].held[0].renewals = 1 }, "1 orders with renewals applied != paid"},
		{"renewal twice", func(s *state) { s.effects[1].held[0].renewals = 3 }, "1 orders with renewals applied != paid"},
		{"dead letter without result", func(s *state) { s.results = s.results[:4] }, "1 dead letters without a dead_lettered result"},
		{"malformed processed", func(s *state) {
			s.dead = nil
			s.results = append(s.results[:4], resultMsg{typ: events.ProvisioningSucceeded, data: events.ResultData{
				SourceEventID: "x", OperationKey: events.ServiceKey(source, 900000, events.SignupCustomer), Action: events.SignupCustomer,
				Provider: "comet", ServiceID: 900000, Reference: "hwbad"}})
			s.effects[0].held = append(s.effects[0].held, heldEffect{name: "hwbad", ref: "hwbad"})
			s.effects[0].created = 2
		}, "1 malformed events processed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := healthyState()
			c.spoil(&s)
			l := computeLedger(s)
			got := strings.Join(l.failures(), "; ")
			if c.want == "" {
				if got != "" {
					t.Fatalf("failures %q, want none", got)
				}
				if l.succeeded != 4 || l.deadLettered != 1 || l.stored != 5 {
					t.Errorf("succeeded %d, dead-lettered %d, stored %d; want 4, 1, 5", l.succeeded, l.deadLettered, l.stored)
				}
				return
			}
			if !strings.Contains(got, c.want) {
				t.Errorf("failures %q, want one containing %q", got, c.want)
			}
		})
	}
}
