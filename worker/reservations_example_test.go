package worker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookworker/hookworker/providers"
	"github.com/hookworker/hookworker/worker"
)

// Two replicas claim one Comet username over the worker's bucket: the
// first signup gets it, the second is refused, the first one's redelivery
// finds its own claim.
func ExampleNewReservations() {
	_, js, stop := exampleJetStream() // an embedded server, in-process only
	defer stop()
	ctx := context.Background()
	_, kv, err := worker.Setup(ctx, js, worker.DefaultOptions())
	if err != nil {
		panic(err)
	}
	a, b := worker.NewReservations(kv, time.Hour), worker.NewReservations(kv, time.Hour)
	taken := errors.New("taken")
	free := func(others []providers.Claim) (string, error) {
		if len(others) > 0 {
			return "", taken
		}
		return "", nil
	}
	_, errA := a.Reserve(ctx, "comet.username.ada@example.com", "whmcs:main:service:1:signup_customer", free)
	_, errB := b.Reserve(ctx, "comet.username.ada@example.com", "whmcs:main:service:2:signup_customer", free)
	_, again := b.Reserve(ctx, "comet.username.ada@example.com", "whmcs:main:service:1:signup_customer", free)
	fmt.Println(errA, errB, again)
	// Output: <nil> taken <nil>
}
