package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/providers/codeguard/codeguardtest"
	"github.com/hookworker/hookworker/providers/comet/comettest"
	"github.com/hookworker/hookworker/providers/storegrid/storegridtest"
	"github.com/hookworker/hookworker/worker"
)

// passwordSecret derives the service passwords of every worker process.
const passwordSecret = "chaos-password-secret-0123456789abcdef"

// fakes are the three provider fakes, each behind a fault injector.
type fakes struct {
	comet     *comettest.Server
	codeguard *codeguardtest.Server
	storegrid *storegridtest.Server
	faults    []*faulty
	servers   []*httptest.Server
	env       []string
}

func startFakes(seed uint64) *fakes {
	f := &fakes{comet: comettest.NewServer(), codeguard: codeguardtest.NewServer(), storegrid: storegridtest.NewServer()}
	f.storegrid.AddReseller(storegridReseller)
	wrap := func(h *faulty) string {
		f.faults = append(f.faults, h)
		ts := httptest.NewServer(h)
		f.servers = append(f.servers, ts)
		return ts.URL
	}
	cometURL := wrap(newFaulty(f.comet, seed+1))
	cgURL := wrap(newFaulty(f.codeguard, seed+2)) + "/api"
	sgURL := wrap(newFaulty(f.storegrid, seed+3))
	f.env = []string{
		"HOOKWORKER_COMET_URL=" + cometURL, "HOOKWORKER_COMET_USERNAME=" + f.comet.Username, "HOOKWORKER_COMET_PASSWORD=" + f.comet.Password,
		"HOOKWORKER_CODEGUARD_URL=" + cgURL, "HOOKWORKER_CODEGUARD_AUTH_USERID=" + f.codeguard.AuthUserID, "HOOKWORKER_CODEGUARD_API_KEY=" + f.codeguard.APIKey,
		"HOOKWORKER_STOREGRID_URL=" + sgURL, "HOOKWORKER_STOREGRID_USERNAME=" + f.storegrid.Username, "HOOKWORKER_STOREGRID_PASSWORD=" + f.storegrid.Password,
	}
	for _, p := range []string{"COMET", "CODEGUARD", "STOREGRID"} {
		f.env = append(f.env, "HOOKWORKER_"+p+"_RATE=0", "HOOKWORKER_"+p+"_TIMEOUT=2s", "HOOKWORKER_"+p+"_MAX_CONCURRENT=8")
	}
	return f
}

func (f *fakes) setFaultRate(r float64) {
	for _, h := range f.faults {
		h.setRate(r)
	}
}

func (f *fakes) close() {
	for _, s := range f.servers {
		s.Close()
	}
	f.comet.Close()
	f.codeguard.Close()
	f.storegrid.Close()
}

// secrets are the values no worker log may hold.
func (f *fakes) secrets() []string {
	s := []string{f.comet.Password, f.codeguard.APIKey, f.storegrid.Password, passwordSecret}
	for _, c := range f.codeguard.Customers() {
		s = append(s, f.codeguard.CustomerPassword(c.ID))
	}
	for _, a := range f.storegrid.Accounts() {
		if a.PassKey != "" {
			s = append(s, a.PassKey)
		}
	}
	return s
}

// chaos is one run.
type chaos struct {
	cfg     config
	dir     string
	rng     *rand.Rand
	rngMu   sync.Mutex
	nats    *natsProc
	fakes   *fakes
	workers *workers
	nc      *nats.Conn
	js      jetstream.JetStream

	mu        sync.Mutex
	events    []*event
	renewFor  map[int]bool // CodeGuard services that get two renewals once signed up
	renewed   map[int]bool
	nextInv   int
	pubWG     sync.WaitGroup
	pubSlots  chan struct{}
	chaosOver chan struct{}
	start     time.Time
}

func (c *chaos) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "chaos %6.1fs  %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

func (c *chaos) vlogf(format string, args ...any) {
	if c.cfg.verbose {
		c.logf(format, args...)
	}
}

func (c *chaos) intn(n int) int {
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return c.rng.IntN(n)
}

func (c *chaos) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	c.rngMu.Lock()
	defer c.rngMu.Unlock()
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
}

func run(ctx context.Context, cfg config) (*ledger, error) {
	c := &chaos{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.seed, 1)), renewFor: map[int]bool{}, renewed: map[int]bool{},
		nextInv: 700000, pubSlots: make(chan struct{}, 64), chaosOver: make(chan struct{}), start: time.Now()}
	dir, err := os.MkdirTemp("", "hookworker-chaos-")
	if err != nil {
		return nil, err
	}
	c.dir = dir
	if cfg.keep {
		defer c.logf("run directory kept: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	c.logf("seed %d; run directory %s", cfg.seed, dir)

	natsBin, err := findNATSServer(ctx, cfg.natsServer, c.logf)
	if err != nil {
		return nil, err
	}
	hwBin := cfg.hookworker
	if hwBin == "" {
		c.logf("building ./cmd/hookworker")
		if hwBin, err = buildHookworker(ctx, dir); err != nil {
			return nil, err
		}
	}
	if c.nats, err = startNATS(natsBin, dir); err != nil {
		return nil, err
	}
	defer c.nats.stop()
	c.fakes = startFakes(cfg.seed)
	defer c.fakes.close()

	c.nc, err = nats.Connect(c.nats.url(), nats.Name("chaos"), nats.MaxReconnects(-1), nats.ReconnectWait(200*time.Millisecond),
		nats.ReconnectBufSize(64<<20))
	if err != nil {
		return nil, fmt.Errorf("connect to nats-server: %w", err)
	}
	defer c.nc.Close()
	if c.js, err = jetstream.New(c.nc); err != nil {
		return nil, err
	}

	catalogPath := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catalogPath, []byte(catalogYAML), 0o600); err != nil {
		return nil, err
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOOKWORKER_") {
			env = append(env, kv)
		}
	}
	env = append(env, c.fakes.env...)
	env = append(env,
		"HOOKWORKER_NATS_URL="+c.nats.url(), "HOOKWORKER_CATALOG="+catalogPath, "HOOKWORKER_DATA_DIR="+filepath.Join(dir, "data"),
		"HOOKWORKER_PASSWORD_SECRET="+passwordSecret, "HOOKWORKER_METRICS_ADDR=", "HOOKWORKER_OPS_ADDR=",
		"HOOKWORKER_LOG_FORMAT=json", "HOOKWORKER_LOG_LEVEL=info",
		"HOOKWORKER_ACK_WAIT=4s", "HOOKWORKER_ATTEMPT_BUDGET=3s", "HOOKWORKER_RETRY_BASE=250ms", "HOOKWORKER_RETRY_MAX=2s",
		"HOOKWORKER_FETCH_WAIT=250ms", "HOOKWORKER_STATS_INTERVAL=1s", "HOOKWORKER_PROVIDER_CHECK_INTERVAL=0",
		"HOOKWORKER_SHUTDOWN_TIMEOUT=5s", "HOOKWORKER_CONCURRENCY=8",
		fmt.Sprintf("HOOKWORKER_MAX_DELIVER=%d", cfg.maxDeliver), "HOOKWORKER_DUPLICATE_WINDOW="+cfg.dupWindow.String())
	c.workers = &workers{bin: hwBin, env: env, dir: dir, logf: c.logf}
	if err := c.workers.start(cfg.workers); err != nil {
		return nil, err
	}
	defer c.workers.stopAll()
	if err := c.waitSetUp(ctx, time.Minute); err != nil {
		return nil, err
	}
	c.logf("%d workers, nats-server %s, fakes on 127.0.0.1; chaos for %s", cfg.workers, c.nats.url(), cfg.duration)

	// Watch succeeded signups, to pay two renewals of some CodeGuard orders
	// close together once they exist.
	sub, err := c.nc.Subscribe(events.OutcomeResultsFilter(events.OutcomeSucceeded), c.onSucceeded)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()

	if !cfg.skip["faults"] {
		c.fakes.setFaultRate(cfg.faultRate)
	}
	chaosCtx, endChaos := context.WithTimeout(ctx, cfg.duration)
	defer endChaos()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.traffic(chaosCtx) }()
	go func() { defer wg.Done(); c.killer(chaosCtx) }()
	go func() { defer wg.Done(); c.natsRestarter(chaosCtx) }()
	wg.Wait()
	close(c.chaosOver)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	c.logf("chaos over: faults off, every worker running; waiting for publishes and the queue to drain (at most %s)", cfg.settle)
	c.fakes.setFaultRate(0)
	c.workers.reviveAll()
	pubDone := make(chan struct{})
	go func() { c.pubWG.Wait(); close(pubDone) }()
	select {
	case <-pubDone:
	case <-time.After(70 * time.Second):
		c.logf("some publishes still retrying after 70s")
	}
	drainedIn, drained := c.settle(ctx, cfg.settle)
	c.workers.stopAll()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	st, err := c.collect(ctx)
	if err != nil {
		return nil, err
	}
	l := computeLedger(st)
	l.seed, l.duration, l.workers, l.kills, l.natsRestarts = cfg.seed, cfg.duration, cfg.workers, c.workers.kills, c.nats.restarts
	l.faults, l.faultKeys = faultTotals(c.fakes.faults...)
	l.drained, l.drainedIn = drained, drainedIn
	l.crashes = c.workers.crashes
	l.skipped = cfg.skip
	l.logFindings = scanLogs(c.workers.logs(), c.fakes.secrets())
	l.total = time.Since(c.start)
	return l, nil
}

// waitSetUp waits until the workers made the streams, consumer and bucket.
func (c *chaos) waitSetUp(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err1 := c.js.Consumer(cctx, worker.EventsStream, "hookworker")
		_, err2 := c.js.Stream(cctx, worker.ResultsStream)
		_, err3 := c.js.Stream(cctx, worker.DeadLetterStream)
		cancel()
		if err1 == nil && err2 == nil && err3 == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("the workers did not set up JetStream within %s (logs in %s)", within, c.dir)
}

// traffic publishes cfg.events primary events at random times over the
// chaos phase (the last tenth kept free for retries to finish), the
// malformed kinds among them, and duplicates.
func (c *chaos) traffic(ctx context.Context) {
	span := c.cfg.duration * 9 / 10
	type planned struct {
		at time.Duration
		e  *event
	}
	var plan []planned
	at := func() time.Duration { return c.between(0, span) }
	sid := 1
	nextClient := 500000
	for range c.cfg.events {
		var e *event
		switch r := c.intn(100); {
		case r < 30:
			e = signupEvent(kindComet, "comet", sid, productComet)
		case r < 55:
			e = signupEvent(kindStoreGrid, "storegrid", sid, productStoreGrid)
		case r < 80:
			e = signupEvent(kindCodeGuard, "codeguard", sid, productCodeGuard)
			if !c.cfg.skip["renewals"] && c.intn(100) < 40 {
				c.renewFor[sid] = true
			}
		case r < 92:
			// AcceptOrder (nothing to do) then the first invoice paid.
			t := at()
			plan = append(plan, planned{t, noopAcceptEvent(sid)})
			e = invoicePaidEvent(sid)
			plan = append(plan, planned{t + c.between(50*time.Millisecond, 3*time.Second), e})
			sid++
			continue
		default:
			e = resellerEvent(nextClient)
			nextClient++
		}
		plan = append(plan, planned{at(), e})
		sid++
	}
	copies := max(1, c.cfg.events/300)
	msid := 900000
	for _, k := range malformedKinds {
		if c.cfg.skip[k.name] {
			continue
		}
		for range copies {
			plan = append(plan, planned{at(), malformedEvent(k, msid)})
			msid++
		}
	}
	sort.Slice(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
	c.mu.Lock()
	for _, p := range plan {
		c.events = append(c.events, p.e)
	}
	c.mu.Unlock()

	start := time.Now()
	for _, p := range plan {
		if d := time.Until(start.Add(p.at)); d > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		c.send(p.e, 0)
		if !p.e.malformed {
			c.maybeDuplicate(p.e)
		}
	}
}

// send publishes e after delay, without holding up the caller.
func (c *chaos) send(e *event, delay time.Duration) {
	c.pubWG.Add(1)
	go func() {
		defer c.pubWG.Done()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-c.chaosOver:
				return
			}
		}
		c.pubSlots <- struct{}{}
		defer func() { <-c.pubSlots }()
		publish(context.Background(), c.js, e)
	}()
}

// maybeDuplicate publishes e again: inside the de-duplication window
// (JetStream drops it) or after it (stored again), as a hook retry or a
// replayed spool would.
func (c *chaos) maybeDuplicate(e *event) {
	switch r := c.intn(100); {
	case r < 10:
		c.send(e, c.between(200*time.Millisecond, c.cfg.dupWindow/2))
	case r < 16 && !c.cfg.skip["after-window-dups"]:
		d := c.cfg.dupWindow + c.between(time.Second, 5*time.Second)
		if time.Since(c.start)+d < c.cfg.duration+time.Minute { // only while the run lasts
			c.send(e, d)
		}
	}
}

// onSucceeded pays two renewals of a CodeGuard order, 20 ms apart, once
// its signup succeeded.
func (c *chaos) onSucceeded(m *nats.Msg) {
	var env events.Envelope
	if json.Unmarshal(m.Data, &env) != nil {
		return
	}
	var d events.ResultData
	if json.Unmarshal(env.Data, &d) != nil || d.Action != events.SignupCustomer || d.Provider != "codeguard" {
		return
	}
	select {
	case <-c.chaosOver:
		return
	default:
	}
	c.mu.Lock()
	if !c.renewFor[d.ServiceID] || c.renewed[d.ServiceID] {
		c.mu.Unlock()
		return
	}
	c.renewed[d.ServiceID] = true
	inv := c.nextInv
	c.nextInv += 2
	r1, r2 := renewalEvent(d.ServiceID, d.ProductID, inv), renewalEvent(d.ServiceID, d.ProductID, inv+1)
	c.events = append(c.events, r1, r2)
	c.mu.Unlock()
	c.vlogf("paying renewals %d and %d of service %d", inv, inv+1, d.ServiceID)
	c.send(r1, 0)
	c.send(r2, 20*time.Millisecond)
	c.maybeDuplicate(r1)
}

// killer SIGKILLs a random worker (sometimes all) every killMin–killMax and
// restarts it shortly after.
func (c *chaos) killer(ctx context.Context) {
	if c.cfg.skip["kills"] {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.between(c.cfg.killMin, c.cfg.killMax)):
		}
		victims := []int{c.intn(len(c.workers.slots))}
		if c.intn(100) < 20 {
			victims = victims[:0]
			for i := range c.workers.slots {
				victims = append(victims, i)
			}
		}
		for _, v := range victims {
			c.workers.kill(v)
		}
		c.vlogf("SIGKILLed workers %v", victims)
		down := c.between(200*time.Millisecond, 3*time.Second)
		select {
		case <-ctx.Done():
		case <-time.After(down):
		}
		for _, v := range victims {
			c.workers.revive(v)
		}
	}
}

// natsRestarter restarts nats-server natsRestarts times, evenly spread.
func (c *chaos) natsRestarter(ctx context.Context) {
	if c.cfg.skip["nats-restarts"] || c.cfg.natsRestarts == 0 {
		return
	}
	every := c.cfg.duration / time.Duration(c.cfg.natsRestarts+1)
	for range c.cfg.natsRestarts {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		down := c.between(500*time.Millisecond, 3*time.Second)
		c.vlogf("restarting nats-server (down %s)", down)
		if err := c.nats.restart(down); err != nil {
			c.logf("nats-server restart failed: %v; trying again", err)
			time.Sleep(time.Second)
			if err := c.nats.start(); err != nil {
				c.logf("nats-server did not come back: %v", err)
			}
		}
	}
}

// settle waits until the consumer has nothing pending and nothing
// unacknowledged and the results and dead-letter streams stopped growing
// for 3 s, or until within passes.
func (c *chaos) settle(ctx context.Context, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	var last string
	stable := time.Time{}
	for time.Since(start) < within && ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		state, err := c.queueState(cctx)
		cancel()
		if err == nil && state.pending == 0 && state.ackPending == 0 {
			sig := fmt.Sprint(state.results, state.dead)
			if sig != last {
				last, stable = sig, time.Now()
			} else if time.Since(stable) >= 3*time.Second {
				return time.Since(start), true
			}
		} else {
			last = ""
		}
		time.Sleep(500 * time.Millisecond)
	}
	return time.Since(start), false
}

type queueState struct {
	pending, ackPending, ackFloor, results, dead uint64
}

func (c *chaos) queueState(ctx context.Context) (queueState, error) {
	var q queueState
	cons, err := c.js.Consumer(ctx, worker.EventsStream, "hookworker")
	if err != nil {
		return q, err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return q, err
	}
	q.pending, q.ackPending, q.ackFloor = info.NumPending, uint64(info.NumAckPending), info.AckFloor.Stream
	for _, s := range []struct {
		name string
		n    *uint64
	}{{worker.ResultsStream, &q.results}, {worker.DeadLetterStream, &q.dead}} {
		st, err := c.js.Stream(ctx, s.name)
		if err != nil {
			return q, err
		}
		si, err := st.Info(ctx)
		if err != nil {
			return q, err
		}
		*s.n = si.State.LastSeq
	}
	return q, nil
}
