package ops_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/hookworker/hookworker/events"
	"github.com/hookworker/hookworker/worker/ops"
)

// screenshotPath is where HOOKWORKER_UPDATE_SCREENSHOT=1 writes the page.
const screenshotPath = "../../deploy/ops-page.png"

// browser starts headless Chromium, closed when the test ends. Without a
// chromium binary the test is skipped, except on CI (CI=true) where that is
// a failure.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is not installed: %v (apt-get install chromium)", err)
		}
		t.Skipf("chromium is not installed: %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1360, 900), chromedp.Flag("lang", "en-US"))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; it must not have a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestBrowserLoginInspectAndReplay drives the page in headless Chromium:
// sign in with the token, read the queue, open a dead letter, replay it,
// see the flash message and the count drop, and the result arrive.
func TestBrowserLoginInspectAndReplay(t *testing.T) {
	started := time.Now()
	bctx := browser(t)
	e := newEnv(t, ops.Config{Token: testToken})

	// Realistic data: a dead letter a replay will fix (the provider refused
	// it once), three orders provisioned, one that failed once and then
	// worked, and one that can never work.
	replayable := e.failedReplayable(200, 2000)
	for i := range 3 {
		e.order(201+i, 2010+i, 1)
	}
	e.order(204, 2040, 3)
	e.results.WaitFor(t, events.ProvisioningSucceeded, 4, 15*time.Second)
	e.order(205, 2050, 2)
	dls := e.waitDeadLetters(2)
	var seq string
	for _, d := range dls {
		if d.EventID == replayable {
			seq = strconv.FormatUint(d.Seq, 10)
		}
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	// Sign in.
	do(t, ctx, "open the page", chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token")))
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.ID("token"), testToken),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.ID("queue")))

	// The queue numbers and the dead letters.
	if got := text(t, ctx, "#stat-dead-letters .value"); got != "2" {
		t.Errorf("dead letters shown: %q, want 2", got)
	}
	if got := text(t, ctx, "#stat-pending .value"); got != "0" {
		t.Errorf("pending shown: %q, want 0", got)
	}
	if got := text(t, ctx, "#stat-events .value"); !strings.HasPrefix(got, "6") {
		t.Errorf("events stream shown: %q, want 6 msgs", got)
	}
	if got := text(t, ctx, "#dlq-table"); !strings.Contains(got, replayable) {
		t.Errorf("dead-letter table lacks %s: %s", replayable, got)
	}
	if got := text(t, ctx, "#failures"); !strings.Contains(got, "simulated outage") || !strings.Contains(got, "quota exceeded") {
		t.Errorf("recent failures: %s", got)
	}

	// The screenshot of the overview with this data.
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if _, err := png.Decode(bytes.NewReader(shot)); err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if os.Getenv("HOOKWORKER_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.FromSlash(screenshotPath), shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", screenshotPath, len(shot))
	}

	// Open the entry and replay it.
	do(t, ctx, "open the dead letter",
		chromedp.Click(chromedp.CSS(`#dlq-table a[href="/dlq/`+seq+`"]`)),
		chromedp.WaitVisible(chromedp.ID("replay")))
	if got := text(t, ctx, "#event-id"); got != replayable {
		t.Errorf("detail shows event %q, want %q", got, replayable)
	}
	if got := text(t, ctx, "#attempts"); !strings.Contains(got, "quota exceeded") || !strings.Contains(got, `"status":403`) {
		t.Errorf("attempts: %s", got)
	}
	if got := text(t, ctx, "#original-event"); !strings.Contains(got, `"order_id": 200`) {
		t.Errorf("original event: %s", got)
	}
	do(t, ctx, "replay", chromedp.Click(chromedp.ID("replay")), chromedp.WaitVisible(chromedp.ID("flash")))
	if got := text(t, ctx, "#flash"); !strings.Contains(got, "Replayed dead letter #"+seq) || !strings.Contains(got, "idempotency key") {
		t.Errorf("flash: %q", got)
	}
	if got := text(t, ctx, "#stat-dead-letters .value"); got != "1" {
		t.Errorf("dead letters after replay: %q, want 1", got)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil || loc != e.srv.URL+"/" {
		t.Errorf("location after replay %q (%v)", loc, err)
	}

	// The replayed event is provisioned and its result published.
	workerResult := e.results.WaitFor(t, events.ProvisioningSucceeded, 5, 15*time.Second)
	found := false
	for _, r := range workerResult {
		found = found || r.Data.SourceEventID == replayable
	}
	if !found {
		t.Errorf("no succeeded result for the replayed event %s", replayable)
	}
	t.Logf("browser test took %s", time.Since(started).Round(time.Millisecond))
}
