// Command bench measures hookworker end to end on this machine and prints
// the figures with their conditions:
//
//   - end-to-end throughput: N order.accepted events published at once,
//     consumed by a `hookworker run` process with the sandbox provider, until
//     the N-th provisioning.succeeded result arrives;
//   - publish→result latency (p50, p99) at a steady rate below that;
//   - the raw JetStream consume + double-ack rate of the same server with the
//     same batch size, and the worker's share of it;
//   - the worker process's peak RSS (VmHWM).
//
// Run: go run ./scripts/bench -n 5000
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
)

func main() {
	n := flag.Int("n", 5000, "events in the throughput run (and the raw run)")
	latN := flag.Int("latency-n", 1000, "events in the latency run")
	rate := flag.Float64("rate", 200, "events per second in the latency run")
	conc := flag.Int("concurrency", 8, "HOOKWORKER_CONCURRENCY of the worker")
	flag.Parse()
	if err := run(*n, *latN, *rate, *conc); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(n, latN int, rate float64, conc int) error {
	dir, err := os.MkdirTemp("", "hookworker-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ns, err := worker.StartEmbedded(dir, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()

	raw, err := rawRate(ctx, js, n, 256, false)
	if err != nil {
		return fmt.Errorf("raw run: %w", err)
	}
	rawDouble, err := rawRate(ctx, js, n, conc, true)
	if err != nil {
		return fmt.Errorf("raw run: %w", err)
	}

	bin := filepath.Join(dir, "hookworker")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/hookworker").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	metrics := freeAddr()
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), "HOOKWORKER_NATS_URL="+ns.ClientURL(), "HOOKWORKER_DATA_DIR="+dir,
		"HOOKWORKER_METRICS_ADDR="+metrics, "HOOKWORKER_OPS_ADDR=", "HOOKWORKER_LOG_LEVEL=warn",
		"HOOKWORKER_CONCURRENCY="+strconv.Itoa(conc), "HOOKWORKER_CATALOG=")
	logf, _ := os.Create(filepath.Join(dir, "worker.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := waitReady(metrics); err != nil {
		return err
	}

	arrived := map[string]time.Time{}
	var mu sync.Mutex
	var count atomic.Int64
	cons, err := js.OrderedConsumer(ctx, worker.ResultsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var env struct {
			Type events.Type       `json:"type"`
			Data events.ResultData `json:"data"`
		}
		if json.Unmarshal(m.Data(), &env) == nil && env.Type == events.ProvisioningSucceeded {
			mu.Lock()
			arrived[env.Data.SourceEventID] = time.Now()
			mu.Unlock()
			count.Add(1)
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()

	// Throughput: publish everything at once.
	start := time.Now()
	if err := publish(ctx, js, "tp", n, 0, nil); err != nil {
		return err
	}
	if err := waitCount(&count, int64(n), 5*time.Minute); err != nil {
		return err
	}
	tpDur := time.Since(start)
	throughput := float64(n) / tpDur.Seconds()

	// Latency: a steady rate.
	sent := map[string]time.Time{}
	count.Store(0)
	if err := publish(ctx, js, "lat", latN, rate, sent); err != nil {
		return err
	}
	if err := waitCount(&count, int64(latN), 5*time.Minute); err != nil {
		return err
	}
	var lat []time.Duration
	mu.Lock()
	for id, t0 := range sent {
		if t1, ok := arrived[id]; ok {
			lat = append(lat, t1.Sub(t0))
		}
	}
	mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }

	rss := peakRSS(cmd.Process.Pid)
	fmt.Printf("hookworker benchmark (%s)\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Printf("  conditions: %s, %d CPUs, %s %s/%s, nats-server %s embedded in the bench process (loopback TCP),\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, server.VERSION)
	fmt.Printf("              worker = `hookworker run` process, sandbox provider, HOOKWORKER_CONCURRENCY=%d, file storage in %s\n", conc, os.TempDir())
	fmt.Printf("  end-to-end throughput: %d events in %s = %.0f events/s (publish -> provisioning.succeeded)\n", n, tpDur.Round(time.Millisecond), throughput)
	fmt.Printf("  latency at %.0f events/s over %d events: p50 %s, p99 %s, max %s\n", rate, len(lat),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), lat[len(lat)-1].Round(10*time.Microsecond))
	fmt.Printf("  raw JetStream consume + ack, same server, batches of 256 (median of 3): %.0f msgs/s\n", raw)
	fmt.Printf("  raw JetStream consume + confirmed double-ack, %d at a time as the worker acks (median of 3): %.0f msgs/s\n", conc, rawDouble)
	fmt.Printf("  worker / raw: %.3f of plain consume+ack, %.2f of consume+double-ack\n", throughput/raw, throughput/rawDouble)
	fmt.Printf("              (per event the worker also reads, creates and updates its idempotency record and publishes a result)\n")
	fmt.Printf("  worker peak RSS (VmHWM): %.1f MiB\n", float64(rss)/1024)
	return nil
}

func publish(ctx context.Context, js jetstream.JetStream, tag string, n int, rate float64, sent map[string]time.Time) error {
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	next := time.Now()
	var futures []jetstream.PubAckFuture
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("whmcs:bench:AcceptOrder:%s%d", tag, i)
		env, err := events.NewEnvelope(id, events.OrderAccepted, "bench", time.Now(), events.OrderAcceptedData{
			OrderID: i + 1, Client: events.Client{ID: 7, Email: "bench@example.com"},
			Services: []events.OrderedService{{ServiceID: 1_000_000*len(tag) + i, ProductID: 1, BillingCycle: "Annually"}}})
		if err != nil {
			return err
		}
		b, _ := json.Marshal(env)
		if interval > 0 {
			time.Sleep(time.Until(next))
			next = next.Add(interval)
			sent[id] = time.Now()
			if _, err := js.Publish(ctx, events.InboundSubject("bench", events.OrderAccepted), b, jetstream.WithMsgID(id)); err != nil {
				return err
			}
			continue
		}
		f, err := js.PublishAsync(events.InboundSubject("bench", events.OrderAccepted), b, jetstream.WithMsgID(id))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		}
	}
	return nil
}

// rawRate is the consume + ack rate of the server, without any work: the
// median of three runs over n messages, fetched in batches of batch and
// acknowledged — with ack (fire-and-forget, the last one confirmed) when
// double is false, or each with a confirmed double ack, batch at a time,
// as the worker does, when double is true.
func rawRate(ctx context.Context, js jetstream.JetStream, n, batch int, double bool) (float64, error) {
	var rates []float64
	for run := 0; run < 3; run++ {
		name := fmt.Sprintf("BENCH_RAW_%d", run)
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.raw." + strconv.Itoa(run)}, Storage: jetstream.FileStorage})
		if err != nil {
			return 0, err
		}
		body := make([]byte, 600) // about the size of an order.accepted event
		for i := 0; i < n; i++ {
			if _, err := js.PublishAsync("bench.raw."+strconv.Itoa(run), body); err != nil {
				return 0, err
			}
		}
		<-js.PublishAsyncComplete()
		c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{Durable: "raw", AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: -1})
		if err != nil {
			return 0, err
		}
		start := time.Now()
		done := 0
		for done < n {
			b, err := c.Fetch(min(batch, n-done), jetstream.FetchMaxWait(2*time.Second))
			if err != nil {
				return 0, err
			}
			var wg sync.WaitGroup
			var last jetstream.Msg
			for m := range b.Messages() {
				done++
				last = m
				if !double {
					_ = m.Ack()
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = m.DoubleAck(ctx)
				}()
			}
			wg.Wait()
			if !double && done == n && last != nil {
				_ = last.DoubleAck(ctx) // the server has every ack once this returns
			}
		}
		rates = append(rates, float64(n)/time.Since(start).Seconds())
		if err := js.DeleteStream(ctx, name); err != nil {
			return 0, err
		}
	}
	sort.Float64s(rates)
	return rates[1], nil
}

func waitCount(c *atomic.Int64, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d results after %s", c.Load(), want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

func waitReady(addr string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("worker not ready on %s", addr)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// peakRSS is VmHWM of pid in KiB.
func peakRSS(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	return 0
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}
