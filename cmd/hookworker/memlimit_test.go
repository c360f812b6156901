package main

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"
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
