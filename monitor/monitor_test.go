package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/task"
	"github.com/chromedp/chromedp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeBrowser()
	os.Exit(testutil.CheckLeaks(code))
}

var loopback = agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")

// workload starts a manager, two workers, a monitor, and a goroutine that
// keeps submitting 2 ms tasks until the test ends.
func workload(t *testing.T) (*task.Manager, *monitor.Server, []*task.Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ws := agent.WithWorkspace("monitor-" + t.Name())
	admin, err := agent.New("task_manager", agent.AsAdmin(), loopback, ws)
	if err != nil {
		t.Fatal(err)
	}
	m, err := task.NewManager(admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var workers []*task.Worker
	for _, name := range []string{"alpha", "beta"} {
		a, err := agent.New(name, loopback, ws, agent.WithJoin(m.Addrs()[0]))
		if err != nil {
			t.Fatal(err)
		}
		w, err := task.NewWorker(a, task.WithSkill(5), task.WithCapabilities("gpu"), task.WithMaxConcurrency(2))
		if err != nil {
			t.Fatal(err)
		}
		w.Handle("job", func(ctx context.Context, j *task.Job) ([]byte, error) {
			time.Sleep(2 * time.Millisecond)
			return nil, nil
		})
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, w)
	}
	if err := m.WaitForWorkers(ctx, 2); err != nil {
		t.Fatal(err)
	}
	srv, err := monitor.Start("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_, _ = m.Run(ctx, messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "work"})
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = srv.Close()
		for _, w := range workers {
			_ = w.Stop()
		}
		_ = m.Stop()
	})
	return m, srv, workers
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

func TestStatsAndMetrics(t *testing.T) {
	t.Parallel()
	_, srv, _ := workload(t)
	var s task.Stats
	deadline := time.Now().Add(10 * time.Second)
	for s.Succeeded < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("no progress: %+v", s)
		}
		if err := json.Unmarshal([]byte(get(t, "http://"+srv.Addr()+"/stats")), &s); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(s.Workers) != 2 || s.Workers[0].Name != "alpha" || !s.Workers[0].Connected || s.Workers[0].Capacity != 2 ||
		s.Workers[0].Skill != 5 || s.Workers[0].Capabilities[0] != "gpu" || len(s.Recent) == 0 {
		t.Fatalf("stats: %+v", s)
	}
	metrics := get(t, "http://"+srv.Addr()+"/metrics")
	for _, want := range []string{
		"ceylon_tasks_submitted_total", `ceylon_tasks_finished_total{status="completed",type="job"}`, "ceylon_queue_depth",
		`ceylon_worker_in_flight{worker="alpha"}`, `ceylon_task_execution_seconds_bucket{type="job",le=`, `ceylon_worker_results_total{status="completed",worker="alpha"}`, "ceylon_tasks_in_flight",
		"ceylon_task_assignment_seconds_bucket", "ceylon_task_completion_seconds_count", "ceylon_messages_received_total",
		`ceylon_messages_dropped_total{reason="undecodable"}`, "ceylon_peer_bans_total",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if page := get(t, srv.URL()); !strings.Contains(page, `<tbody id="workers">`) {
		t.Fatalf("dashboard page:\n%s", page)
	}
}

// The dashboard, opened in headless Chromium while tasks run, lists the
// running workers and shows the completed count rising, from one load of
// the page to the next.
func TestDashboardInChromium(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	_, srv, _ := workload(t)
	look := func(above int) int {
		t.Helper()
		err := chromedp.Do(ctx,
			chromedp.Navigate(srv.URL()),
			chromedp.WaitVisible(`tr[data-worker="alpha"]`),
			chromedp.WaitVisible(`tr[data-worker="beta"]`),
		)
		var n int
		if err == nil {
			n, err = chromedp.Run(ctx, chromedp.Poll[int](fmt.Sprintf(
				`(n => n > %d ? n : 0)(parseInt(document.getElementById("completed").textContent))`, above)))
		}
		if err != nil {
			body, _ := chromedp.Run(ctx, chromedp.OuterHTML("body"))
			t.Fatalf("the page, looking for more than %d completed: %v\n%s", above, err, body)
		}
		return n
	}
	n1 := look(0)
	n2 := look(n1) // a second load of the page
	t.Logf("completed %d, then %d", n1, n2)
}

func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return ""
}

// A replicated manager's /stats says where it stands in its group (the
// dashboard shows it in its title).
func TestStatsOfAReplicatedManager(t *testing.T) {
	ctx := testutil.Context(t)
	dir := t.TempDir()
	a, err := agent.New("m", agent.AsAdmin(), agent.WithWorkspace("ws-"+t.Name()), agent.WithSecret("s"),
		agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := task.OpenJournal(filepath.Join(dir, "j.db"), "ws-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	leading := make(chan struct{}, 1)
	m, err := task.NewManager(a, task.WithJournal(j), task.WithReplication(filepath.Join(dir, "raft"), task.ReplicaBootstrap()),
		task.WithLeadership(func(on bool, _ uint64) {
			if on {
				leading <- struct{}{}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	<-leading
	srv, err := monitor.Start("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	var s struct {
		Replica *struct {
			State  string `json:"state"`
			Term   uint64 `json:"term"`
			Leader string `json:"leader"`
		} `json:"replica"`
	}
	if err := json.Unmarshal([]byte(get(t, "http://"+srv.Addr()+"/stats")), &s); err != nil {
		t.Fatal(err)
	}
	if s.Replica == nil || s.Replica.State != "Leader" || s.Replica.Term == 0 || s.Replica.Leader != a.ID() {
		t.Fatalf("/stats replica: %+v", s.Replica)
	}
}
