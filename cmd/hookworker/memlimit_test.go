package main

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestMemoryLimitChoice(t *testing.T) {
	const ext = "nats://nats.example:4222"
	for _, tc := range []struct {
		name       string
		natsURL    string
		setting    string
		gomemlimit string
		conc       int
		want       int64
		setBy      string
	}{
		{"auto at the default concurrency: 32 events in hand", ext, "auto", "", 8, 28<<20 + 32*16<<10, "HOOKWORKER_MEMORY_LIMIT=auto"},
		{"empty is auto", ext, "", "", 1024, 44 << 20, "HOOKWORKER_MEMORY_LIMIT=auto"},
		{"auto with the embedded server: none", "", "auto", "", 1024, math.MaxInt64, "HOOKWORKER_MEMORY_LIMIT=auto (none"},
		{"explicit size", ext, "96MiB", "", 1024, 96 << 20, "HOOKWORKER_MEMORY_LIMIT"},
		{"explicit size with the embedded server", "", "96MiB", "", 8, 96 << 20, "HOOKWORKER_MEMORY_LIMIT"},
		{"bytes", ext, "33554432", "", 8, 32 << 20, "HOOKWORKER_MEMORY_LIMIT"},
		{"off", ext, "off", "", 8, math.MaxInt64, "HOOKWORKER_MEMORY_LIMIT=off"},
		{"GOMEMLIMIT wins over auto", ext, "auto", "1GiB", 8, -1, "GOMEMLIMIT"},
		{"GOMEMLIMIT wins over a size", "", "64MiB", "off", 8, -1, "GOMEMLIMIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{MemoryLimit: tc.setting, NATSURL: tc.natsURL}
			c.Concurrency = tc.conc
			got, setBy, err := c.memoryLimit(tc.gomemlimit)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || !strings.HasPrefix(setBy, tc.setBy) {
				t.Fatalf("memoryLimit = %d (%s), want %d (%s…)", got, setBy, tc.want, tc.setBy)
			}
		})
	}
}

func TestMemoryLimitRejectsBadSizesNamingTheVariable(t *testing.T) {
	for _, v := range []string{"lots", "64MB", "-1", "1.5GiB", "1MiB", "9999999999TiB"} {
		c := Config{MemoryLimit: v}
		c.Concurrency = 8
		if _, _, err := c.memoryLimit(""); err == nil || !strings.Contains(err.Error(), "HOOKWORKER_MEMORY_LIMIT") {
			t.Errorf("%q: error %v, want one naming HOOKWORKER_MEMORY_LIMIT", v, err)
		}
	}
}

func TestParseAndFormatBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int64
		text string
	}{
		{"64MiB", 64 << 20, "64MiB"},
		{"1GiB", 1 << 30, "1GiB"},
		{"1536KiB", 1536 << 10, "1536KiB"},
		{"100B", 100, "100B"},
		{"2 TiB", 2 << 40, "2TiB"},
		{"12345", 12345, "12345B"},
	} {
		n, err := parseBytes(tc.in)
		if err != nil || n != tc.n {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", tc.in, n, err, tc.n)
		}
		if s := formatBytes(n); s != tc.text {
			t.Errorf("formatBytes(%d) = %q, want %q", n, s, tc.text)
		}
	}
	if s := formatBytes(math.MaxInt64); s != "off" {
		t.Errorf("formatBytes(MaxInt64) = %q, want off", s)
	}
}

// applyMemoryLimit sets the runtime's limit, and leaves the one GOMEMLIMIT
// set alone.
func TestApplyMemoryLimitSetsTheRuntimeLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	c := Config{MemoryLimit: "auto", NATSURL: "nats://nats.example:4222"}
	c.Concurrency = 1024
	got, _, err := c.applyMemoryLimit("")
	if err != nil || got != 44<<20 || debug.SetMemoryLimit(-1) != 44<<20 {
		t.Fatalf("auto at 1024: in force %d (runtime %d), err %v; want 44MiB", got, debug.SetMemoryLimit(-1), err)
	}
	debug.SetMemoryLimit(77 << 20) // as if GOMEMLIMIT=77MiB
	got, setBy, err := c.applyMemoryLimit("77MiB")
	if err != nil || got != 77<<20 || setBy != "GOMEMLIMIT" {
		t.Fatalf("with GOMEMLIMIT: in force %d set by %q, err %v; want 77MiB by GOMEMLIMIT", got, setBy, err)
	}
}

func TestFollowingLimitNeverPressesOnTheLiveHeap(t *testing.T) {
	const floor = 30 << 20
	for _, tc := range []struct {
		name string
		m    memorySample
		want int64
	}{
		{"small live heap keeps the auto limit", memorySample{live: 4 << 20, total: 20 << 20, inHeap: 12 << 20, gogcPct: 100}, floor},
		// 2 × 14 MiB + 8 MiB outside the heap = 36 MiB, plus an eighth
		{"live heap near the limit raises it", memorySample{live: 14 << 20, total: 40 << 20, inHeap: 32 << 20, gogcPct: 100}, 36 << 20 * 9 / 8},
		{"GOGC=50 asks for less", memorySample{live: 20 << 20, total: 40 << 20, inHeap: 32 << 20, gogcPct: 50}, (30<<20 + 8<<20) * 9 / 8},
		{"GOGC=off counts as 100", memorySample{live: 14 << 20, total: 40 << 20, inHeap: 32 << 20}, 36 << 20 * 9 / 8},
		{"inconsistent sample keeps the floor", memorySample{total: 1, inHeap: 2}, floor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := followingLimit(floor, tc.m); got != tc.want {
				t.Fatalf("followingLimit = %s, want %s", formatBytes(got), formatBytes(tc.want))
			}
		})
	}
}

// The runtime's own figures: with 64 MiB live under a 16 MiB auto limit the
// limit rises above what GOGC needs, and returns to the floor once the
// heap is garbage again.
func TestFollowLiveHeapRaisesTheLimitAndLowersItBack(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	const floor = 16 << 20
	debug.SetMemoryLimit(floor)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); followLiveHeap(ctx, floor, zap.NewNop()) }()
	t.Cleanup(func() { cancel(); <-done })

	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	waitLimit := func(ok func(int64) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * liveHeapTick)
		for !ok(debug.SetMemoryLimit(-1)) {
			if time.Now().After(deadline) {
				t.Fatalf("memory limit %s: want %s", formatBytes(debug.SetMemoryLimit(-1)), what)
			}
			runtime.GC()
			time.Sleep(liveHeapTick / 10)
		}
	}
	waitLimit(func(l int64) bool { return l >= 128<<20 }, "at least 128MiB (twice the 64 MiB live)")
	clear(live) // garbage now
	waitLimit(func(l int64) bool { return l == floor }, "back at the 16MiB floor")
}
