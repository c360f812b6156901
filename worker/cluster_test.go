package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.uber.org/zap/zaptest"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/sandbox"
	"github.com/hookworker/hookworker/worker"
	"github.com/hookworker/hookworker/worker/catalog"
	"github.com/hookworker/hookworker/worker/workertest"
)

// natsCluster is three nats-server containers on their own Docker network,
// each started from deploy/nats/cluster/nats.conf exactly as shipped.
type natsCluster struct {
	nodes map[string]testcontainers.Container // by server name
	urls  []string                            // client URLs on the host, one per node
}

// startNATSCluster starts the three-node cluster of deploy/nats/cluster and
// waits until every node is ready (see needDocker for machines without an
// engine).
func startNATSCluster(t *testing.T) *natsCluster {
	t.Helper()
	needDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nw, err := network.New(ctx)
	if err != nil {
		t.Fatalf("docker network: %v", err)
	}
	testcontainers.CleanupNetwork(t, nw)
	conf, err := filepath.Abs("../deploy/nats/cluster/nats.conf")
	if err != nil {
		t.Fatal(err)
	}
	cl := &natsCluster{nodes: map[string]testcontainers.Container{}}
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		c, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
			ContainerRequest: testcontainers.ContainerRequest{
				Image:          natsImage(),
				Name:           fmt.Sprintf("hookworker-test-%s-%d", name, time.Now().UnixNano()),
				Cmd:            []string{"-c", "/etc/nats/nats.conf"},
				Env:            map[string]string{"NATS_SERVER_NAME": name},
				Files:          []testcontainers.ContainerFile{{HostFilePath: conf, ContainerFilePath: "/etc/nats/nats.conf", FileMode: 0o644}},
				Networks:       []string{nw.Name},
				NetworkAliases: map[string][]string{nw.Name: {name}},
				ExposedPorts:   []string{"4222/tcp"},
				WaitingFor:     wait.ForLog("Server is ready").WithStartupTimeout(time.Minute),
			},
			Started: true,
		})
		testcontainers.CleanupContainer(t, c)
		if err != nil {
			t.Fatalf("start %s from %s: %v", name, natsImage(), err)
		}
		ep, err := c.PortEndpoint(ctx, "4222/tcp", "nats")
		if err != nil {
			t.Fatal(err)
		}
		cl.nodes[name], cl.urls = c, append(cl.urls, ep)
	}
	return cl
}

// connect connects to every node the test can reach (the host-published
// ports; the addresses the cluster gossips are container addresses).
func (cl *natsCluster) connect(t *testing.T, name string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(strings.Join(cl.urls, ","), nats.Name(name), nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to the cluster: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// healthyR3 reports whether a stream's or consumer's Raft group spans three
// nodes, has a leader, and both followers are members and caught up. Losing
// a node before that (just after a scale-up) can leave the group without a
// quorum of up-to-date peers until the node comes back.
func healthyR3(ci *jetstream.ClusterInfo) bool {
	if ci == nil || ci.Leader == "" || ci.Desired != nil || len(ci.Replicas) != 2 {
		return false
	}
	for _, p := range ci.Replicas {
		if !p.Current || p.Pending || p.Offline {
			return false
		}
	}
	return true
}

// clusterResults is the results stream as read so far. The test reads it
// with direct gets rather than following it with one long-lived consumer: a
// subscription's own consumer may live on the node the test kills, and the
// test is about the worker, not about that subscription.
type clusterResults struct {
	all []events.Envelope // in stream order, from sequence 1
}

// read appends the results published since the last read, or returns the
// first error (keeping what it read before it).
func (r *clusterResults) read(ctx context.Context, js jetstream.JetStream) error {
	st, err := js.Stream(ctx, worker.ResultsStream)
	if err != nil {
		return err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return err
	}
	for seq := uint64(len(r.all)) + 1; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			return fmt.Errorf("result %d: %w", seq, err)
		}
		env, err := events.Decode(m.Data)
		if err != nil {
			return fmt.Errorf("result %d does not decode: %w", seq, err)
		}
		r.all = append(r.all, env)
	}
	return nil
}

// succeeded returns the source event ids with a success result.
func (r *clusterResults) succeeded() map[string]bool {
	ids := map[string]bool{}
	for _, env := range r.all {
		if env.Type != events.ProvisioningSucceeded {
			continue
		}
		p, err := env.Payload()
		if err != nil {
			continue
		}
		ids[p.(*events.ResultData).SourceEventID] = true
	}
	return ids
}

// waitFor re-reads the results until cond holds, failing after timeout with
// the last read error.
func (r *clusterResults) waitFor(t *testing.T, js jetstream.JetStream, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r.read(ctx, js)
		cancel()
		if err == nil && cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s; %d results read; last error: %v", timeout, what, len(r.all), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// countingProvider counts the operations one worker replica applied.
type countingProvider struct {
	*sandbox.Provider
	applied atomic.Int64
}

func (p *countingProvider) Apply(ctx context.Context, op events.Operation) (events.Outcome, error) {
	out, err := p.Provider.Apply(ctx, op)
	if err == nil {
		p.applied.Add(1)
	}
	return out, err
}

// publishUntilAcked publishes env the way the WHMCS hooks do when NATS
// fails them: again, with the same Nats-Msg-Id, until a stream acks it.
func publishUntilAcked(t *testing.T, js jetstream.JetStream, env events.Envelope) {
	t.Helper()
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := js.Publish(ctx, events.InboundSubject(env.Source, env.Type), b, jetstream.WithMsgID(env.ID))
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish %s: no ack for a minute: %v", env.ID, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The scale-out deployment of deploy/nats/cluster: R3 streams on three
// NATS nodes, two worker replicas on the one durable consumer. The node
// leading the events stream is killed (SIGKILL) mid-run; every event is
// still provisioned exactly once, with no dead letter, and the work is
// shared by both replicas.
func TestClusterNodeLossLosesNothingAndRepeatsNothing(t *testing.T) {
	cl := startNATSCluster(t)
	js := cl.connect(t, "test")

	o := workertest.Options()
	o.AckWait = 5 * time.Second // a leader election takes seconds; no redelivery storm meanwhile
	ctx := workertest.Context(t, 4*time.Minute)
	// First as a single-node install left it (R1), then with
	// HOOKWORKER_STREAM_REPLICAS=3: setup must scale up what exists. The meta
	// leader may still be forming: retry setup as `hookworker run` does.
	for _, replicas := range []int{1, 3} {
		o.StreamReplicas = replicas
		var setupErr error
		workertest.Eventually(t, time.Minute, fmt.Sprintf("R%d stream setup on the cluster", replicas), func() bool {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, _, setupErr = worker.Setup(sctx, js, o)
			if setupErr != nil {
				t.Logf("setup R%d: %v", replicas, setupErr)
			}
			return setupErr == nil
		})
	}
	for _, name := range []string{worker.EventsStream, worker.ResultsStream, worker.DeadLetterStream, worker.AdvisoryStream, "KV_" + worker.RecordsBucket} {
		workertest.Eventually(t, time.Minute, name+" on three nodes, caught up", func() bool {
			st, err := js.Stream(ctx, name)
			if err != nil {
				return false
			}
			si, err := st.Info(ctx)
			return err == nil && si.Config.Replicas == 3 && healthyR3(si.Cluster)
		})
	}
	cons, err := js.Consumer(ctx, worker.EventsStream, o.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	workertest.Eventually(t, time.Minute, "the durable consumer on three nodes, caught up", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && healthyR3(ci.Cluster)
	})
	stream, err := js.Stream(ctx, worker.EventsStream)
	if err != nil {
		t.Fatal(err)
	}

	cat, err := catalog.Parse([]byte(testCatalog), "test", map[string]catalog.Validator{sandbox.Name: nil})
	if err != nil {
		t.Fatal(err)
	}
	sb := sandbox.New() // the one provider both replicas provision at
	replicas := []*countingProvider{{Provider: sb}, {Provider: sb}}
	for i, p := range replicas {
		w, err := worker.New(cl.connect(t, fmt.Sprintf("worker-%d", i+1)), cat, map[string]worker.Provider{sandbox.Name: p}, o,
			zaptest.NewLogger(t).Named(fmt.Sprintf("worker-%d", i+1)), nil)
		if err != nil {
			t.Fatal(err)
		}
		workertest.Run(t, w)
	}

	const n = 40
	// Every fourth event is slow (product 4: 1.5 s at the provider), so
	// operations are in flight when the node dies.
	event := func(i int) events.Envelope {
		product := 1
		if i%4 == 3 {
			product = 4
		}
		return order(t, 1000+i, svc(5000+i, product))
	}
	for i := range n / 2 {
		publishUntilAcked(t, js, event(i))
	}
	var results clusterResults
	results.waitFor(t, js, time.Minute, fmt.Sprintf("%d of the first %d events done", n/4, n/2),
		func() bool { return len(results.succeeded()) >= n/4 })

	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.Cluster.Leader
	node, ok := cl.nodes[leader]
	if !ok {
		t.Fatalf("events stream leader %q is not one of the nodes", leader)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ackPending := ci.NumAckPending
	kill := time.Duration(0)
	if err := node.Stop(ctx, &kill); err != nil {
		t.Fatalf("kill %s: %v", leader, err)
	}
	t.Logf("killed %s, the events stream leader, after %d results, with %d events in flight",
		leader, len(results.all), ackPending)

	for i := n / 2; i < n; i++ { // while the cluster elects a new leader
		publishUntilAcked(t, js, event(i))
	}
	results.waitFor(t, js, 2*time.Minute, fmt.Sprintf("a success result for each of the %d events", n),
		func() bool { return len(results.succeeded()) == n })

	if got := sb.Effects(); got != n {
		t.Errorf("provider effects = %d, want %d: an event was provisioned twice or not at all", got, n)
	}
	for _, r := range results.all {
		if r.Type == events.ProvisioningDeadLettered {
			t.Errorf("dead-lettered during a node loss: %+v", r)
		}
	}
	a, b := replicas[0].applied.Load(), replicas[1].applied.Load()
	t.Logf("replica 1 applied %d operations, replica 2 applied %d", a, b)
	if a == 0 || b == 0 {
		t.Errorf("work not shared by the replicas on one durable consumer: %d and %d", a, b)
	}
	workertest.Eventually(t, time.Minute, "the consumer to drain on the surviving nodes", func() bool {
		ci, err := cons.Info(ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	})
}
