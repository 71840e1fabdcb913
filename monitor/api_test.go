package monitor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/task"
)

// opsWorkspace starts a manager with one worker of one slot that runs
// "ok", "fail" and "block" (which holds its slot until the test ends).
func opsWorkspace(t *testing.T) *task.Manager {
	t.Helper()
	ctx := testutil.Context(t)
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
	t.Cleanup(func() { _ = m.Stop() })
	a, err := agent.New("W", loopback, ws, agent.WithJoin(m.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	w, err := task.NewWorker(a)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	w.Handle("ok", func(context.Context, *task.Job) ([]byte, error) { return []byte("fine"), nil })
	w.Handle("fail", func(context.Context, *task.Job) ([]byte, error) { return nil, errors.New("disk on fire") })
	w.Handle("block", func(ctx context.Context, _ *task.Job) ([]byte, error) {
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil, nil
	})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(release); _ = w.Stop() })
	if err := m.WaitForWorkers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	return m
}

// The admin API over HTTP, through monitor.Client: the calls of
// task.Operator, with the named errors coming back.
func TestAPI(t *testing.T) {
	t.Parallel()
	m := opsWorkspace(t)
	srv, err := monitor.Start("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	c, err := monitor.NewClient(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t)
	for i := range 3 {
		if _, err := m.Run(ctx, messages.Task{ID: fmt.Sprint("ok", i), Type: "ok", Input: []byte("abc")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Run(ctx, messages.Task{ID: "bad", Type: "fail", MaxRetries: messages.NoRetry}); err != nil {
		t.Fatal(err)
	}
	odd := "report 7/a%b é"
	if _, err := m.Run(ctx, messages.Task{ID: odd, Type: "ok"}); err != nil {
		t.Fatal(err)
	}
	if d, err := c.TaskDetail(ctx, odd); err != nil || d.ID != odd {
		t.Fatalf("an ID with a space, a slash, a percent sign: %+v %v", d, err)
	}
	if err := c.Delete(ctx, odd); err != nil {
		t.Fatal(err)
	}
	p, err := c.ListTasks(ctx, task.TaskFilter{Status: "failed"})
	if err != nil || p.Total != 1 || p.Tasks[0].ID != "bad" || !strings.Contains(p.Tasks[0].Error, "disk on fire") {
		t.Fatalf("failed: %+v %v", p, err)
	}
	p, err = c.ListTasks(ctx, task.TaskFilter{Type: "ok", Limit: 2})
	if err != nil || p.Total != 3 || len(p.Tasks) != 2 || p.Next == "" || p.Tasks[0].ID != "ok2" {
		t.Fatalf("first page: %+v %v", p, err)
	}
	if p, err = c.ListTasks(ctx, task.TaskFilter{Type: "ok", Limit: 2, Cursor: p.Next}); err != nil || len(p.Tasks) != 1 || p.Tasks[0].ID != "ok0" || p.Next != "" {
		t.Fatalf("second page: %+v %v", p, err)
	}
	if _, err := c.ListTasks(ctx, task.TaskFilter{Status: "nope"}); !errors.Is(err, task.ErrBadFilter) {
		t.Fatalf("bad status: %v", err)
	}
	d, err := c.TaskDetail(ctx, "ok1")
	if err != nil || d.InputBytes != 3 || d.OutputBytes != 4 || len(d.Attempts) != 1 || d.Attempts[0].Outcome != "ok" || d.Attempts[0].Worker != "W" {
		t.Fatalf("detail: %+v %v", d, err)
	}
	if _, err := c.TaskDetail(ctx, "nope"); !errors.Is(err, task.ErrUnknownTask) {
		t.Fatalf("unknown: %v", err)
	}
	if err := c.Retry(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wait(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if d, err := c.TaskDetail(ctx, "bad"); err != nil || len(d.Attempts) != 2 {
		t.Fatalf("retried: %+v %v", d, err)
	}
	if err := c.Retry(ctx, "ok0"); !errors.Is(err, task.ErrNotFinal) {
		t.Fatalf("retry of a success: %v", err)
	}
	// Cancel a waiting task: the worker's one slot is held.
	if err := m.Submit(ctx, messages.Task{ID: "hold", Type: "block"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "waiting", Type: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, "waiting"); err != nil {
		t.Fatal(err)
	}
	if info, err := m.Task(ctx, "waiting"); err != nil || info.Status != task.StatusCancelled {
		t.Fatalf("cancelled: %+v %v", info, err)
	}
	if err := c.Delete(ctx, "ok0"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Task(ctx, "ok0"); !errors.Is(err, task.ErrUnknownTask) {
		t.Fatalf("deleted: %v", err)
	}
	if err := c.Pause(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	if ps, err := m.Paused(ctx); err != nil || !slices.Equal(ps, []string{"ok"}) {
		t.Fatalf("paused: %v %v", ps, err)
	}
	if err := c.Resume(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	ws, err := c.Workers(ctx)
	if err != nil || len(ws) != 1 || ws[0].Name != "W" || !ws[0].Connected || len(ws[0].Recent) == 0 || ws[0].AvgTime() <= 0 {
		t.Fatalf("workers: %+v %v", ws, err)
	}
	ev, err := c.Events(ctx, task.EventQuery{TaskID: "bad"})
	if err != nil || !slices.ContainsFunc(ev.Events, func(e task.EventRecord) bool { return e.Type == "failed" }) {
		t.Fatalf("events: %+v %v", ev, err)
	}
	go func() { _ = m.Submit(ctx, messages.Task{ID: "later", Type: "ok"}) }()
	for after := ev.Next; ; {
		p, err := c.Events(ctx, task.EventQuery{After: after, Wait: 10 * time.Second, TaskID: "later"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Events) > 0 {
			break
		}
		after = p.Next
	}
	testutil.Eventually(t, "a sample", func() bool {
		s, err := c.Series(ctx, time.Time{})
		return err == nil && len(s) > 0 && s[len(s)-1].Submitted >= 4
	})
	st, err := c.Stats(ctx)
	if err != nil || st.Submitted < 6 || st.AvgExecution <= 0 {
		t.Fatalf("stats: %+v %v", st, err)
	}
}

// With a token every route but the page needs it; without one the
// monitor stays on loopback and answers loopback host names only; an
// action must be JSON from the monitor's own origin.
func TestAPIGuards(t *testing.T) {
	t.Parallel()
	m := opsWorkspace(t)
	if _, err := monitor.Start("0.0.0.0:0", m); !errors.Is(err, monitor.ErrNeedsToken) {
		t.Fatalf("beyond loopback without a token: %v", err)
	}
	srv, err := monitor.Start("127.0.0.1:0", m, monitor.WithToken("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx := testutil.Context(t)
	for _, tok := range []string{"", "wrong"} {
		c, _ := monitor.NewClient(srv.Addr(), monitor.WithClientToken(tok))
		if _, err := c.Stats(ctx); !errors.Is(err, monitor.ErrUnauthorized) {
			t.Fatalf("token %q: %v, want ErrUnauthorized", tok, err)
		}
		if err := c.Cancel(ctx, "x"); !errors.Is(err, monitor.ErrUnauthorized) {
			t.Fatalf("token %q: cancel: %v, want ErrUnauthorized", tok, err)
		}
	}
	for _, path := range []string{"/stats", "/metrics", "/api/v1/tasks"} {
		if code := status(t, http.MethodGet, "http://"+srv.Addr()+path, nil); code != http.StatusUnauthorized {
			t.Fatalf("%s without a token: %d", path, code)
		}
	}
	if code := status(t, http.MethodGet, srv.URL(), nil); code != http.StatusOK {
		t.Fatalf("the page: %d", code)
	}
	c, _ := monitor.NewClient(srv.URL(), monitor.WithClientToken("s3cret"))
	if _, err := c.Stats(ctx); err != nil {
		t.Fatal(err)
	}

	open, err := monitor.Start("127.0.0.1:0", m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = open.Close() })
	base := "http://" + open.Addr()
	if code := status(t, http.MethodGet, base+"/api/v1/stats", map[string]string{"Host": "evil.example:80"}); code != http.StatusForbidden {
		t.Fatalf("another host name: %d", code)
	}
	json := map[string]string{"Content-Type": "application/json"}
	if code := status(t, http.MethodPost, base+"/api/v1/tasks/x/cancel", nil); code != http.StatusUnsupportedMediaType {
		t.Fatalf("a form-like action: %d", code)
	}
	if code := status(t, http.MethodPost, base+"/api/v1/tasks/x/cancel", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}); code != http.StatusForbidden {
		t.Fatalf("an action from another origin: %d", code)
	}
	if code := status(t, http.MethodPost, base+"/api/v1/tasks/x/cancel", json); code != http.StatusNotFound {
		t.Fatalf("a good action on an unknown task: %d", code)
	}
}

func status(t *testing.T, method, url string, headers map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
