package ops_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/ops"
)

// The ops page in front of a JetStream server. In `hookworker run` the
// status source is the *worker.Worker and the page is served with
// ListenAndServe(ctx) on cfg.Addr; here a nil status source reads the queue
// from JetStream alone, and one request goes straight to the handler.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "ops-example")
	defer os.RemoveAll(dir)
	ns, err := worker.StartEmbedded(dir, "")
	if err != nil {
		log.Fatal(err)
	}
	defer ns.Shutdown()
	nc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, _, err := worker.Setup(ctx, js, worker.DefaultOptions()); err != nil {
		log.Fatal(err)
	}

	cfg := ops.Config{Addr: "0.0.0.0:8080", Token: "a-long-random-ops-token"}
	page, err := ops.New(cfg, js, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	h := page.Handler()

	for _, auth := range []string{"", "Bearer a-long-random-ops-token"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Header().Get("X-Frame-Options"))
	}

	_, err = ops.New(ops.Config{Addr: "0.0.0.0:8080"}, js, nil, nil)
	fmt.Println(err)
	// Output:
	// 401 DENY
	// 200 DENY
	// HOOKWORKER_OPS_ADDR: "0.0.0.0:8080" is reachable off this host; set HOOKWORKER_OPS_TOKEN (or HOOKWORKER_OPS_USER and HOOKWORKER_OPS_PASSWORD), or listen on 127.0.0.1
}
