// Command bench measures the per-event cost of hookworker on this machine
// and prints, in one run, every case side by side with its conditions:
//
//   - raw: a plain JetStream consumer (continuous pull, fire-and-forget ack)
//     doing no work at all: what the server can deliver and take acks for;
//   - watermill: a Watermill router on JetStream (scripts/bench-watermill,
//     its own Go module) doing comparable durable work per event: decode,
//     create the idempotency record in KV, no-op provider, record done,
//     publish the result, ack;
//   - hookworker: a `hookworker run` process with the in-memory sandbox
//     provider at each -concurrency;
//   - optionally hookworker built from another git ref (-baseline-ref), run
//     the same way, so before/after ratios come from one run;
//   - rss: hookworker at CONCURRENCY 1024 under a burst, its peak RSS and
//     the most operations it had in flight.
//
// Each case gets a fresh nats-server process (file storage in a new
// directory), so no case sees another's events, records or results, and
// the consumer under test runs as its own process: CPU per event is read
// from /proc/<pid>/stat of both the consumer and the server; messages per
// event from the server's /connz counters of the consumer's connections.
// For each case the bench publishes -n events at once (asynchronous
// publishes with Nats-Msg-Id) and times them until the last result (for
// raw: the last ack), then publishes at each -latency-fractions of that
// rate (default one half) for -latency-seconds each and reports
// publish→result p50/p99, with how busy the machine's CPUs were meanwhile
// (/proc/stat) and how long runnable tasks waited for one
// (/proc/pressure/cpu, where the kernel has it).
//
// nats-server is taken from -nats-server, PATH or $GOPATH/bin; if absent it
// is installed with `go install` at the version in go.mod.
//
// Run from the repository root: go run ./scripts/bench
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
)

type config struct {
	n           int
	latSeconds  float64
	latFracs    []float64
	concs       []int
	wmSubs      []int
	rssConc     int
	rssN        int
	baselineRef string
	cases       map[string]bool
	natsServer  string
	keep        bool
	hwBin       string
}

func main() {
	role := flag.String("role", "", "internal: run as the raw consumer against -url")
	url := flag.String("url", "", "internal: NATS URL for -role")
	n := flag.Int("n", 20000, "events per throughput case")
	lat := flag.Float64("latency-seconds", 3, "length of each latency run")
	latFracs := flag.String("latency-fractions", "0.5", "offered loads of the latency runs, as fractions of the case's measured rate (the first one fills the table's p50/p99)")
	concs := flag.String("concurrency", "8,32,128", "HOOKWORKER_CONCURRENCY values to run hookworker at")
	wm := flag.String("watermill-subscribers", "8,32", "Watermill subscription counts to run the router at")
	rssConc := flag.Int("rss-concurrency", 1024, "HOOKWORKER_CONCURRENCY of the peak-RSS case")
	rssN := flag.Int("rss-n", 4000, "events in the peak-RSS case")
	base := flag.String("baseline-ref", "", "also run hookworker built from this git ref (e.g. main) at each -concurrency, for before/after ratios")
	cases := flag.String("cases", "raw,watermill,hookworker,rss", "cases to run")
	ns := flag.String("nats-server", "", "nats-server binary (default: PATH, then $GOPATH/bin, else go install)")
	keep := flag.Bool("keep", false, "keep the temporary directory (logs, stores)")
	hwBin := flag.String("hookworker-bin", "", "use this hookworker binary instead of building ./cmd/hookworker")
	flag.Parse()
	if *role == "raw" {
		if err := rawConsumer(*url); err != nil {
			fmt.Fprintln(os.Stderr, "bench raw consumer:", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{hwBin: *hwBin, n: *n, latSeconds: *lat, rssConc: *rssConc, rssN: *rssN, baselineRef: *base, natsServer: *ns, keep: *keep,
		cases: map[string]bool{}}
	var err error
	if cfg.concs, err = intList(*concs); err != nil {
		fatal(fmt.Errorf("-concurrency: %w", err))
	}
	if cfg.wmSubs, err = intList(*wm); err != nil {
		fatal(fmt.Errorf("-watermill-subscribers: %w", err))
	}
	if cfg.latFracs, err = fractionList(*latFracs); err != nil {
		fatal(fmt.Errorf("-latency-fractions: %w", err))
	}
	for _, c := range strings.Split(*cases, ",") {
		cfg.cases[strings.TrimSpace(c)] = true
	}
	if err := run(cfg); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// fractionList parses a comma-separated list of numbers in (0, 1].
func fractionList(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v > 1 {
			return nil, fmt.Errorf("%q is not a fraction in (0, 1]", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no fraction given")
	}
	return out, nil
}

// latPoint is one latency run: publish→result at a fraction of the case's
// measured rate, and how contended the machine's CPUs were meanwhile.
type latPoint struct {
	frac     float64
	rate     float64
	n        int
	p50, p99 time.Duration
	busy     float64 // share of all CPUs' time not idle (/proc/stat), 0..1
	// CPU µs per event of the consumer, the server and this process (the
	// publisher and the result collector) during the run
	workerCPU, serverCPU, benchCPU float64
	pressure                       float64 // ms per second that some runnable task waited for a CPU (/proc/pressure/cpu); <0 if unknown
}

// result is one case's figures.
type result struct {
	name        string
	kind        string // raw, watermill, hookworker, baseline, rss
	conc        int
	events      int
	took        time.Duration
	rate        float64
	workerCPU   float64 // µs per event
	serverCPU   float64
	sentMsgs    float64    // consumer → server messages per event
	recvMsgs    float64    // server → consumer messages per event
	lats        []latPoint // one per -latency-fractions, in that order
	rssKiB      int
	maxInFlight int
	note        string
}

func run(cfg config) error {
	dir, err := os.MkdirTemp("", "hookworker-bench")
	if err != nil {
		return err
	}
	if cfg.keep {
		fmt.Fprintln(os.Stderr, "bench: files in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	nsBin, err := natsServerBinary(cfg.natsServer)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "bench: building hookworker and bench-watermill")
	hwBin := cfg.hwBin
	if hwBin == "" {
		hwBin = filepath.Join(dir, "hookworker")
		if err := build(".", hwBin, "./cmd/hookworker"); err != nil {
			return err
		}
	}
	wmBin := filepath.Join(dir, "bench-watermill")
	if cfg.cases["watermill"] {
		if err := build("scripts/bench-watermill", wmBin, "."); err != nil {
			return err
		}
	}
	var baseBin string
	if cfg.baselineRef != "" {
		baseBin = filepath.Join(dir, "hookworker-baseline")
		if err := buildRef(cfg.baselineRef, filepath.Join(dir, "baseline-src"), baseBin); err != nil {
			return err
		}
	}
	load0 := loadAvg()
	started := time.Now()

	var results []result
	runOne := func(name, kind string, conc int, n int, start starter, note *string) error {
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", name)
		r, err := runCase(cfg, dir, nsBin, name, n, start)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r.kind, r.conc = kind, conc
		if note != nil {
			r.note = *note
		}
		results = append(results, r)
		return nil
	}
	if cfg.cases["raw"] {
		if err := runOne("raw consume+ack", "raw", 0, cfg.n, rawStarter(self), nil); err != nil {
			return err
		}
	}
	if cfg.cases["watermill"] {
		for _, s := range cfg.wmSubs {
			if err := runOne(fmt.Sprintf("watermill router, %d subs", s), "watermill", s, cfg.n, watermillStarter(wmBin, s), nil); err != nil {
				return err
			}
		}
	}
	if cfg.cases["hookworker"] {
		for _, c := range cfg.concs {
			if baseBin != "" {
				if err := runOne(fmt.Sprintf("hookworker@%s c=%d", cfg.baselineRef, c), "baseline", c, cfg.n, hookworkerStarter(baseBin, dir, c, false, nil), nil); err != nil {
					return err
				}
			}
			if err := runOne(fmt.Sprintf("hookworker c=%d", c), "hookworker", c, cfg.n, hookworkerStarter(hwBin, dir, c, false, nil), nil); err != nil {
				return err
			}
		}
	}
	if cfg.cases["rss"] {
		if baseBin != "" {
			var note string
			if err := runOne(fmt.Sprintf("hookworker@%s c=%d (RSS)", cfg.baselineRef, cfg.rssConc), "rss-baseline", cfg.rssConc, cfg.rssN, hookworkerStarter(baseBin, dir, cfg.rssConc, true, &note), &note); err != nil {
				return err
			}
		}
		var note string
		if err := runOne(fmt.Sprintf("hookworker c=%d (RSS)", cfg.rssConc), "rss", cfg.rssConc, cfg.rssN, hookworkerStarter(hwBin, dir, cfg.rssConc, true, &note), &note); err != nil {
			return err
		}
	}
	report(os.Stdout, cfg, results, load0, loadAvg(), time.Since(started))
	return nil
}

// starter starts the consumer under test against url and returns it once
// it is consuming, with a probe of its in-flight operations (or nil).
type starter func(url, caseDir string) (*exec.Cmd, func() int, error)

func rawStarter(self string) starter {
	return func(url, caseDir string) (*exec.Cmd, func() int, error) {
		cmd := exec.Command(self, "-role", "raw", "-url", url)
		return startWaitLine(cmd, caseDir, "ready")
	}
}

func watermillStarter(bin string, subs int) starter {
	return func(url, caseDir string) (*exec.Cmd, func() int, error) {
		cmd := exec.Command(bin, "-url", url, "-subscribers", strconv.Itoa(subs))
		return startWaitLine(cmd, caseDir, "ready")
	}
}

func hookworkerStarter(bin, dir string, conc int, rss bool, note *string) starter {
	return func(url, caseDir string) (*exec.Cmd, func() int, error) {
		if rss {
			// Hold every event in flight: each provider call takes a second,
			// so CONCURRENCY operations are at the provider at once.
			catalog := filepath.Join(caseDir, "slow-catalog.yaml")
			if err := os.WriteFile(catalog, []byte(slowCatalog), 0o644); err != nil {
				return nil, nil, err
			}
			cmd, probe, err := startHookworker(bin, url, caseDir, conc, catalog)
			if err == nil {
				*note = "sandbox calls take 1 s, so every slot holds an event"
				return cmd, probe, nil
			}
			// An older build cannot route its own catalog to the sandbox:
			// a burst through the built-in catalog instead.
			*note = "burst through the built-in catalog (this build cannot route an own catalog to the sandbox)"
		}
		return startHookworker(bin, url, caseDir, conc, "")
	}
}

const slowCatalog = `unknown_products: ignore
products:
  - id: 1
    name: slow sandbox backup
    provider: sandbox
    settings: {delay: 1s}
`

func startHookworker(bin, url, caseDir string, conc int, catalog string) (*exec.Cmd, func() int, error) {
	metrics := freeAddr()
	cmd := exec.Command(bin, "run")
	cmd.Env = append(os.Environ(), "HOOKWORKER_NATS_URL="+url, "HOOKWORKER_DATA_DIR="+caseDir,
		"HOOKWORKER_METRICS_ADDR="+metrics, "HOOKWORKER_OPS_ADDR=", "HOOKWORKER_LOG_LEVEL=warn",
		"HOOKWORKER_CONCURRENCY="+strconv.Itoa(conc), "HOOKWORKER_CATALOG="+catalog, "HOOKWORKER_SANDBOX=memory",
		"HOOKWORKER_PROVIDER_CHECK_INTERVAL=0")
	logf, err := os.Create(filepath.Join(caseDir, "consumer.log"))
	if err != nil {
		return nil, nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	if err := waitReady(metrics, cmd); err != nil {
		stopProc(cmd)
		b, _ := os.ReadFile(logf.Name())
		return nil, nil, fmt.Errorf("%w\n%s", err, tail(b, 2000))
	}
	return cmd, func() int { return gauge(metrics, "hookworker_operations_in_flight") }, nil
}

func startWaitLine(cmd *exec.Cmd, caseDir, want string) (*exec.Cmd, func() int, error) {
	logf, err := os.Create(filepath.Join(caseDir, "consumer.log"))
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.TrimSpace(sc.Text()) == want {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return cmd, nil, nil
		}
	case <-time.After(60 * time.Second):
	}
	stopProc(cmd)
	b, _ := os.ReadFile(logf.Name())
	return nil, nil, fmt.Errorf("consumer did not get ready\n%s", tail(b, 2000))
}

// runCase runs one case against a fresh nats-server.
func runCase(cfg config, dir, nsBin, name string, n int, start starter) (result, error) {
	r := result{name: name, events: n}
	caseDir, err := os.MkdirTemp(dir, "case")
	if err != nil {
		return r, err
	}
	srv, err := startServer(nsBin, caseDir)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	nc, err := nats.Connect(srv.url, nats.Name(benchConn))
	if err != nil {
		return r, err
	}
	defer nc.Close()
	// Publish bursts in windows of 1024 unconfirmed messages; a loaded
	// machine may take a while to confirm them.
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	ctx := context.Background()
	// The streams and bucket exactly as hookworker makes them; the
	// hookworker consumer itself only where hookworker runs.
	if _, _, err := worker.Setup(ctx, js, worker.DefaultOptions()); err != nil {
		return r, err
	}
	if err := js.DeleteConsumer(ctx, worker.EventsStream, worker.DefaultOptions().ConsumerName); err != nil {
		return r, err
	}
	raw := strings.HasPrefix(name, "raw")
	if raw {
		if _, err := js.CreateConsumer(ctx, worker.EventsStream, jetstream.ConsumerConfig{Durable: "raw",
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 1000}); err != nil {
			return r, err
		}
	}

	proc, inFlight, err := start(srv.url, caseDir)
	if err != nil {
		return r, err
	}
	defer stopProc(proc)

	col := newCollector()
	if !raw {
		cons, err := js.OrderedConsumer(ctx, worker.ResultsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
		if err != nil {
			return r, err
		}
		cc, err := cons.Consume(col.onResult)
		if err != nil {
			return r, err
		}
		defer cc.Stop()
	}
	var seq atomic.Uint64 // stream sequence of the last event published
	wait := func(tag string, want int, timeout time.Duration) error {
		if raw {
			return waitAcked(ctx, js, seq.Load(), timeout)
		}
		return col.wait(tag, want, timeout)
	}

	// Warm up: connections, the consumer's first pulls, file blocks.
	if err := publishBurst(js, "warm", min(500, n), &seq); err != nil {
		return r, err
	}
	if err := wait("warm", min(500, n), 2*time.Minute); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}

	// Throughput: everything at once.
	var maxInFlight atomic.Int64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	if inFlight != nil && strings.Contains(name, "RSS") { // scraping /metrics costs the worker CPU: only where RSS is measured
		sampling.Add(1)
		go func() {
			defer sampling.Done()
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					if v := int64(inFlight()); v > maxInFlight.Load() {
						maxInFlight.Store(v)
					}
				case <-stopSampling:
					return
				}
			}
		}()
	}
	cpuW0, cpuS0 := cpuTime(proc.Process.Pid), cpuTime(srv.cmd.Process.Pid)
	in0, out0, err := srv.connCounters()
	if err != nil {
		return r, err
	}
	t0 := time.Now()
	if err := publishBurst(js, "tp", n, &seq); err != nil {
		return r, err
	}
	if err := wait("tp", n, 5*time.Minute); err != nil {
		return r, err
	}
	r.took = time.Since(t0)
	cpuW1, cpuS1 := cpuTime(proc.Process.Pid), cpuTime(srv.cmd.Process.Pid)
	in1, out1, err := srv.connCounters()
	if err != nil {
		return r, err
	}
	close(stopSampling)
	sampling.Wait()
	r.rate = float64(n) / r.took.Seconds()
	r.workerCPU = float64(cpuW1-cpuW0) / float64(time.Microsecond) / float64(n)
	r.serverCPU = float64(cpuS1-cpuS0) / float64(time.Microsecond) / float64(n)
	r.sentMsgs = float64(in1-in0) / float64(n)
	r.recvMsgs = float64(out1-out0) / float64(n)
	r.maxInFlight = int(maxInFlight.Load())

	// Latency at each fraction of the measured rate (not for raw: it has no results).
	if !raw && cfg.latSeconds > 0 && !strings.Contains(name, "RSS") {
		for i, frac := range cfg.latFracs {
			lp := latPoint{frac: frac, rate: r.rate * frac}
			lp.n = max(100, int(lp.rate*cfg.latSeconds))
			tag := fmt.Sprintf("lat%d", i)
			busy0, press0 := cpuBusy(), cpuPressure()
			w0, s0, b0 := cpuTime(proc.Process.Pid), cpuTime(srv.cmd.Process.Pid), cpuTime(os.Getpid())
			t0 := time.Now()
			sent, err := publishPaced(js, tag, lp.n, lp.rate, &seq)
			if err != nil {
				return r, err
			}
			if err := wait(tag, lp.n, 2*time.Minute); err != nil {
				return r, err
			}
			elapsed := time.Since(t0)
			busy1, press1 := cpuBusy(), cpuPressure()
			w1, s1, b1 := cpuTime(proc.Process.Pid), cpuTime(srv.cmd.Process.Pid), cpuTime(os.Getpid())
			perEvent := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(lp.n) }
			lp.workerCPU, lp.serverCPU, lp.benchCPU = perEvent(w1-w0), perEvent(s1-s0), perEvent(b1-b0)
			lp.busy = busy1.since(busy0)
			lp.pressure = -1
			if press0 >= 0 && press1 >= 0 {
				lp.pressure = float64(press1-press0) / float64(time.Millisecond) / elapsed.Seconds()
			}
			lat := col.latencies(tag, sent)
			slices.Sort(lat)
			pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
			lp.p50, lp.p99 = pct(0.50), pct(0.99)
			r.lats = append(r.lats, lp)
		}
	}
	r.rssKiB = peakRSS(proc.Process.Pid)
	return r, nil
}

const benchConn = "bench"

// collector counts provisioning.succeeded results by the tag in their
// source event id and keeps their arrival times.
type collector struct {
	mu      sync.Mutex
	arrived map[string]time.Time
	counts  map[string]int
}

func newCollector() *collector {
	return &collector{arrived: map[string]time.Time{}, counts: map[string]int{}}
}

func (c *collector) onResult(m jetstream.Msg) {
	now := time.Now()
	var env struct {
		Type events.Type `json:"type"`
		Data struct {
			SourceEventID string `json:"source_event_id"`
		} `json:"data"`
	}
	if json.Unmarshal(m.Data(), &env) != nil || env.Type != events.ProvisioningSucceeded {
		return
	}
	id := env.Data.SourceEventID
	tag := strings.TrimPrefix(id, eventPrefix)
	if i := strings.IndexByte(tag, '-'); i >= 0 {
		tag = tag[:i]
	}
	c.mu.Lock()
	if _, dup := c.arrived[id]; !dup {
		c.arrived[id] = now
		c.counts[tag]++
	}
	c.mu.Unlock()
}

func (c *collector) wait(tag string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		got := c.counts[tag]
		c.mu.Unlock()
		if got >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d results after %s", got, want, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *collector) latencies(tag string, sent map[string]time.Time) []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for id, t0 := range sent {
		if t1, ok := c.arrived[id]; ok {
			out = append(out, t1.Sub(t0))
		}
	}
	return out
}

func waitAcked(ctx context.Context, js jetstream.JetStream, lastSeq uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := js.Consumer(ctx, worker.EventsStream, "raw")
		if err != nil {
			return err
		}
		info := c.CachedInfo()
		if info.AckFloor.Stream >= lastSeq {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ack floor %d of %d after %s", info.AckFloor.Stream, lastSeq, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const eventPrefix = "whmcs:bench:AcceptOrder:"

var serviceIDs atomic.Int64

func event(tag string, i int) (id string, body []byte, err error) {
	id = eventPrefix + tag + "-" + strconv.Itoa(i)
	sid := int(serviceIDs.Add(1))
	env, err := events.NewEnvelope(id, events.OrderAccepted, "bench", time.Now(), events.OrderAcceptedData{
		OrderID: sid, Client: events.Client{ID: 7, Email: "bench@example.com", FirstName: "Bench", LastName: "Mark"},
		Services: []events.OrderedService{{ServiceID: sid, ProductID: 1, Domain: "bench" + strconv.Itoa(sid) + ".example.com", BillingCycle: "Annually"}}})
	if err != nil {
		return "", nil, err
	}
	body, err = json.Marshal(env)
	return id, body, err
}

var subject = events.InboundSubject("bench", events.OrderAccepted)

func publishBurst(js jetstream.JetStream, tag string, n int, seq *atomic.Uint64) error {
	futures := make([]jetstream.PubAckFuture, 0, n)
	for i := range n {
		id, b, err := event(tag, i)
		if err != nil {
			return err
		}
		f, err := js.PublishAsync(subject, b, jetstream.WithMsgID(id), jetstream.WithStallWait(time.Minute))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	return awaitAcks(futures, seq)
}

func awaitAcks(futures []jetstream.PubAckFuture, seq *atomic.Uint64) error {
	for _, f := range futures {
		select {
		case a := <-f.Ok():
			if a.Sequence > seq.Load() {
				seq.Store(a.Sequence)
			}
		case err := <-f.Err():
			return err
		case <-time.After(time.Minute):
			return errors.New("publish not confirmed within a minute")
		}
	}
	return nil
}

// publishPaced publishes n events at rate per second, a few at a time on a
// 1 ms tick, and returns when each was sent.
func publishPaced(js jetstream.JetStream, tag string, n int, rate float64, seq *atomic.Uint64) (map[string]time.Time, error) {
	sent := make(map[string]time.Time, n)
	futures := make([]jetstream.PubAckFuture, 0, n)
	start := time.Now()
	for i := 0; i < n; {
		due := min(n, int(time.Since(start).Seconds()*rate)+1)
		for ; i < due; i++ {
			id, b, err := event(tag, i)
			if err != nil {
				return nil, err
			}
			sent[id] = time.Now()
			f, err := js.PublishAsync(subject, b, jetstream.WithMsgID(id), jetstream.WithStallWait(time.Minute))
			if err != nil {
				return nil, err
			}
			futures = append(futures, f)
		}
		time.Sleep(500 * time.Microsecond)
	}
	return sent, awaitAcks(futures, seq)
}

// rawConsumer is the raw case's process: a continuous pull of the "raw"
// consumer, each message acked without waiting for a confirmation.
func rawConsumer(url string) error {
	nc, err := nats.Connect(url, nats.Name("raw"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	c, err := js.Consumer(context.Background(), worker.EventsStream, "raw")
	if err != nil {
		return err
	}
	cc, err := c.Consume(func(m jetstream.Msg) { _ = m.Ack() }, jetstream.PullMaxMessages(500))
	if err != nil {
		return err
	}
	defer cc.Stop()
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	return nil
}

// server is one nats-server process with its monitoring port.
type server struct {
	cmd     *exec.Cmd
	url     string
	monitor string
}

func startServer(bin, dir string) (*server, error) {
	port, mport := freePort(), freePort()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mport),
		"-js", "-sd", filepath.Join(dir, "jetstream"), "-l", filepath.Join(dir, "nats-server.log"))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nats-server: %w", err)
	}
	s := &server{cmd: cmd, url: fmt.Sprintf("nats://127.0.0.1:%d", port), monitor: fmt.Sprintf("http://127.0.0.1:%d", mport)}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(s.monitor + "/healthz?js-enabled-only=true"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.stop()
	return nil, errors.New("nats-server did not become healthy")
}

func (s *server) stop() { stopProc(s.cmd) }

// connCounters sums in_msgs and out_msgs (as the server counts them: in =
// sent by the client) over every connection but the bench's own.
func (s *server) connCounters() (in, out int64, err error) {
	resp, err := http.Get(s.monitor + "/connz?limit=1024")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	var cz struct {
		Connections []struct {
			Name    string `json:"name"`
			InMsgs  int64  `json:"in_msgs"`
			OutMsgs int64  `json:"out_msgs"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cz); err != nil {
		return 0, 0, fmt.Errorf("connz: %w", err)
	}
	for _, c := range cz.Connections {
		if c.Name == benchConn {
			continue
		}
		in += c.InMsgs
		out += c.OutMsgs
	}
	return in, out, nil
}

func stopProc(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// cpuTime is the user+system CPU time pid has used (/proc/<pid>/stat).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

const clockTicks = 100 // USER_HZ on Linux

// peakRSS is VmHWM of pid in KiB.
func peakRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb
		}
	}
	return 0
}

func gauge(addr, name string) int {
	resp, err := plainHTTP.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f)
		}
	}
	return 0
}

func waitReady(addr string, cmd *exec.Cmd) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if cmd.ProcessState != nil {
			return errors.New("worker exited")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("worker not ready on %s", addr)
}

func freeAddr() string {
	return fmt.Sprintf("127.0.0.1:%d", freePort())
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func build(dir, out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s in %s: %v\n%s", pkg, dir, err, b)
	}
	return nil
}

// buildRef builds cmd/hookworker as it is at git ref.
func buildRef(ref, src, out string) error {
	if err := os.MkdirAll(src, 0o755); err != nil {
		return err
	}
	archive := exec.Command("git", "archive", "--format=tar", ref)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return err
	}
	untar.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr = &stderr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		return fmt.Errorf("git archive %s: %v: %s", ref, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("untar %s: %w", ref, err)
	}
	return build(src, out, "./cmd/hookworker")
}

// natsServerBinary finds nats-server, or installs the version go.mod
// requires (pure Go, no cgo) into $GOPATH/bin.
func natsServerBinary(flagged string) (string, error) {
	if flagged != "" {
		return flagged, nil
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p, nil
	}
	gopath, _ := exec.Command("go", "env", "GOPATH").Output()
	bin := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	version := "latest"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/nats-io/nats-server/v2" {
				version = d.Version
			}
		}
	}
	fmt.Fprintln(os.Stderr, "bench: installing nats-server", version)
	cmd := exec.Command("go", "install", "github.com/nats-io/nats-server/v2@"+version)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install nats-server: %v\n%s", err, b)
	}
	return bin, nil
}

func natsServerVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// cpuTicks is the machine's CPU time from the first line of /proc/stat.
type cpuTicks struct{ total, idle uint64 }

func cpuBusy() cpuTicks {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTicks{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var t cpuTicks
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i >= 8 { // guest and guest_nice are already in user and nice
			break
		}
		t.total += n
		if i == 3 || i == 4 { // idle, iowait
			t.idle += n
		}
	}
	return t
}

// since is the share of CPU time not idle between t0 and t.
func (t cpuTicks) since(t0 cpuTicks) float64 {
	if t.total <= t0.total {
		return 0
	}
	return 1 - float64(t.idle-t0.idle)/float64(t.total-t0.total)
}

// cpuPressure is the total time some runnable task waited for a CPU
// (/proc/pressure/cpu "some total", in µs), or -1 where the kernel has no PSI.
func cpuPressure() time.Duration {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return time.Duration(us) * time.Microsecond
		}
	}
	return -1
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
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

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

func report(w io.Writer, cfg config, rs []result, load0, load1 string, took time.Duration) {
	nsBin, _ := natsServerBinary(cfg.natsServer)
	fmt.Fprintf(w, "hookworker benchmark, %s, took %s\n", time.Now().UTC().Format(time.RFC3339), took.Round(time.Second))
	fmt.Fprintf(w, "conditions: %s, %d CPUs, %s %s/%s, %s (own process per case, fresh store, loopback TCP)\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, natsServerVersion(nsBin))
	fmt.Fprintf(w, "            load average at start %s, at end %s (the machine is shared: compare ratios within this run)\n", load0, load1)
	fmt.Fprintf(w, "            %d order.accepted events per case published at once (after 500 warm-up events); sandbox provider;\n", cfg.n)
	fmt.Fprintf(w, "            latency: publish→result at %s of the case's rate for %.0fs each; CPU from /proc/<pid>/stat; msgs from /connz\n\n", fracList(cfg.latFracs), cfg.latSeconds)
	fmt.Fprintf(w, "%-34s %9s %9s %9s %9s %7s %7s %9s %9s %9s %8s\n", "case", "events/s", "worker", "server", "total", "msgs", "msgs", "latency", "p50", "p99", "peak RSS")
	fmt.Fprintf(w, "%-34s %9s %9s %9s %9s %7s %7s %9s %9s %9s %8s\n", "", "", "µs/event", "µs/event", "µs/event", "out/ev", "in/ev", "at ev/s", "", "", "MiB")
	for _, r := range rs {
		lat, p50, p99 := "-", "-", "-"
		if len(r.lats) > 0 {
			lat, p50, p99 = fmt.Sprintf("%.0f", r.lats[0].rate), fmtDur(r.lats[0].p50), fmtDur(r.lats[0].p99)
		}
		fmt.Fprintf(w, "%-34s %9.0f %9.1f %9.1f %9.1f %7.2f %7.2f %9s %9s %9s %8.1f\n", r.name, r.rate, r.workerCPU, r.serverCPU,
			r.workerCPU+r.serverCPU, r.sentMsgs, r.recvMsgs, lat, p50, p99, float64(r.rssKiB)/1024)
	}
	fmt.Fprintf(w, "\n(msgs out/ev: sent by the consumer to the server per event — requests, publishes, acks; in/ev: received — deliveries and replies;\n")
	fmt.Fprintf(w, " a confirmed request is one round trip: one out and one in)\n")
	for _, r := range rs {
		if r.kind == "rss" || r.kind == "rss-baseline" {
			fmt.Fprintf(w, "%s: peak RSS %.1f MiB with up to %d operations in flight (sampled every 20 ms; %s)\n", r.name, float64(r.rssKiB)/1024, r.maxInFlight, r.note)
		}
	}

	if slices.ContainsFunc(rs, func(r result) bool { return len(r.lats) > 0 }) {
		fmt.Fprintf(w, "\npublish→result by offered load (fraction of the case's measured rate; CPU busy: all %d CPUs, not idle;\n", runtime.NumCPU())
		fmt.Fprintf(w, " CPU wait: ms per second that some runnable task waited for a CPU, /proc/pressure/cpu;\n")
		fmt.Fprintf(w, " CPU µs/event of the consumer, the server and the bench's publisher+collector during the run):\n")
		fmt.Fprintf(w, "  %-34s %8s %9s %9s %9s %9s %9s %8s %8s %8s\n", "case", "fraction", "events/s", "p50", "p99", "CPU busy", "CPU wait", "worker", "server", "bench")
		for _, r := range rs {
			for _, lp := range r.lats {
				wait := "-"
				if lp.pressure >= 0 {
					wait = fmt.Sprintf("%.0fms/s", lp.pressure)
				}
				fmt.Fprintf(w, "  %-34s %8s %9.0f %9s %9s %8.0f%% %9s %8.0f %8.0f %8.0f\n", r.name, strconv.FormatFloat(lp.frac, 'g', 4, 64), lp.rate,
					fmtDur(lp.p50), fmtDur(lp.p99), 100*lp.busy, wait, lp.workerCPU, lp.serverCPU, lp.benchCPU)
			}
		}
	}

	var wmBest *result
	for i := range rs {
		if rs[i].kind == "watermill" && (wmBest == nil || rs[i].rate > wmBest.rate) {
			wmBest = &rs[i]
		}
	}
	fmt.Fprintln(w, "\nratios (same run):")
	var hwBest *result
	for i := range rs {
		r := &rs[i]
		if r.kind != "hookworker" {
			continue
		}
		if hwBest == nil || r.rate > hwBest.rate {
			hwBest = r
		}
		for _, wm := range rs {
			if wm.kind == "watermill" && (wm.conc == r.conc || &rs[indexOf(rs, wm.name)] == wmBest) {
				fmt.Fprintf(w, "  %-22s / %-28s events/s %.2fx   CPU/event (worker+server) %.2fx\n", r.name, wm.name, r.rate/wm.rate,
					(r.workerCPU+r.serverCPU)/(wm.workerCPU+wm.serverCPU))
			}
		}
		for _, b := range rs {
			if b.kind == "baseline" && b.conc == r.conc {
				fmt.Fprintf(w, "  %-22s / %-28s events/s %.2fx   CPU/event (worker+server) %.2fx   msgs/event %.2fx\n", r.name, b.name, r.rate/b.rate,
					(r.workerCPU+r.serverCPU)/(b.workerCPU+b.serverCPU), (r.sentMsgs+r.recvMsgs)/(b.sentMsgs+b.recvMsgs))
			}
		}
	}
	if hwBest != nil && wmBest != nil {
		fmt.Fprintf(w, "  best hookworker (%s) / best watermill (%s): %.2fx\n", hwBest.name, wmBest.name, hwBest.rate/wmBest.rate)
	}
	for _, r := range rs {
		if r.kind == "raw" && hwBest != nil {
			fmt.Fprintf(w, "  best hookworker / raw consume+ack: %.2f of the server's bare delivery rate\n", hwBest.rate/r.rate)
		}
	}
}

func fracList(fs []float64) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, strconv.FormatFloat(f, 'g', 4, 64))
	}
	return strings.Join(parts, ", ")
}

func indexOf(rs []result, name string) int {
	for i := range rs {
		if rs[i].name == name {
			return i
		}
	}
	return -1
}

func fmtDur(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
}

// plainHTTP asks for uncompressed responses: the in-flight probe scrapes
// every 20 ms, and compressing each scrape would cost the worker CPU that a
// real scraper's interval does not.
var plainHTTP = &http.Client{Transport: &http.Transport{DisableCompression: true}}
