// Command bench-watermill is the peer that scripts/bench compares hookworker
// with: a Watermill router on NATS JetStream doing comparable durable work
// per order.accepted event —
//
//  1. decode the event (envelope and data) and derive the operation key;
//  2. create the operation's idempotency record in the hookworker_ops
//     key-value bucket (Create is the claim; on a conflict the record is
//     read and, when it is done, its result is re-published);
//  3. call a no-op provider;
//  4. update the record to done, with the result it is about to publish;
//  5. return the provisioning.succeeded result, which the router publishes
//     (confirmed JetStream publish, Nats-Msg-Id = the result id) before
//  6. the subscriber acks the event (AckSync, Watermill's default).
//
// It uses watermill-nats' pkg/nats subscriber and publisher with JetStream
// on (the package its authors recommend for production): a durable push
// consumer with a queue group and -subscribers subscriptions, each handling
// one message at a time.
//
// It lives in its own module so the product's go.mod does not carry
// Watermill. It prints "ready" on stdout once subscribed and runs until
// SIGINT/SIGTERM.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS URL")
	subject := flag.String("subject", "whmcs.bench.order.accepted", "events subject (in the existing WHMCS_EVENTS stream)")
	results := flag.String("results", "hookworker.results.succeeded", "results subject (in the existing HOOKWORKER_RESULTS stream)")
	subscribers := flag.Int("subscribers", 8, "concurrent subscriptions (events handled at once)")
	flag.Parse()
	if err := run(*url, *subject, *results, *subscribers); err != nil {
		fmt.Fprintln(os.Stderr, "bench-watermill:", err)
		os.Exit(1)
	}
}

type record struct {
	Key       string          `json:"key"`
	State     string          `json:"state"`
	Provider  string          `json:"provider"`
	Action    string          `json:"action"`
	ServiceID int             `json:"service_id"`
	ProductID int             `json:"product_id"`
	ClientID  int             `json:"client_id"`
	Reference string          `json:"reference,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	ResultID  string          `json:"result_id,omitempty"`
	Created   time.Time       `json:"created"`
	Updated   time.Time       `json:"updated"`
}

type envelope struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	SpecVersion string          `json:"spec_version"`
	OccurredAt  time.Time       `json:"occurred_at"`
	Source      string          `json:"source"`
	Data        json.RawMessage `json:"data"`
}

type orderAccepted struct {
	OrderID int `json:"order_id"`
	Client  struct {
		ID int `json:"id"`
	} `json:"client"`
	Services []struct {
		ServiceID int `json:"service_id"`
		ProductID int `json:"product_id"`
	} `json:"services"`
}

type resultData struct {
	SourceEventID   string `json:"source_event_id"`
	SourceEventType string `json:"source_event_type"`
	OperationKey    string `json:"operation_key"`
	Action          string `json:"action"`
	Provider        string `json:"provider"`
	ProductID       int    `json:"product_id,omitempty"`
	ServiceID       int    `json:"service_id,omitempty"`
	ClientID        int    `json:"client_id,omitempty"`
	Reference       string `json:"reference,omitempty"`
	Attempt         int    `json:"attempt"`
}

func run(url, subject, results string, subscribers int) error {
	nc, err := nats.Connect(url, nats.Name("bench-watermill-kv"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	kv, err := js.KeyValue(ctx, "hookworker_ops")
	if err != nil {
		return fmt.Errorf("bucket hookworker_ops: %w", err)
	}

	logger := watermill.NopLogger{}
	marshaler := &wmnats.NATSMarshaler{}
	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:              url,
		NatsOptions:      []nats.Option{nats.Name("bench-watermill-sub")},
		QueueGroupPrefix: "watermill",
		SubscribersCount: subscribers,
		AckWaitTimeout:   30 * time.Second,
		CloseTimeout:     5 * time.Second,
		Unmarshaler:      marshaler,
		JetStream: wmnats.JetStreamConfig{
			DurablePrefix:    "watermill",
			SubscribeOptions: []nats.SubOpt{nats.DeliverAll(), nats.AckExplicit(), nats.MaxAckPending(4 * subscribers)},
		},
	}, logger)
	if err != nil {
		return err
	}
	defer sub.Close()
	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{
		URL:         url,
		NatsOptions: []nats.Option{nats.Name("bench-watermill-pub")},
		Marshaler:   marshaler,
		JetStream:   wmnats.JetStreamConfig{TrackMsgId: true},
	}, logger)
	if err != nil {
		return err
	}
	defer pub.Close()

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, logger)
	if err != nil {
		return err
	}
	router.AddHandler("provision", subject, sub, results, pub, func(msg *message.Message) ([]*message.Message, error) {
		return handle(msg.Context(), kv, msg)
	})
	go func() {
		<-router.Running()
		fmt.Println("ready")
	}()
	return router.Run(ctx)
}

func handle(ctx context.Context, kv jetstream.KeyValue, msg *message.Message) ([]*message.Message, error) {
	var env envelope
	if err := json.Unmarshal(msg.Payload, &env); err != nil {
		return nil, err
	}
	var d orderAccepted
	if err := json.Unmarshal(env.Data, &d); err != nil || len(d.Services) == 0 {
		return nil, fmt.Errorf("bad order.accepted data: %v", err)
	}
	svc := d.Services[0]
	opKey := "whmcs:" + env.Source + ":service:" + strconv.Itoa(svc.ServiceID) + ":signup_customer"
	key := "op." + base64.RawURLEncoding.EncodeToString([]byte(opKey))
	now := time.Now().UTC()
	rec := record{Key: opKey, State: "in_flight", Provider: "noop", Action: "signup_customer",
		ServiceID: svc.ServiceID, ProductID: svc.ProductID, ClientID: d.Client.ID, Created: now, Updated: now}
	b, _ := json.Marshal(rec)
	rev, err := kv.Create(ctx, key, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// A redelivery: answer from the record when it is done.
		e, gerr := kv.Get(ctx, key)
		if gerr != nil {
			return nil, gerr
		}
		var prev record
		if err := json.Unmarshal(e.Value(), &prev); err != nil {
			return nil, err
		}
		if prev.State == "done" {
			out := message.NewMessage(prev.ResultID, message.Payload(prev.Result))
			return []*message.Message{out}, nil
		}
		rev, err = kv.Update(ctx, key, b, e.Revision())
	}
	if err != nil {
		return nil, err
	}

	// The no-op provider.
	ref := "sb-" + strconv.Itoa(svc.ServiceID)

	resultID := "hookworker:" + opKey + ":succeeded"
	data, _ := json.Marshal(resultData{SourceEventID: env.ID, SourceEventType: env.Type, OperationKey: opKey,
		Action: "signup_customer", Provider: "noop", ProductID: svc.ProductID, ServiceID: svc.ServiceID,
		ClientID: d.Client.ID, Reference: ref, Attempt: 1})
	result, _ := json.Marshal(envelope{ID: resultID, Type: "provisioning.succeeded", SpecVersion: "1.0",
		OccurredAt: time.Now().UTC(), Source: env.Source, Data: data})
	rec.State, rec.Reference, rec.Result, rec.ResultID, rec.Updated = "done", ref, result, resultID, time.Now().UTC()
	b, _ = json.Marshal(rec)
	if _, err := kv.Update(ctx, key, b, rev); err != nil {
		return nil, err
	}
	return []*message.Message{message.NewMessage(resultID, result)}, nil
}
