package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
)

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseInterspersed parses flags that may come after positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequested{fs}
			}
			return nil, usageError{fmt.Errorf("%s: %w", fs.Name(), err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// cmdEmit publishes one event, from a file or a built-in sample, with its id
// as Nats-Msg-Id, and prints the stream's acknowledgement.
func cmdEmit(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	fs := newFlags("emit")
	file := fs.String("file", "", "JSON event file (- for standard input)")
	source := fs.String("source", "main", "WHMCS instance name of a built-in sample")
	var ids events.SampleIDs
	fs.IntVar(&ids.Product, "product", 0, "product id of a built-in sample (default 1)")
	fs.IntVar(&ids.Service, "service", 0, "service id of a built-in sample (default 100)")
	fs.IntVar(&ids.Order, "order", 0, "order id of a built-in sample (default 50)")
	fs.IntVar(&ids.Client, "client", 0, "client id of a built-in sample (default 7)")
	fs.IntVar(&ids.Invoice, "invoice", 0, "invoice id of a built-in sample (default 900)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError{errors.New("emit: want exactly one event type")}
	}
	for _, v := range []struct {
		flag string
		id   int
	}{{"product", ids.Product}, {"service", ids.Service}, {"order", ids.Order}, {"client", ids.Client}, {"invoice", ids.Invoice}} {
		if v.id < 0 {
			return usageError{fmt.Errorf("emit: --%s: want a positive WHMCS id, got %d", v.flag, v.id)}
		}
		if v.id != 0 && *file != "" {
			return usageError{fmt.Errorf("emit: --%s applies to built-in samples, not to --file", v.flag)}
		}
	}
	typ := events.Type(pos[0])
	var env events.Envelope
	var body []byte
	if *file != "" {
		if *file == "-" {
			body, err = io.ReadAll(os.Stdin)
		} else {
			body, err = os.ReadFile(*file)
		}
		if err != nil {
			return fmt.Errorf("emit: %w", err)
		}
		env, err = events.Decode(body)
		if err != nil {
			return usageError{fmt.Errorf("emit: %s: %w", *file, err)}
		}
		if env.Type != typ {
			return usageError{fmt.Errorf("emit: %s holds an event of type %s, not %s", *file, env.Type, typ)}
		}
	} else {
		if env, err = events.SampleOf(typ, *source, ids); err != nil {
			return usageError{fmt.Errorf("emit: %w", err)}
		}
		body, _ = json.Marshal(env)
	}
	b, err := cfg.connect(nil, false)
	if err != nil {
		return err
	}
	defer b.close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := b.js.Publish(pctx, events.InboundSubject(env.Source, env.Type), body, jetstream.WithMsgID(env.ID))
	if err != nil {
		return fmt.Errorf("emit %s: %w (is `hookworker run` running, or HOOKWORKER_NATS_URL set?)", env.ID, err)
	}
	fmt.Fprintf(stdout, "published %s %s to %s: stream %s seq %d duplicate=%v\n", env.Type, env.ID,
		events.InboundSubject(env.Source, env.Type), ack.Stream, ack.Sequence, ack.Duplicate)
	if ack.Duplicate {
		fmt.Fprintln(stdout, "  (JetStream dropped it: an event with this id was published within the duplicate window, HOOKWORKER_DUPLICATE_WINDOW; the worker does not see it again. Another event: a different --order, --invoice or --client.)")
	}
	return nil
}

// cmdResults prints result events as JSON lines until interrupted (or
// --count results were printed).
func cmdResults(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	fs := newFlags("results")
	all := fs.Bool("all", false, "start from the first stored result instead of new ones")
	count := fs.Int("count", 0, "exit after this many results")
	wait := fs.Duration("timeout", 0, "exit after this long (0 = until interrupted)")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	b, err := cfg.connect(nil, false)
	if err != nil {
		return err
	}
	defer b.close()
	if *wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *wait)
		defer cancel()
	}
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	if *all {
		occ.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := b.js.OrderedConsumer(ctx, worker.ResultsStream, occ)
	if err != nil {
		return fmt.Errorf("results: %w (has a worker run once to create the streams?)", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); it.Stop() }()
	n := 0
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		fmt.Fprintln(stdout, string(m.Data()))
		n++
		if *count > 0 && n >= *count {
			return nil
		}
	}
}

// rpcTimeout is how long status and providers check wait for the running
// worker's answer (a providers check waits longer: it calls the providers).
const rpcTimeout = events.RPCDefaultTimeout

// askWorker sends one request to the running worker over NATS
// request-reply and decodes the reply into out. When no worker answers it
// says so, naming the subject and the server asked.
func askWorker(ctx context.Context, cfg Config, subject string, req events.RPCRequest, timeout time.Duration, out any) error {
	b, err := cfg.connect(nil, false)
	if err != nil {
		return err
	}
	defer b.close()
	req.TimeoutMS = int(timeout / time.Millisecond)
	body, _ := json.Marshal(req)
	rctx, cancel := context.WithTimeout(ctx, timeout+500*time.Millisecond)
	defer cancel()
	m, err := b.nc.RequestWithContext(rctx, subject, body)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			return fmt.Errorf("no hookworker worker answered %s on %s within %s: is `hookworker run` running and connected to this NATS? (%v)",
				subject, redactURL(cfg.clientURL()), timeout, err)
		}
		return fmt.Errorf("ask the worker (%s): %w", subject, err)
	}
	if err := json.Unmarshal(m.Data, out); err != nil {
		return fmt.Errorf("the worker's reply to %s is not the JSON expected: %w", subject, err)
	}
	return nil
}

// cmdStatus prints the running worker's queue, dead letters and provider
// health, as the worker sees them (asked over NATS request-reply).
func cmdStatus(ctx context.Context, cfg Config, stdout io.Writer) error {
	var st events.StatusReply
	if err := askWorker(ctx, cfg, events.RPCStatus, events.RPCRequest{}, rpcTimeout, &st); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if err := st.Err(); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY: " + st.NotReady
	}
	fmt.Fprintf(tw, "worker %s\t%s (snapshot of %s)\n", st.Worker, ready, st.At.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "events stream %s\t%d stored\n", worker.EventsStream, st.StreamMessages)
	fmt.Fprintf(tw, "consumer %s\t%d pending, %d in progress (%d redelivered)\n", st.Consumer, st.Pending, st.AckPending, st.Redelivered)
	fmt.Fprintf(tw, "oldest unacked event\t%s\n", st.OldestPendingAge.Round(time.Second))
	fmt.Fprintf(tw, "results stream %s\t%d stored\n", worker.ResultsStream, st.Results)
	fmt.Fprintf(tw, "dead letters %s\t%d waiting\n", worker.DeadLetterStream, st.DeadLetters)
	names := make([]string, 0, len(st.Providers))
	for n := range st.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(tw, "provider %s\t%s\n", n, st.Providers[n])
	}
	return tw.Flush()
}

// cmdProvidersCheck asks the running worker to test every provider it has
// configured (or only --provider), like WHMCS's Test Connection button; it
// fails when any provider fails. --local tests the providers this
// command's own settings configure instead, without a worker.
func cmdProvidersCheck(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	fs := newFlags("providers check")
	local := fs.Bool("local", false, "check with this command's own settings instead of asking the running worker")
	only := fs.String("provider", "", "check only this provider")
	timeout := fs.Duration("timeout", 20*time.Second, "how long to wait for the checks")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	if *local {
		return checkProviders(ctx, cfg, stdout, *only)
	}
	var rep events.ProvidersCheckReply
	if err := askWorker(ctx, cfg, events.RPCProvidersCheck, events.RPCRequest{Provider: *only}, *timeout, &rep); err != nil {
		return fmt.Errorf("providers check: %w", err)
	}
	if err := rep.Err(); err != nil {
		return fmt.Errorf("providers check: %w", err)
	}
	fmt.Fprintf(stdout, "checked by worker %s:\n", rep.Worker)
	failed := 0
	for _, c := range rep.Providers {
		if !c.OK {
			failed++
			fmt.Fprintf(stdout, "provider %-10s FAILED (%s): %s\n", c.Provider, c.ErrorClass, c.Error)
			continue
		}
		fmt.Fprintf(stdout, "provider %-10s ok (%dms)\n", c.Provider, c.Millis)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d providers failed the check", failed, len(rep.Providers))
	}
	return nil
}

// checkProviders checks the providers this command's own settings
// configure (providers check --local).
func checkProviders(ctx context.Context, cfg Config, stdout io.Writer, only string) error {
	log := newLogger(Config{LogLevel: "error", LogFormat: "console"}, io.Discard)
	set, err := buildProviders(cfg, noPasswords{}, log)
	if err != nil {
		return err
	}
	defer set.close()
	names := make([]string, 0, len(set.providers))
	for n := range set.providers {
		if only == "" || n == only {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return fmt.Errorf("providers check --local: provider %q is not configured by these settings", only)
	}
	sort.Strings(names)
	failed := 0
	for _, n := range names {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		start := time.Now()
		err := set.providers[n].Check(cctx)
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "provider %-10s FAILED (%s): %v\n", n, events.ClassOf(err), err)
			continue
		}
		fmt.Fprintf(stdout, "provider %-10s ok (%s)\n", n, time.Since(start).Round(time.Millisecond))
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d providers failed the check", failed, len(names))
	}
	return nil
}

// noPasswords is the password source of commands that never sign up.
type noPasswords struct{}

func (noPasswords) ServicePassword(context.Context, events.Operation) (string, error) {
	return "", errors.New("no password source in this command")
}

// cmdDLQ lists, shows, replays and discards dead letters.
func cmdDLQ(ctx context.Context, cfg Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("dlq: want list, show, replay or discard")}
	}
	verb := args[0]
	fs := newFlags("dlq " + verb)
	typ := fs.String("type", "", "only entries of this event type")
	source := fs.String("source", "", "only entries from this WHMCS instance")
	class := fs.String("class", "", "only entries with this error class (transient or permanent)")
	eventID := fs.String("event", "", "only entries of this event id")
	all := fs.Bool("all", false, "act on every entry that matches the filters")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if *class != "" && *class != string(events.Transient) && *class != string(events.Permanent) {
		return usageError{fmt.Errorf("dlq: --class: want transient or permanent, got %q", *class)}
	}
	filter := worker.Filter{Type: events.Type(*typ), Source: *source, Class: events.ErrorClass(*class), EventID: *eventID}
	b, err := cfg.connect(nil, false)
	if err != nil {
		return err
	}
	defer b.close()
	qctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	d, err := worker.OpenDeadLetters(qctx, b.js)
	if err != nil {
		return err
	}
	seqs := func() ([]uint64, error) {
		if *all {
			if len(pos) > 0 {
				return nil, usageError{errors.New("dlq: give sequence numbers or --all, not both")}
			}
			list, err := d.List(qctx, filter)
			out := make([]uint64, 0, len(list))
			for _, e := range list {
				out = append(out, e.Seq)
			}
			return out, err
		}
		if len(pos) == 0 {
			return nil, usageError{fmt.Errorf("dlq %s: give one or more sequence numbers, or --all", verb)}
		}
		out := make([]uint64, 0, len(pos))
		for _, p := range pos {
			n, err := strconv.ParseUint(p, 10, 64)
			if err != nil {
				return nil, usageError{fmt.Errorf("dlq %s: %q is not a sequence number", verb, p)}
			}
			out = append(out, n)
		}
		return out, nil
	}
	switch verb {
	case "list":
		list, err := d.List(qctx, filter)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(list)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tDEAD-LETTERED\tTYPE\tEVENT\tCLASS\tDELIVERIES\tREASON")
		for _, e := range list {
			reason := e.Reason
			if len(reason) > 100 {
				reason = reason[:100] + "…"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Seq, e.DeadLetteredAt.Format(time.RFC3339), e.EventType,
				e.EventID, e.ErrorClass, e.Deliveries, strings.ReplaceAll(reason, "\n", " "))
		}
		tw.Flush()
		fmt.Fprintln(stdout, plural(len(list), "dead letter"))
		return nil
	case "show":
		list, err := seqs()
		if err != nil {
			return err
		}
		for _, s := range list {
			e, err := d.Get(qctx, s)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	case "replay", "discard":
		list, err := seqs()
		if err != nil {
			return err
		}
		failed := 0
		for _, s := range list {
			if verb == "replay" {
				ev, err := d.Replay(qctx, s)
				if err != nil {
					failed++
					fmt.Fprintln(stdout, err) // names the dead letter
					continue
				}
				fmt.Fprintf(stdout, "dead letter %d replayed as event %d (same idempotency key)\n", s, ev)
			} else {
				if err := d.Discard(qctx, s); err != nil {
					failed++
					fmt.Fprintln(stdout, err) // names the dead letter
					continue
				}
				fmt.Fprintf(stdout, "dead letter %d discarded\n", s)
			}
		}
		if failed > 0 {
			return fmt.Errorf("dlq %s: %d of %d failed", verb, failed, len(list))
		}
		return nil
	default:
		return usageError{fmt.Errorf("dlq: unknown subcommand %q (want list, show, replay or discard)", verb)}
	}
}
