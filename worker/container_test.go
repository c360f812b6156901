package worker_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

// natsImage is the NATS image the container test runs: a machine without a
// registry builds it with scripts/build-images --nats-only.
func natsImage() string {
	if img := os.Getenv("HOOKWORKER_NATS_IMAGE"); img != "" {
		return img
	}
	return "hookworker/nats:local"
}

// needDocker prepares testcontainers for a machine without a registry and
// skips the test when no Docker engine is reachable, except in CI (CI=true),
// where the engine is expected and the test fails instead. It reports
// whether the test runs in CI.
func needDocker(t *testing.T) (inCI bool) {
	t.Helper()
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true") // the reaper image cannot be pulled here
	}
	if os.Getenv("TESTCONTAINERS_HOST_OVERRIDE") == "" {
		t.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost") // published ports are reached on loopback only
	}
	inCI = os.Getenv("CI") == "true"
	if !inCI {
		testcontainers.SkipIfProviderIsNotHealthy(t)
	}
	return inCI
}

// startNATSContainer runs nats-server with JetStream in a container and
// returns its client URL. Without a reachable Docker engine the test is
// skipped, except in CI (CI=true), where the engine is expected.
func startNATSContainer(t *testing.T) string {
	t.Helper()
	inCI := needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:        natsImage(),
			Cmd:          []string{"-js", "-sd", "/data"},
			ExposedPorts: []string{"4222/tcp"},
			WaitingFor:   wait.ForLog("Server is ready").WithStartupTimeout(time.Minute),
		},
		Started: true,
	})
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		if !inCI && (strings.Contains(err.Error(), "pull") || strings.Contains(err.Error(), "No such image") || strings.Contains(err.Error(), "not found")) {
			t.Skipf("image %s is not available (build it with scripts/build-images --nats-only): %v", natsImage(), err)
		}
		t.Fatalf("start NATS container %s: %v", natsImage(), err)
	}
	ep, err := c.PortEndpoint(ctx, "4222/tcp", "nats")
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// The same pipeline guarantees against nats-server in a container, as
// users run it: duplicates have one effect, transient failures are retried,
// permanent ones are dead-lettered.
func TestPipelineAgainstNATSContainer(t *testing.T) {
	url := startNATSContainer(t)
	_, js := workertest.Connect(t, url)
	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	o := workertest.Options()
	if _, _, err := worker.Setup(workertest.Context(t, 30*time.Second), js, o); err != nil {
		t.Fatal(err)
	}
	results := workertest.CollectResults(t, js)
	sb := sandbox.New()
	w, err := worker.New(js, cat, map[string]worker.Provider{sandbox.Name: sb}, o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, w)

	env := order(t, 1, svc(10, 1), svc(11, 3)) // one plain, one flaky service
	workertest.Publish(t, js, env)
	if ack := workertest.Publish(t, js, env); !ack.Duplicate {
		t.Errorf("second publish not flagged duplicate: %+v", ack)
	}
	workertest.Publish(t, js, order(t, 2, svc(12, 2))) // fails permanently
	results.WaitFor(t, events.ProvisioningSucceeded, 2, 20*time.Second)
	results.WaitFor(t, events.ProvisioningDeadLettered, 1, 20*time.Second)
	if n := sb.Effects(); n != 2 {
		t.Fatalf("effects = %d, want 2", n)
	}
	d, err := worker.OpenDeadLetters(workertest.Context(t, 5*time.Second), js)
	if err != nil {
		t.Fatal(err)
	}
	list, err := d.List(workertest.Context(t, 5*time.Second), worker.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("dead letters %v, %v", list, err)
	}
	fmt.Fprintln(os.Stderr, "container pipeline OK against", url)
}
