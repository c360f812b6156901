package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker"
)

// state is everything the ledger is computed from: what chaos published,
// what the streams hold, and what the fakes hold.
type state struct {
	events  []*event
	stored  []storedMsg
	results []resultMsg
	dead    []events.DeadLetter
	// pending and ackPending are the consumer's counts at the end; every
	// message up to ackFloor is acknowledged (or terminated).
	pending, ackPending, ackFloor uint64
	effects                       []providerEffects
}

type storedMsg struct {
	seq     uint64
	msgID   string
	subject string
}

type resultMsg struct {
	id   string // the result envelope's id
	typ  events.Type
	data events.ResultData
}

// providerEffects is one fake's view: how many accounts or orders it ever
// created, and what it holds now.
type providerEffects struct {
	provider string
	created  int
	held     []heldEffect
}

// heldEffect is one account or order at a fake. name is what chaos can
// predict from the event (the account name, or the order's domain); ref is
// what a result's reference names.
type heldEffect struct {
	name     string
	ref      string
	renewals int
}

func (c *chaos) collect(ctx context.Context) (state, error) {
	var st state
	c.mu.Lock()
	st.events = append(st.events, c.events...)
	c.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.nats.ensureUp(); err != nil {
		return st, err
	}
	err := readStream(cctx, c.js, worker.EventsStream, func(m *jetstream.RawStreamMsg) {
		st.stored = append(st.stored, storedMsg{seq: m.Sequence, msgID: m.Header.Get(jetstream.MsgIDHeader), subject: m.Subject})
	})
	if err != nil {
		return st, err
	}
	err = readStream(cctx, c.js, worker.ResultsStream, func(m *jetstream.RawStreamMsg) {
		var env events.Envelope
		if json.Unmarshal(m.Data, &env) != nil {
			return
		}
		r := resultMsg{id: env.ID, typ: env.Type}
		_ = json.Unmarshal(env.Data, &r.data)
		st.results = append(st.results, r)
	})
	if err != nil {
		return st, err
	}
	err = readStream(cctx, c.js, worker.DeadLetterStream, func(m *jetstream.RawStreamMsg) {
		var d events.DeadLetter
		if json.Unmarshal(m.Data, &d) == nil {
			st.dead = append(st.dead, d)
		}
	})
	if err != nil {
		return st, err
	}
	q, err := c.queueState(cctx)
	if err != nil {
		return st, err
	}
	st.pending, st.ackPending, st.ackFloor = q.pending, q.ackPending, q.ackFloor
	st.effects = c.fakes.effects()
	return st, nil
}

// ensureUp starts nats-server if a failed restart left it down.
func (n *natsProc) ensureUp() error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
		return n.start()
	default:
		return nil
	}
}

// readStream calls f for every message of the stream, oldest first.
func readStream(ctx context.Context, js jetstream.JetStream, name string, f func(*jetstream.RawStreamMsg)) error {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("stream %s message %d: %w", name, seq, err)
		}
		f(m)
	}
	return nil
}

// effects reads what each fake holds now.
func (f *fakes) effects() []providerEffects {
	comet := providerEffects{provider: "comet", created: f.comet.Created()}
	for _, u := range f.comet.Users() {
		comet.held = append(comet.held, heldEffect{name: u, ref: u})
	}
	cg := providerEffects{provider: "codeguard", created: f.codeguard.Created()}
	for _, o := range f.codeguard.Orders() {
		cg.held = append(cg.held, heldEffect{name: o.Domain, ref: strconv.FormatInt(o.ID, 10), renewals: o.Renewals})
	}
	sg := providerEffects{provider: "storegrid", created: f.storegrid.Created()}
	for _, a := range f.storegrid.Accounts() {
		if a.Name == storegridReseller {
			continue // seeded, as an administrator would
		}
		sg.held = append(sg.held, heldEffect{name: a.Name, ref: a.Name})
	}
	return []providerEffects{comet, cg, sg}
}

// logFinding is a log line pattern worth a look, and how often it came.
type logFinding struct {
	what  string
	count int
	first string
}

// logPatterns are messages that mean something went wrong in a worker.
var logPatterns = []struct{ what, substr string }{
	{"NATS connection closed for good (maximum control line)", "maximum control line"},
	{"event left in the stream without a dead letter", "could not dead-letter"},
	{"dead letter could not be stored", "could not store the dead letter"},
	{"result could not be published", "could not publish result"},
	{"panic", "panic:"},
	{"data race", "DATA RACE"},
}

// scanLogs counts notable lines in the worker logs, and any secret.
func scanLogs(paths []string, secrets []string) []logFinding {
	found := map[string]*logFinding{}
	sort.Strings(paths)
	for _, p := range paths {
		fh, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			for _, lp := range logPatterns {
				if strings.Contains(line, lp.substr) {
					add(found, lp.what, filepath.Base(p)+": "+line)
				}
			}
			for _, s := range secrets {
				if len(s) >= 8 && strings.Contains(line, s) {
					add(found, "SECRET in a worker log", filepath.Base(p)+": (line withheld: it holds a secret)")
				}
			}
		}
		fh.Close()
	}
	var out []logFinding
	for _, f := range found {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].what < out[j].what })
	return out
}

func add(m map[string]*logFinding, what, line string) {
	f := m[what]
	if f == nil {
		if len(line) > 300 {
			line = line[:300] + "…"
		}
		f = &logFinding{what: what, first: line}
		m[what] = f
	}
	f.count++
}
