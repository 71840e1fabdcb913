package monitor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/chromedp/chromedp"
)

// chromiumShared is the one headless Chromium the package's tests open
// their tabs in: a cold start takes seconds on a busy 2-core machine, and
// a tab a fraction of one. TestMain closes it.
var chromiumShared struct {
	once  sync.Once
	ctx   context.Context // the browser's first tab: tests open theirs beside it
	err   error
	close func()
}

// sharedBrowser starts the shared Chromium the first time it is called.
func sharedBrowser(chromium string) (context.Context, error) {
	b := &chromiumShared
	b.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
			chromedp.WindowSize(1400, 1300), chromedp.Flag("disable-quic", true))
		actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(actx)
		b.ctx, b.close = ctx, func() { cancel(); cancelAlloc() }
		started := make(chan error, 1)
		go func() { started <- chromedp.Do(ctx) }()
		select {
		case b.err = <-started:
		case <-time.After(2 * time.Minute):
			b.err = errors.New("chromium did not start in 2 minutes")
		}
	})
	return b.ctx, b.err
}

// closeBrowser ends the shared Chromium, if a test started it.
func closeBrowser() {
	if b := &chromiumShared; b.close != nil {
		b.close()
	}
}

// browser opens a tab of the shared headless Chromium for one test
// (skipping without Chromium) and returns a context to drive it with
// chromedp, bounded at two minutes. The test's end closes the tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	chromium := findChromium()
	if chromium == "" {
		t.Skip("skipping: no chromium on PATH (make test installs Debian's chromium when it can)")
	}
	bctx, err := sharedBrowser(chromium)
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	tab, closeTab := chromedp.NewContext(bctx)
	t.Cleanup(closeTab)
	if err := chromedp.Do(tab, chromedp.EmulateViewport(1400, 1300)); err != nil { // opens the tab
		t.Fatalf("chromium tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// screenshot saves the page as name.png among the test's artifacts (kept
// with `go test -artifacts`), for a person to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// A person on call clicks a waiting task, then cancel; the API then says
// it is cancelled. The monitor has a token, which the page takes from the
// URL's fragment.
func TestDashboardCancelClick(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	m := opsWorkspace(t)
	tctx := testutil.Context(t)
	if err := m.Submit(tctx, messages.Task{ID: "hold", Type: "block"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Submit(tctx, messages.Task{ID: "waiting", Type: "ok"}); err != nil {
		t.Fatal(err)
	}
	srv, err := monitor.Start("127.0.0.1:0", m, monitor.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	row := `tr[data-task="waiting"]`
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL()+"#token=tok"),
		chromedp.WaitVisible(row),
		chromedp.Click(row),
		chromedp.WaitVisible(`#detail[data-status="pending"]`),
		chromedp.WaitEnabled(`#act-cancel`),
		chromedp.Click(`#act-cancel`),
		chromedp.WaitVisible(`#act-result[data-done="cancelled"]`),
		chromedp.WaitVisible(`#detail[data-status="cancelled"]`),
	); err != nil {
		t.Fatal(err)
	}
	screenshot(t, ctx, "dashboard-cancelled")
	d, err := monitorClient(t, srv, "tok").TaskDetail(tctx, "waiting")
	if err != nil || d.Status != "cancelled" || len(d.Attempts) != 0 {
		t.Fatalf("through the API: %+v %v", d, err)
	}
}

func monitorClient(t *testing.T, srv *monitor.Server, tok string) *monitor.Client {
	t.Helper()
	c, err := monitor.NewClient(srv.Addr(), monitor.WithClientToken(tok))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// While tasks run, the page shows a throughput above zero, charts with
// lines, the workers, the per-type counts and the events; a worker that
// stops stays, greyed, with its results.
func TestDashboardShowsTheWorkload(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	m, srv, workers := workload(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL())); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{`tr[data-worker="alpha"]`, `tr[data-type="job"]`, `#chart-throughput polyline`} {
		start := time.Now()
		wctx, cancel := context.WithTimeout(ctx, 8*time.Second)
		err := chromedp.Do(wctx, chromedp.WaitVisible(sel))
		cancel()
		if err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML("aside"))
			errText, _ := chromedp.Run(ctx, chromedp.Text("#error"))
			t.Fatalf("waiting for %s: %v\n%s\nerror: %s", sel, err, html, errText)
		}
		t.Logf("%s after %v", sel, time.Since(start))
	}
	// (The event list churns, hundreds of rows a second: a query, not a
	// wait on one node, which may be gone by the time it is looked at.)
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#events li.completed") !== null`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`parseFloat(document.getElementById("rate").textContent) > 0`)); err != nil {
		t.Fatal(err)
	}
	rate, err := chromedp.Run(ctx, chromedp.Text(`#rate`))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("throughput shown: %s", rate)
	screenshot(t, ctx, "dashboard-workload")

	if err := workers[0].Stop(); err != nil { // alpha, which took the tasks
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(`tr.off[data-worker="alpha"][data-connected="false"]`)); err != nil {
		t.Fatal(err)
	}
	results, err := chromedp.Run(ctx, chromedp.Text(`tr[data-worker="alpha"] td:nth-child(6)`))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := m.Workers(testutil.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.Name == "alpha" {
			n, _ := strconv.Atoi(strings.TrimSpace(results))
			if w.Connected || n == 0 || n > w.Results {
				t.Fatalf("alpha shown with %q results; the manager has %+v", results, w)
			}
		}
	}
	screenshot(t, ctx, "dashboard-worker-gone")
}
