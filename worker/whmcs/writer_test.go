package whmcs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/whmcs/whmcstest"
)

const passKey = "PK-very-secret-7731"

func TestWriterApply(t *testing.T) {
	type want struct {
		status    string // service 34's status after ("" = service untouched / not checked)
		username  string
		notesHas  string // in service 34's admin notes
		passKey   bool   // client 12's field 7 holds passKey
		notes     []string
		activity  []string
		noCallsTo []string
		noCalls   bool
	}
	tests := []struct {
		name    string
		typ     events.Type
		data    events.ResultData
		fieldID int
		seed    *whmcstest.Product
		want    want
	}{
		{name: "storegrid signup: active, username, pass key, log line",
			typ: events.ProvisioningSucceeded, fieldID: 7,
			data: events.ResultData{Action: events.SignupCustomer, Provider: "storegrid", ServiceID: 34, ClientID: 12,
				Reference: "cust-acct-1", WriteBack: map[string]string{"Pass Key": passKey}},
			want: want{status: "Active", username: "cust-acct-1", passKey: true,
				activity: []string{"hookworker: signup_customer at storegrid succeeded: cust-acct-1 (service #34) [hw:"}}},
		{name: "comet signup already done",
			typ: events.ProvisioningSucceeded,
			data: events.ResultData{Action: events.SignupCustomer, Provider: "comet", ServiceID: 34, ClientID: 12,
				Reference: "c-user", AlreadyDone: true},
			want: want{status: "Active", username: "c-user", activity: []string{"succeeded: c-user (service #34) (already in place)"},
				noCallsTo: []string{"UpdateClient", "AddClientNote"}}},
		{name: "codeguard signup: order id in the admin notes, username untouched",
			typ:  events.ProvisioningSucceeded,
			seed: &whmcstest.Product{ServiceID: 34, ClientID: 12, Status: "Pending", Username: "orig", Notes: "admin wrote this"},
			data: events.ResultData{Action: events.SignupCustomer, Provider: "codeguard", ServiceID: 34, ClientID: 12, Reference: "987654"},
			want: want{status: "Active", username: "orig", notesHas: "admin wrote this\ncodeguard reference: 987654",
				activity: []string{"signup_customer at codeguard succeeded: 987654 (service #34)"}}},
		{name: "signup for a service since terminated keeps its status",
			typ:  events.ProvisioningSucceeded,
			seed: &whmcstest.Product{ServiceID: 34, ClientID: 12, Status: "Terminated"},
			data: events.ResultData{Action: events.SignupCustomer, Provider: "sandbox", ServiceID: 34, ClientID: 12, Reference: "sb1"},
			want: want{status: "Terminated", username: "sb1", activity: []string{"succeeded: sb1"}}},
		{name: "reseller signup on ClientAdd: no service call",
			typ:  events.ProvisioningSucceeded,
			data: events.ResultData{SourceEventType: events.ClientAdded, Action: events.SignupReseller, Provider: "storegrid", ClientID: 12, Reference: "res-12"},
			want: want{activity: []string{"signup_reseller at storegrid succeeded: res-12 (client #12)"},
				noCallsTo: []string{"UpdateClientProduct", "GetClientsProducts", "AddClientNote"}}},
		{name: "suspend succeeded: log line only",
			typ:  events.ProvisioningSucceeded,
			seed: &whmcstest.Product{ServiceID: 34, ClientID: 12, Status: "Suspended", Username: "acct"},
			data: events.ResultData{Action: events.Suspend, Provider: "comet", ServiceID: 34, ClientID: 12, Reference: "acct"},
			want: want{status: "Suspended", username: "acct", activity: []string{"suspend at comet succeeded: acct (service #34)"},
				noCallsTo: []string{"UpdateClientProduct", "GetClientsProducts", "AddClientNote", "UpdateClient"}}},
		{name: "pass key without a field id: sticky note, value not stored",
			typ: events.ProvisioningSucceeded, fieldID: 0,
			data: events.ResultData{Action: events.SignupCustomer, Provider: "storegrid", ServiceID: 34, ClientID: 12,
				Reference: "acct", WriteBack: map[string]string{"Pass Key": passKey}},
			want: want{status: "Active", username: "acct", notes: []string{`field(s) "Pass Key"`, "HOOKWORKER_WHMCS_PASSKEY_FIELD_ID"},
				activity: []string{`(not stored: "Pass Key")`}, noCallsTo: []string{"UpdateClient"}}},
		{name: "dead-lettered: sticky note and log line",
			typ: events.ProvisioningDeadLettered,
			data: events.ResultData{SourceEventType: events.OrderAccepted, Action: events.SignupCustomer, Provider: "comet",
				ServiceID: 34, ClientID: 12, Attempt: 5, ErrorClass: events.Transient, Error: "comet: HTTP 503 after 5 attempts"},
			want: want{notes: []string{"signup_customer at comet failed for service #34: comet: HTTP 503 after 5 attempts", "dead-letter stream"},
				activity:  []string{"signup_customer at comet was dead-lettered: comet: HTTP 503 after 5 attempts (service #34)"},
				noCallsTo: []string{"UpdateClientProduct"}}},
		{name: "failed, no retry: sticky note and log line",
			typ: events.ProvisioningFailed,
			data: events.ResultData{Action: events.Renew, Provider: "codeguard", ServiceID: 34, ClientID: 12, Attempt: 1,
				ErrorClass: events.Permanent, Error: "codeguard: plan not found"},
			want: want{notes: []string{"renew at codeguard failed for service #34: codeguard: plan not found (permanent error)", "will not retry"},
				activity: []string{"renew at codeguard failed permanently: codeguard: plan not found (service #34)"}}},
		{name: "failed, permanent class even with will_retry: note",
			typ: events.ProvisioningFailed,
			data: events.ResultData{Action: events.Suspend, Provider: "comet", ServiceID: 34, ClientID: 12, Attempt: 1, WillRetry: true,
				ErrorClass: events.Permanent, Error: "no such user"},
			want: want{notes: []string{"no such user"}, activity: []string{"failed permanently: no such user"}}},
		{name: "failed, will retry, first attempt: log line only",
			typ: events.ProvisioningFailed,
			data: events.ResultData{Action: events.SignupCustomer, Provider: "comet", ServiceID: 34, ClientID: 12, Attempt: 1, WillRetry: true,
				ErrorClass: events.Transient, Error: "timeout"},
			want: want{activity: []string{"signup_customer at comet failed, will retry: timeout (service #34)"},
				noCallsTo: []string{"AddClientNote", "UpdateClientProduct"}}},
		{name: "failed, will retry, later attempt: nothing",
			typ: events.ProvisioningFailed,
			data: events.ResultData{Action: events.SignupCustomer, Provider: "comet", ServiceID: 34, ClientID: 12, Attempt: 3, WillRetry: true,
				ErrorClass: events.Transient, Error: "timeout"},
			want: want{noCalls: true}},
		{name: "dead-lettered malformed event without client: log line only",
			typ:  events.ProvisioningDeadLettered,
			data: events.ResultData{SourceEventID: "evt-9", SourceEventType: events.InvoicePaid, ErrorClass: events.Permanent, Error: "field \"data.invoice_id\": is required"},
			want: want{activity: []string{"invoice.paid evt-9 was dead-lettered: field \"data.invoice_id\": is required (no service)"},
				noCallsTo: []string{"AddClientNote"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, js := startJetStream(t)
			f := newFake(t)
			if tt.seed != nil {
				f.AddProduct(*tt.seed)
			}
			cfg := fakeConfig(f)
			cfg.PassKeyFieldID = tt.fieldID
			log, logs := observed()
			w := NewWriter(newClient(t, cfg), newKV(t, js), log)
			env := result(t, tt.typ, "res-"+strings.ReplaceAll(tt.name, " ", "_"), tt.data)

			if err := w.Apply(context.Background(), env); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if tt.want.noCalls && len(f.Calls()) != 0 {
				t.Errorf("calls = %+v, want none", f.Calls())
			}
			if m := moduleCalls(f); len(m) > 0 {
				t.Errorf("Module* calls: %v", m)
			}
			for _, a := range tt.want.noCallsTo {
				if n := len(f.CallsTo(a)); n > 0 {
					t.Errorf("%d calls to %s, want none", n, a)
				}
			}
			if tt.want.status != "" {
				p, _ := f.Product(34)
				if p.Status != tt.want.status || p.Username != tt.want.username {
					t.Errorf("service = %+v, want status %s username %s", p, tt.want.status, tt.want.username)
				}
				if !strings.Contains(p.Notes, tt.want.notesHas) {
					t.Errorf("service notes = %q, want %q", p.Notes, tt.want.notesHas)
				}
			}
			if got := f.CustomFields(12)[7]; (got == passKey) != tt.want.passKey {
				t.Errorf("client field 7 = %q, want pass key stored: %t", got, tt.want.passKey)
			}
			notes := f.Notes(12)
			if len(tt.want.notes) == 0 && len(notes) != 0 {
				t.Errorf("notes = %+v, want none", notes)
			}
			if len(tt.want.notes) > 0 {
				if len(notes) != 1 || !notes[0].Sticky {
					t.Fatalf("notes = %+v, want one sticky note", notes)
				}
				for _, s := range tt.want.notes {
					if !strings.Contains(notes[0].Text, s) {
						t.Errorf("note %q does not contain %q", notes[0].Text, s)
					}
				}
			}
			act := f.Activity()
			if len(act) != len(tt.want.activity) && !(len(tt.want.activity) > 0 && len(act) == 1) {
				t.Fatalf("activity = %+v, want %d line(s)", act, len(tt.want.activity))
			}
			for _, s := range tt.want.activity {
				if !strings.Contains(act[0].Description, s) {
					t.Errorf("activity %q does not contain %q", act[0].Description, s)
				}
			}
			// The pass key goes to WHMCS's field only.
			assertNotLogged(t, logs, passKey, cfg.Secret)
			for _, n := range notes {
				if strings.Contains(n.Text, passKey) {
					t.Errorf("note holds the pass key: %q", n.Text)
				}
			}
			for _, a := range act {
				if strings.Contains(a.Description, passKey) {
					t.Errorf("activity holds the pass key: %q", a.Description)
				}
			}

			// A replay changes nothing and calls nothing.
			before := len(f.Calls())
			if err := w.Apply(context.Background(), env); err != nil {
				t.Fatalf("replayed Apply: %v", err)
			}
			if after := len(f.Calls()); after != before {
				t.Errorf("replay made %d WHMCS calls", after-before)
			}
			if len(f.Notes(12)) != len(notes) || len(f.Activity()) != len(act) {
				t.Errorf("replay added notes or activity lines")
			}
		})
	}
}

func TestWriterCrashWindow(t *testing.T) {
	failure := events.ResultData{Action: events.SignupCustomer, Provider: "comet", ServiceID: 34, ClientID: 12,
		Attempt: 4, ErrorClass: events.Transient, Error: "comet down"}
	tests := []struct {
		name         string
		inject       func(f *whmcstest.Server)
		wantFirstErr error // the first Apply's error must match; nil = any transient error
		wantNotes    int
		wantActivity int
		wantSkipped  float64
	}{
		{name: "note refused with 500: sent again",
			inject:    func(f *whmcstest.Server) { f.FailNext(1, http.StatusInternalServerError) },
			wantNotes: 1, wantActivity: 1},
		{name: "note reply lost: not sent again (at most once)",
			inject:       func(f *whmcstest.Server) { f.LoseNextReplyTo("AddClientNote", 1) },
			wantFirstErr: ErrOutcomeUnknown, wantNotes: 1, wantActivity: 1, wantSkipped: 1},
		{name: "log line reply lost: found in the activity log, not written again",
			inject:       func(f *whmcstest.Server) { f.LoseNextReplyTo("LogActivity", 1) },
			wantFirstErr: ErrOutcomeUnknown, wantNotes: 1, wantActivity: 1},
		{name: "log line reply lost, lookup refused: not written again",
			inject: func(f *whmcstest.Server) {
				f.LoseNextReplyTo("LogActivity", 1)
				f.FailNextTo("GetActivityLog", 1, http.StatusOK)
			},
			wantFirstErr: ErrOutcomeUnknown, wantNotes: 1, wantActivity: 1},
		{name: "log line refused: written on retry",
			inject:    func(f *whmcstest.Server) { f.FailNextTo("LogActivity", 1, http.StatusBadGateway) },
			wantNotes: 1, wantActivity: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, js := startJetStream(t)
			f := newFake(t)
			m, err := NewMetrics(prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			w := NewWriter(newClient(t, fakeConfig(f)), newKV(t, js), nil).WithMetrics(m)
			env := result(t, events.ProvisioningDeadLettered, "res-crash", failure)
			tt.inject(f)
			err = w.Apply(context.Background(), env)
			if tt.wantFirstErr != nil && !errors.Is(err, tt.wantFirstErr) {
				t.Fatalf("first Apply = %v, want %v", err, tt.wantFirstErr)
			}
			if err != nil && events.ClassOf(err) != events.Transient {
				t.Fatalf("first Apply = %v, want transient", err)
			}
			for i := 0; i < 3; i++ {
				if err := w.Apply(context.Background(), env); err != nil {
					t.Fatalf("retry %d: %v", i, err)
				}
			}
			if n := len(f.Notes(12)); n != tt.wantNotes {
				t.Errorf("notes = %d, want %d", n, tt.wantNotes)
			}
			if n := len(f.Activity()); n != tt.wantActivity {
				t.Errorf("activity lines = %d, want %d: %+v", n, tt.wantActivity, f.Activity())
			}
			if got := counterValue(m.Calls.WithLabelValues("AddClientNote", "skipped_in_doubt")); got != tt.wantSkipped {
				t.Errorf("skipped_in_doubt = %v, want %v", got, tt.wantSkipped)
			}
			if got := counterValue(m.Results.WithLabelValues(string(events.ProvisioningDeadLettered), "applied")); got != 1 {
				t.Errorf("applied = %v, want 1", got)
			}
		})
	}
}

func TestWriterConcurrentSameResult(t *testing.T) {
	_, js := startJetStream(t)
	f := newFake(t)
	w := NewWriter(newClient(t, fakeConfig(f)), newKV(t, js), nil)
	env := result(t, events.ProvisioningDeadLettered, "res-concurrent", events.ResultData{Action: events.Renew,
		Provider: "comet", ServiceID: 34, ClientID: 12, Error: "boom", ErrorClass: events.Permanent})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for try := 0; try < 50; try++ {
				err := w.Apply(context.Background(), env)
				if err == nil {
					return
				}
				if events.ClassOf(err) != events.Transient {
					errs <- err
					return
				}
			}
			errs <- fmt.Errorf("never applied")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(f.Notes(12)); n != 1 {
		t.Errorf("notes = %d, want 1", n)
	}
	if n := len(f.Activity()); n != 1 {
		t.Errorf("activity lines = %d, want 1", n)
	}
}

func TestWriterErrors(t *testing.T) {
	_, js := startJetStream(t)
	f := newFake(t)
	f.SetStrict(true)
	w := NewWriter(newClient(t, fakeConfig(f)), newKV(t, js), nil)
	ctx := context.Background()

	inbound := result(t, events.ProvisioningSucceeded, "x", events.ResultData{Action: events.Renew, Provider: "comet", ServiceID: 1})
	inbound.Type = events.OrderAccepted
	if err := w.Apply(ctx, inbound); events.ClassOf(err) != events.Permanent {
		t.Errorf("inbound event: err = %v, want permanent", err)
	}
	unknown := result(t, events.ProvisioningSucceeded, "res-unknown-service", events.ResultData{Action: events.SignupCustomer,
		Provider: "comet", ServiceID: 404, ClientID: 1, Reference: "u"})
	if err := w.Apply(ctx, unknown); err == nil || events.ClassOf(err) != events.Permanent {
		t.Errorf("unknown service: err = %v, want permanent", err)
	}
	f.FailNext(1, http.StatusServiceUnavailable)
	f.AddProduct(whmcstest.Product{ServiceID: 5, ClientID: 1})
	ok := result(t, events.ProvisioningSucceeded, "res-ok", events.ResultData{Action: events.SignupCustomer,
		Provider: "comet", ServiceID: 5, ClientID: 1, Reference: "u"})
	if err := w.Apply(ctx, ok); events.ClassOf(err) != events.Transient {
		t.Errorf("503: err = %v, want transient", err)
	}
	if err := w.Apply(ctx, ok); err != nil {
		t.Errorf("after 503: %v", err)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
