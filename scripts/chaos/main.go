// Command chaos runs real `hookworker run` processes against a real
// nats-server and in-process HTTP fakes of Comet, CodeGuard (LogicBoxes) and
// StoreGrid, injects faults for a bounded time, then accounts for every
// event it published and prints a ledger computed from the fakes' state and
// the results and dead-letter streams.
//
// Faults: worker processes SIGKILLed at random and restarted; nats-server
// restarted; provider replies failing with 5xx before and after the effect,
// dropped after the effect, slow, or 429 with Retry-After; duplicates inside
// the JetStream de-duplication window (dropped by JetStream) and after it
// (stored again: the worker must find its records); two renewals of one
// CodeGuard order paid close together; and the malformed inputs of issue 10
// (see malformedKinds).
//
// It exits 1 when any event is lost, any effect is duplicated or missing,
// renewals applied differ from renewals paid, a dead letter has no
// provisioning.dead_lettered result, or a malformed event was processed as
// valid; 2 when the run itself could not be set up.
//
//	go run ./scripts/chaos                 # default: about 5 minutes
//	go run ./scripts/chaos -short          # CI: about 2 minutes
//	go run ./scripts/chaos -seed 7 -duration 2m -events 400 -skip long-type,big-raw
//
// Everything listens on 127.0.0.1 only, and the run stops by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	duration     time.Duration // chaos phase
	settle       time.Duration // longest wait for the queue to drain afterwards
	events       int           // primary events (duplicates and renewals come on top)
	seed         uint64
	workers      int
	killMin      time.Duration
	killMax      time.Duration
	natsRestarts int
	faultRate    float64
	dupWindow    time.Duration
	maxDeliver   int
	skip         map[string]bool
	hookworker   string
	natsServer   string
	keep         bool
	verbose      bool
}

// skippable are the names -skip accepts besides the malformed kinds.
var skippable = []string{"kills", "nats-restarts", "faults", "renewals", "after-window-dups"}

func parseFlags(args []string) (config, error) {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	c := config{}
	short := fs.Bool("short", false, "the CI run: -duration 60s -events 240 -nats-restarts 1 -settle 40s -dup-window 10s unless set")
	fs.DurationVar(&c.duration, "duration", 3*time.Minute, "length of the chaos phase (publishing and faults)")
	fs.DurationVar(&c.settle, "settle", 75*time.Second, "longest wait, after the chaos phase, for every event to be finished")
	fs.IntVar(&c.events, "events", 600, "primary events published during the chaos phase")
	fs.Uint64Var(&c.seed, "seed", 0, "random seed (0: from the clock; printed either way)")
	fs.IntVar(&c.workers, "workers", 2, "hookworker processes (replicas of one durable consumer)")
	fs.DurationVar(&c.killMin, "kill-min", 3*time.Second, "shortest time between two SIGKILLs")
	fs.DurationVar(&c.killMax, "kill-max", 9*time.Second, "longest time between two SIGKILLs")
	fs.IntVar(&c.natsRestarts, "nats-restarts", 3, "nats-server restarts during the chaos phase")
	fs.Float64Var(&c.faultRate, "fault-rate", 0.15, "share of provider requests that get a fault")
	fs.DurationVar(&c.dupWindow, "dup-window", 15*time.Second, "HOOKWORKER_DUPLICATE_WINDOW of the events stream")
	fs.IntVar(&c.maxDeliver, "max-deliver", 6, "HOOKWORKER_MAX_DELIVER of the workers")
	skip := fs.String("skip", "", "comma-separated injections to leave out: "+strings.Join(append(kindNames(), skippable...), ", "))
	fs.StringVar(&c.hookworker, "hookworker", "", "hookworker binary (default: built from ./cmd/hookworker)")
	fs.StringVar(&c.natsServer, "nats-server", "", "nats-server binary (default: $NATS_SERVER, PATH, $(go env GOPATH)/bin, else go install of go.mod's version)")
	fs.BoolVar(&c.keep, "keep", false, "keep the run directory (worker and server logs, JetStream store)")
	fs.BoolVar(&c.verbose, "v", false, "print each fault and process event as it happens")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if *short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		def := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		def("duration", func() { c.duration = 60 * time.Second })
		def("events", func() { c.events = 240 })
		def("nats-restarts", func() { c.natsRestarts = 1 })
		def("settle", func() { c.settle = 40 * time.Second })
		def("dup-window", func() { c.dupWindow = 10 * time.Second })
	}
	c.skip = map[string]bool{}
	known := map[string]bool{}
	for _, k := range append(kindNames(), skippable...) {
		known[k] = true
	}
	for _, s := range strings.Split(*skip, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !known[s] {
			return c, fmt.Errorf("-skip: unknown injection %q (want one of %s)", s, strings.Join(append(kindNames(), skippable...), ", "))
		}
		c.skip[s] = true
	}
	switch {
	case c.duration < 10*time.Second:
		return c, errors.New("-duration: at least 10s")
	case c.events < 10:
		return c, errors.New("-events: at least 10")
	case c.workers < 1:
		return c, errors.New("-workers: at least 1")
	case c.killMin <= 0 || c.killMax < c.killMin:
		return c, errors.New("-kill-min and -kill-max: 0 < kill-min <= kill-max")
	case c.faultRate < 0 || c.faultRate > 0.9:
		return c, errors.New("-fault-rate: between 0 and 0.9")
	case c.dupWindow < time.Second:
		return c, errors.New("-dup-window: at least 1s")
	case c.maxDeliver < 2:
		return c, errors.New("-max-deliver: at least 2")
	}
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	l.print(os.Stdout)
	if bad := l.failures(); len(bad) > 0 {
		sort.Strings(bad)
		fmt.Printf("FAIL: %s\n", strings.Join(bad, "; "))
		os.Exit(1)
	}
	fmt.Println("PASS: every event accounted for, every effect once")
}
