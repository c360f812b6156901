package events_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookworker/hookworker/events"
)

func TestEverySampleDecodes(t *testing.T) {
	for _, typ := range events.InboundTypes() {
		env, err := events.Sample(typ, "main")
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		b, _ := json.Marshal(env)
		got, err := events.Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if got.ID != env.ID || got.Type != typ || got.Source != "main" {
			t.Errorf("%s: round trip %+v", typ, got)
		}
		want, err := got.Payload()
		if err != nil {
			t.Errorf("%s payload: %v", typ, err)
		}
		// DecodeWithPayload hands back the same validated data in one decode.
		env2, p, err := events.DecodeWithPayload(b)
		if err != nil || env2.ID != env.ID || p == nil {
			t.Fatalf("%s: DecodeWithPayload = %+v, %v, %v", typ, env2, p, err)
		}
		pj, _ := json.Marshal(p)
		wj, _ := json.Marshal(want)
		if fmt.Sprintf("%T", p) != fmt.Sprintf("%T", want) || string(pj) != string(wj) {
			t.Errorf("%s: DecodeWithPayload payload %T %s, Payload() %T %s", typ, p, pj, want, wj)
		}
	}
	if _, p, err := events.DecodeWithPayload([]byte(`{"id":"x","type":"order.accepted"}`)); err == nil || p != nil {
		t.Errorf("an invalid event: payload %v, error %v; want nil and an error", p, err)
	}
}

func TestDecodeNamesTheWrongField(t *testing.T) {
	valid := `{"id":"whmcs:main:AcceptOrder:5","type":"order.accepted","spec_version":"1.0","occurred_at":"2026-11-22T10:00:00Z","source":"main","data":%s}`
	order := `{"order_id":5,"client":{"id":7,"email":"a@b.c"},"services":[{"service_id":9,"product_id":1}]}`
	for _, tc := range []struct {
		name, body, field string
	}{
		{"empty", ``, ""},
		{"not json", `{nope`, ""},
		{"no id", strings.Replace(fmt.Sprintf(valid, order), `"id":"whmcs:main:AcceptOrder:5",`, "", 1), "id"},
		{"no type", strings.Replace(fmt.Sprintf(valid, order), `"type":"order.accepted",`, "", 1), "type"},
		{"unknown type", strings.Replace(fmt.Sprintf(valid, order), `order.accepted`, "order.exploded", 1), "type"},
		{"future spec", strings.Replace(fmt.Sprintf(valid, order), `"1.0"`, `"2.0"`, 1), "spec_version"},
		{"bad time", strings.Replace(fmt.Sprintf(valid, order), `2026-11-22T10:00:00Z`, "yesterday", 1), "occurred_at"},
		{"bad source", strings.Replace(fmt.Sprintf(valid, order), `"source":"main"`, `"source":"main.eu"`, 1), "source"},
		{"no data", strings.Replace(fmt.Sprintf(valid, order), order, "null", 1), "data"},
		{"order id zero", fmt.Sprintf(valid, strings.Replace(order, `"order_id":5`, `"order_id":0`, 1)), "data.order_id"},
		{"order id string", fmt.Sprintf(valid, strings.Replace(order, `"order_id":5`, `"order_id":"5"`, 1)), "data.order_id"},
		{"client email", fmt.Sprintf(valid, strings.Replace(order, `"email":"a@b.c"`, `"email":""`, 1)), "data.client.email"},
		{"service product", fmt.Sprintf(valid, strings.Replace(order, `"product_id":1`, `"product_id":0`, 1)), "data.services[0].product_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := events.Decode([]byte(tc.body))
			if err == nil {
				t.Fatal("decoded")
			}
			if !errors.Is(err, events.ErrMalformed) {
				t.Errorf("%v does not match ErrMalformed", err)
			}
			if events.ClassOf(err) != events.Permanent {
				t.Errorf("class %s, want permanent", events.ClassOf(err))
			}
			var fe *events.FieldError
			if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
				t.Errorf("error %v does not name field %q", err, tc.field)
			}
		})
	}
}

func TestUnknownFieldsAreIgnored(t *testing.T) {
	env, _ := events.Sample(events.ClientAdded, "main")
	var m map[string]any
	b, _ := json.Marshal(env)
	_ = json.Unmarshal(b, &m)
	m["added_in_v1_1"] = true
	b, _ = json.Marshal(m)
	if _, err := events.Decode(b); err != nil {
		t.Fatal(err)
	}
}

func TestClassification(t *testing.T) {
	base := errors.New("boom")
	for _, tc := range []struct {
		err  error
		want events.ErrorClass
	}{
		{events.AsTransient(base, time.Second), events.Transient},
		{events.AsPermanent(base), events.Permanent},
		{fmt.Errorf("wrapped: %w", events.AsPermanent(base)), events.Permanent},
		{events.WithReply(events.AsPermanent(base), "reply"), events.Permanent},
		{&events.FieldError{Field: "x"}, events.Permanent},
		{base, events.Transient},
	} {
		if got := events.ClassOf(tc.err); got != tc.want {
			t.Errorf("ClassOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	if d := events.RetryAfterOf(fmt.Errorf("x: %w", events.AsTransient(base, 3*time.Second))); d != 3*time.Second {
		t.Errorf("RetryAfterOf = %s", d)
	}
	if r := events.ReplyOf(events.WithReply(events.AsTransient(base, 0), strings.Repeat("x", 5000))); len(r) > 2100 {
		t.Errorf("reply not trimmed: %d bytes", len(r))
	}
}

func TestSubjects(t *testing.T) {
	if s := events.InboundSubject("main", events.OrderAccepted); s != "whmcs.main.order.accepted" {
		t.Fatal(s)
	}
	src, typ, ok := events.ParseInboundSubject("whmcs.main.service.renewal_paid")
	if !ok || src != "main" || typ != events.ServiceRenewalPaid {
		t.Fatal(src, typ, ok)
	}
	if _, _, ok := events.ParseInboundSubject("hookworker.results.failed"); ok {
		t.Fatal("parsed a result subject as inbound")
	}
	if s := events.DeadLetterSubject("", "order exploded"); s != "hookworker.dlq.unknown.unknown" {
		t.Fatal(s)
	}
}

func TestKeysAreStableAndDistinct(t *testing.T) {
	keys := map[string]bool{
		events.ServiceKey("main", 5, events.SignupCustomer):  true,
		events.ClientKey("main", 5, events.SignupReseller):   true,
		events.RenewalKey("main", 5, 10):                     true,
		events.RenewalKey("main", 5, 11):                     true,
		events.ServiceKey("other", 5, events.SignupCustomer): true,
	}
	if len(keys) != 5 {
		t.Fatalf("keys collide: %v", keys)
	}
	if events.ServiceKey("main", 5, events.SignupCustomer) != "whmcs:main:service:5:signup_customer" {
		t.Fatal(events.ServiceKey("main", 5, events.SignupCustomer))
	}
}

func TestMonthsOf(t *testing.T) {
	for cycle, want := range map[string]int{"Monthly": 1, "Quarterly": 3, "Semi-Annually": 6, "Annually": 12, "Biennially": 24, "Triennially": 36, "One Time": 0, "Free Account": 0} {
		if got, _ := events.MonthsOf(cycle); got != want {
			t.Errorf("%s: %d, want %d", cycle, got, want)
		}
	}
}

func ExampleDecode() {
	body := []byte(`{"id":"whmcs:main:ClientAdd:7","type":"client.added","spec_version":"1.0",
		"occurred_at":"2026-11-22T10:00:00Z","source":"main","data":{"client":{"id":7,"email":"ada@example.com"}}}`)
	env, err := events.Decode(body)
	if err != nil {
		panic(err)
	}
	p, _ := env.Payload()
	fmt.Println(env.Type, p.(*events.ClientAddedData).Client.Email, events.InboundSubject(env.Source, env.Type))

	_, err = events.Decode([]byte(`{"id":"x","type":"client.added","spec_version":"1.0","occurred_at":"2026-11-22T10:00:00Z","source":"main","data":{"client":{"id":0}}}`))
	fmt.Println(err)
	// Output:
	// client.added ada@example.com whmcs.main.client.added
	// field "data.client.id": must be a positive WHMCS client id
}
