package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/providers/providertest"
	"github.com/hookworker/hookworker/providers/sandbox"
)

func TestContract(t *testing.T) {
	providertest.Run(t, func(t *testing.T) providertest.Fixture {
		p := sandbox.New()
		return providertest.Fixture{
			Provider: p,
			Signup:   events.SignupCustomer,
			Created:  func() int { return len(p.Accounts()) },
			Renewals: func() int {
				n := 0
				for _, a := range p.Accounts() {
					n += a.Renewals
				}
				return n
			},
			State: func(ref string) string {
				a, ok := p.Account(ref)
				switch {
				case !ok:
					return ""
				case a.Deleted:
					return providertest.Deleted
				case a.Suspended:
					return providertest.Suspended
				}
				return providertest.Active
			},
			FailNext: func(n, status int) {
				for range n {
					p.FailNext(providers.ClassifyStatus(status, http.Header{}, fmt.Errorf("sandbox: HTTP %d", status)))
				}
			},
			DropAfterEffect: p.DropNextReply,
		}
	})
}

func TestConfiguredFailures(t *testing.T) {
	p := sandbox.New()
	op := events.Operation{Key: "k1", Action: events.SignupCustomer, Source: "t", ServiceID: 1, ClientID: 1,
		Settings: map[string]string{"fail_first": "2"}}
	for i := 1; i <= 2; i++ {
		if _, err := p.Apply(context.Background(), op); events.ClassOf(err) != events.Transient || err == nil {
			t.Fatalf("attempt %d: err %v, want transient", i, err)
		}
	}
	if _, err := p.Apply(context.Background(), op); err != nil {
		t.Fatalf("attempt 3: %v", err)
	}
	op = events.Operation{Key: "k2", Action: events.SignupCustomer, Source: "t", ServiceID: 2, ClientID: 1,
		Settings: map[string]string{"fail": "permanent"}}
	if _, err := p.Apply(context.Background(), op); err == nil || events.ClassOf(err) != events.Permanent {
		t.Fatalf("err %v, want permanent", err)
	}
	op = events.Operation{Key: "k3", Action: events.Suspend, Source: "t", ServiceID: 99, ClientID: 1}
	if _, err := p.Apply(context.Background(), op); !errors.Is(err, sandbox.ErrNoAccount) {
		t.Fatalf("suspend of a missing account: %v, want ErrNoAccount", err)
	}
}

func Example() {
	p := sandbox.New()
	op := events.Operation{Key: events.ServiceKey("main", 42, events.SignupCustomer), Action: events.SignupCustomer,
		Source: "main", ServiceID: 42, ClientID: 7}
	out, _ := p.Apply(context.Background(), op)
	again, _ := p.Apply(context.Background(), op)
	fmt.Println(out.Reference != "", again.AlreadyDone, p.Effects())
	// Output: true true 1
}
