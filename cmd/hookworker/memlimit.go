package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
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
		return defaultMemoryLimit(n), fmt.Sprintf("HOOKWORKER_MEMORY_LIMIT=auto (%s + %s per event in hand, PREFETCH=%d)",
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
