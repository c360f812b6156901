package main

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The default soft memory limit of `hookworker run` (HOOKWORKER_MEMORY_LIMIT
// =auto) is memoryLimitBase plus memoryLimitPerSlot for each event the
// worker holds at once (worker.Options.EventsInHand: PREFETCH, 4 x
// CONCURRENCY by default). Measured with scripts/bench (-cases rss, 1,024
// events in flight, 2 shared cores): the Go runtime's own memory
// (/memory/classes/total) is about 12 MiB idle, and each event in work
// holds a goroutine stack of 16 KiB (the hot path's frames were cut so that
// its deepest path, creating the operation record in KV, fits; it needed
// 32 KiB before) plus about 4 KiB of heap.
// Without a limit the runtime keeps the stack and heap memory it freed
// (about 15-30 MiB after a burst at 1,024 in flight) and lets the heap grow
// to twice the live heap plus the stacks; the limit makes it return freed
// pages and collect sooner once it is near. Set below what the work needs,
// a limit costs CPU (garbage collection runs more often), never
// correctness: it is soft, nothing fails when it is exceeded. With the
// embedded NATS server auto sets no limit (see memoryLimit).
const (
	memoryLimitBase    = 28 << 20
	memoryLimitPerSlot = 16 << 10
	minMemoryLimit     = 16 << 20
)

// defaultMemoryLimit is the soft memory limit for a worker holding
// inHand events at once.
func defaultMemoryLimit(inHand int) int64 {
	return memoryLimitBase + int64(inHand)*memoryLimitPerSlot
}

// memoryLimit is the soft memory limit `hookworker run` sets, and what set
// it. An explicit GOMEMLIMIT (gomemlimit non-empty) always wins: the
// runtime has applied it already and limit is -1 (leave it). "off" is no
// limit (math.MaxInt64, the runtime's default); "auto" or empty the
// default for the events in hand (PREFETCH); anything else a size as GOMEMLIMIT takes it
// (64MiB, 1GiB, a number of bytes). The auto limit applies with an
// external NATS server (HOOKWORKER_NATS_URL) only.
func (c Config) memoryLimit(gomemlimit string) (limit int64, setBy string, err error) {
	if gomemlimit != "" {
		return -1, "GOMEMLIMIT", nil
	}
	switch v := strings.TrimSpace(c.MemoryLimit); v {
	case "", "auto":
		if c.NATSURL == "" {
			// The embedded JetStream server's buffers and caches share this
			// process and follow the streams' traffic, not CONCURRENCY (145
			// MiB of heap in use after a burst of 20,000 events): a limit
			// sized for the worker would have the collector run all the time.
			return math.MaxInt64, "HOOKWORKER_MEMORY_LIMIT=auto (none: the embedded NATS server shares the process)", nil
		}
		n := c.EventsInHand()
		return defaultMemoryLimit(n), fmt.Sprintf("HOOKWORKER_MEMORY_LIMIT=auto (%s + %s per event in hand, PREFETCH=%d; raised while the live heap needs more)",
			formatBytes(memoryLimitBase), formatBytes(memoryLimitPerSlot), n), nil
	case "off":
		return math.MaxInt64, "HOOKWORKER_MEMORY_LIMIT=off", nil
	default:
		n, err := parseBytes(v)
		if err != nil {
			return 0, "", fmt.Errorf("HOOKWORKER_MEMORY_LIMIT: %w", err)
		}
		if n < minMemoryLimit {
			return 0, "", fmt.Errorf("HOOKWORKER_MEMORY_LIMIT: %q is below %s, less than the worker needs idle (use off for no limit)", v, formatBytes(minMemoryLimit))
		}
		return n, "HOOKWORKER_MEMORY_LIMIT", nil
	}
}

// followsLiveHeap reports whether the limit in force is the auto limit, the
// one followLiveHeap may raise.
func (c Config) followsLiveHeap(gomemlimit string) bool {
	v := strings.TrimSpace(c.MemoryLimit)
	return gomemlimit == "" && (v == "" || v == "auto") && c.NATSURL != ""
}

// applyMemoryLimit sets the soft memory limit the configuration asks for
// (unless GOMEMLIMIT did) and returns the limit in force and what set it.
func (c Config) applyMemoryLimit(gomemlimit string) (inForce int64, setBy string, err error) {
	limit, setBy, err := c.memoryLimit(gomemlimit)
	if err != nil {
		return 0, "", err
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
	return debug.SetMemoryLimit(-1), setBy, nil
}

// parseBytes reads a size the way GOMEMLIMIT does: a whole number of bytes
// with an optional unit B, KiB, MiB, GiB or TiB.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	num, shift := s, uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, shift = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size: want auto, off, or a whole number of bytes with an optional unit B, KiB, MiB, GiB or TiB (e.g. 64MiB)", s)
	}
	return n << shift, nil
}

// formatBytes writes n in the largest unit that divides it (64MiB, 1536KiB).
func formatBytes(n int64) string {
	if n == math.MaxInt64 {
		return "off"
	}
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n != 0 && n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// An auto limit is a floor, not a ceiling the live heap may press against:
// with the live heap near the limit the collector runs back to back, and the
// runtime lets it take up to half of GOMAXPROCS for as long as that lasts
// (measured with scripts/bench at CONCURRENCY 32 after 45,000 events, whose
// sandbox accounts keep 13.5 MiB live: the worker spent 1,000 µs of CPU per
// event at 1.2k events/s, three quarters of it in the collector, under a
// 30 MiB limit). followLiveHeap raises it to what GOGC would let the heap
// grow to, plus the memory outside the heap, whenever that is more, and
// lowers it back to the floor when the live heap shrinks: the limit still
// returns the memory a burst freed, and never makes the collector run on a
// heap that is all live.

// liveHeapTick is how often followLiveHeap looks at the live heap.
const liveHeapTick = time.Second

// memorySample holds the runtime's figures followLiveHeap works from.
type memorySample struct {
	live    uint64 // /gc/heap/live:bytes: heap reachable at the last collection
	total   uint64 // /memory/classes/total:bytes
	inHeap  uint64 // heap objects, unused, free and released heap memory
	gogcPct uint64 // /gc/gogc:percent (0 when GOGC=off)
}

var memoryMetrics = []string{
	"/gc/heap/live:bytes", "/memory/classes/total:bytes", "/gc/gogc:percent",
	"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes", "/memory/classes/heap/released:bytes",
}

func readMemory(samples []metrics.Sample) memorySample {
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	return memorySample{live: v(0), total: v(1), gogcPct: v(2), inHeap: v(3) + v(4) + v(5) + v(6)}
}

// followingLimit is the limit for floor and m: the heap GOGC allows over the
// live heap, plus the memory outside the heap, plus an eighth for slack;
// floor when that is less.
func followingLimit(floor int64, m memorySample) int64 {
	pct := m.gogcPct
	if pct == 0 {
		pct = 100
	}
	outside := uint64(0)
	if m.total > m.inHeap {
		outside = m.total - m.inHeap
	}
	need := m.live + m.live*pct/100 + outside
	need += need / 8
	switch {
	case need > math.MaxInt64:
		return math.MaxInt64
	case int64(need) <= floor:
		return floor
	}
	return int64(need)
}

// followLiveHeap keeps the soft memory limit at followingLimit(floor, …)
// until ctx ends, logging when it first rises above the floor.
func followLiveHeap(ctx context.Context, floor int64, log *zap.Logger) {
	samples := make([]metrics.Sample, len(memoryMetrics))
	for i, name := range memoryMetrics {
		samples[i].Name = name
	}
	t := time.NewTicker(liveHeapTick)
	defer t.Stop()
	current, logged := floor, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := followingLimit(floor, readMemory(samples))
		if next == current || (next > floor && next > current-current/16 && next < current+current/16) {
			continue // within 1/16: not worth a change
		}
		debug.SetMemoryLimit(next)
		current = next
		if next > floor && !logged {
			logged = true
			log.Info("memory limit raised above the auto limit for the live heap; it returns to the auto limit when the live heap shrinks",
				zap.String("memory_limit", formatBytes(next)), zap.String("auto_limit", formatBytes(floor)))
		}
	}
}
