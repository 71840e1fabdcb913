package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// The operator's API does the same in process (Manager) and from another
// agent of the workspace (Client): listing with filters and pages, a
// task's detail, retry, cancel, delete, pause, workers that left, the
// event feed and the series.
func TestOperator(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"manager", "client"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			testOperator(t, via)
		})
	}
}

func testOperator(t *testing.T, via string) {
	m := startManager(t)
	release := make(chan struct{})
	defer close(release)
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("ok", func(_ context.Context, j *Job) ([]byte, error) { return j.Task.Input, nil })
		w.Handle("fail", func(context.Context, *Job) ([]byte, error) { return nil, errors.New("disk on fire") })
		w.Handle("block", func(ctx context.Context, _ *Job) ([]byte, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return nil, nil
			}
		})
	})
	var op Operator = m.Manager
	if via == "client" {
		op = startClient(t, m)
	}
	ctx := testutil.Context(t)
	run := func(task messages.Task) {
		t.Helper()
		if _, err := m.Run(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		run(messages.Task{ID: fmt.Sprint("ok", i), Type: "ok", Input: []byte("in")})
	}
	for i := range 2 {
		run(messages.Task{ID: fmt.Sprint("fail", i), Type: "fail", MaxRetries: messages.NoRetry})
	}

	// Filters and pages, newest first.
	failed, err := op.ListTasks(ctx, TaskFilter{Status: "failed"})
	if err != nil || failed.Total != 2 || len(failed.Tasks) != 2 || failed.Tasks[0].ID != "fail1" ||
		!strings.Contains(failed.Tasks[0].Error, "disk on fire") || failed.Next != "" {
		t.Fatalf("failed tasks: %+v %v", failed, err)
	}
	var ids []string
	f := TaskFilter{Type: "ok", Limit: 2}
	for pages := 0; ; pages++ {
		p, err := op.ListTasks(ctx, f)
		if err != nil || p.Total != 5 || pages > 3 {
			t.Fatalf("page %d: %+v %v", pages, p, err)
		}
		for _, s := range p.Tasks {
			ids = append(ids, s.ID)
			if s.Status != "completed" || s.Worker != "W" || s.Attempt != 1 || s.StartedAt.IsZero() || s.TotalMS < s.RunMS {
				t.Fatalf("summary %+v", s)
			}
		}
		if f.Cursor = p.Next; f.Cursor == "" {
			break
		}
	}
	if want := []string{"ok4", "ok3", "ok2", "ok1", "ok0"}; !slices.Equal(ids, want) {
		t.Fatalf("pages gave %v, want %v", ids, want)
	}
	if p, err := op.ListTasks(ctx, TaskFilter{Worker: "W", ID: "fail"}); err != nil || p.Total != 2 {
		t.Fatalf("by worker and ID: %+v %v", p, err)
	}
	if p, err := op.ListTasks(ctx, TaskFilter{Since: time.Now().Add(time.Hour)}); err != nil || p.Total != 0 {
		t.Fatalf("since an hour from now: %+v %v", p, err)
	}
	for _, bad := range []TaskFilter{{Status: "bogus"}, {Cursor: "x"}, {Limit: -1}} {
		if _, err := op.ListTasks(ctx, bad); !errors.Is(err, ErrBadFilter) {
			t.Fatalf("filter %+v: %v, want ErrBadFilter", bad, err)
		}
	}

	// Detail, retry (a new attempt, the history kept), refusals.
	d, err := op.TaskDetail(ctx, "fail0")
	if err != nil || len(d.Attempts) != 1 || d.Attempts[0].Worker != "W" || !strings.Contains(d.Attempts[0].Outcome, "disk on fire") ||
		d.Status != "failed" {
		t.Fatalf("detail: %+v %v", d, err)
	}
	if err := op.Retry(ctx, "fail0"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wait(ctx, "fail0"); err != nil {
		t.Fatal(err)
	}
	if d, err := op.TaskDetail(ctx, "fail0"); err != nil || len(d.Attempts) != 2 || d.Status != "failed" {
		t.Fatalf("after a retry: %+v %v", d, err)
	}
	if err := op.Retry(ctx, "ok0"); !errors.Is(err, ErrNotFinal) {
		t.Fatalf("retry of a success: %v, want ErrNotFinal", err)
	}
	if err := op.Retry(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("retry of nothing: %v, want ErrUnknownTask", err)
	}
	if _, err := op.TaskDetail(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("detail of nothing: %v, want ErrUnknownTask", err)
	}

	// Cancel a waiting task (the worker's one slot is busy).
	if err := m.Submit(ctx, messages.Task{ID: "busy", Type: "block"}); err != nil {
		t.Fatal(err)
	}
	m.awaitEvent(t, "busy running", func(ev Event) bool { return ev.TaskID == "busy" && ev.Type == EventAcked })
	if err := m.Submit(ctx, messages.Task{ID: "queued", Type: "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := op.Cancel(ctx, "queued"); err != nil {
		t.Fatal(err)
	}
	if d, err := op.TaskDetail(ctx, "queued"); err != nil || d.Status != "cancelled" || len(d.Attempts) != 0 {
		t.Fatalf("cancelled: %+v %v", d, err)
	}

	// Pause keeps a type's tasks waiting; Resume lets them go.
	if err := op.Pause(ctx, "ok"); err != nil {
		t.Fatal(err)
	}
	if st, err := op.Stats(ctx); err != nil || !slices.Equal(st.Paused, []string{"ok"}) {
		t.Fatalf("paused: %+v %v", st.Paused, err)
	}
	if err := op.Resume(ctx, "ok"); err != nil {
		t.Fatal(err)
	}

	// Delete.
	if err := op.Delete(ctx, "ok0"); err != nil {
		t.Fatal(err)
	}
	if _, err := op.TaskDetail(ctx, "ok0"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("deleted: %v", err)
	}
	if err := op.Delete(ctx, "busy"); !errors.Is(err, ErrNotFinal) {
		t.Fatalf("delete of a running task: %v, want ErrNotFinal", err)
	}

	// The feed: what happened, then a wait for what comes.
	page, err := op.Events(ctx, EventQuery{})
	if err != nil || len(page.Events) == 0 || page.Events[0].Seq != 1 || page.Next != page.Events[len(page.Events)-1].Seq {
		t.Fatalf("events: %+v %v", page, err)
	}
	if p, err := op.Events(ctx, EventQuery{TaskID: "fail1"}); err != nil ||
		!slices.ContainsFunc(p.Events, func(e EventRecord) bool { return e.Type == "failed" && strings.Contains(e.Error, "disk on fire") }) {
		t.Fatalf("events of fail1: %+v %v", p, err)
	}
	got := make(chan EventPage, 1)
	go func() {
		p, err := op.Events(ctx, EventQuery{After: page.Next, Wait: 20 * time.Second})
		if err != nil {
			t.Error(err)
		}
		got <- p
	}()
	testutil.Eventually(t, "the events request waiting", func() bool {
		waiting, err := agent.Call(ctx, m.agent, func() (bool, error) { return len(m.feed.parked) > 0 || m.feed.wake != nil, nil })
		return err == nil && waiting
	})
	if err := m.Submit(ctx, messages.Task{ID: "later", Type: "ok"}); err != nil {
		t.Fatal(err)
	}
	if p := <-got; len(p.Events) == 0 || p.Events[0].TaskID != "later" || p.Events[0].Seq != page.Next+1 {
		t.Fatalf("the awaited events: %+v", p)
	}
	if p, err := op.Events(ctx, EventQuery{Limit: -1}); !errors.Is(err, ErrBadFilter) {
		t.Fatalf("bad query: %+v %v", p, err)
	}

	// A worker that left stays in the list, with its last attempts.
	v := startWorker(t, m, "V", func(w *Worker) { w.Handle("v", noop) })
	run(messages.Task{ID: "v1", Type: "v"})
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "V shown as gone", func() bool {
		ws, err := op.Workers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ws, func(w WorkerView) bool { return w.Name == "V" })
		if i < 0 || ws[i].Connected || ws[i].LeftAt.IsZero() {
			return false
		}
		if len(ws[i].Recent) != 1 || ws[i].Recent[0].TaskID != "v1" || ws[i].Recent[0].Outcome != "ok" || ws[i].Results != 1 {
			t.Fatalf("V: %+v", ws[i])
		}
		if ws[0].Name != "W" || !ws[0].Connected || ws[0].PeerID == "" || !slices.Equal(ws[0].Types, []string{"block", "fail", "ok"}) {
			t.Fatalf("W: %+v", ws[0])
		}
		return true
	})

	// The series: one sample a second.
	testutil.Eventually(t, "a sample with the tasks", func() bool {
		s, err := op.Series(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return len(s) > 0 && s[len(s)-1].Submitted >= 10 && s[len(s)-1].Workers >= 1
	})
	if s, err := op.Series(ctx, time.Now().Add(time.Hour)); err != nil || len(s) != 0 {
		t.Fatalf("series from an hour on: %+v %v", s, err)
	}
}

// Task types and worker names come from peers: past maxLabelValues of
// each, the metrics' series share the "other" label instead of growing.
func TestMetricLabelsBounded(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	ctx := testutil.Context(t)
	_, err := agent.Call(ctx, m.agent, func() (struct{}, error) {
		for i := range 3 * maxLabelValues {
			m.metrics.ofType(fmt.Sprint("type-", i)).completed.Inc()
			m.metrics.ofWorker(fmt.Sprint("worker-", i)).failed.Inc()
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	families, err := m.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		switch f.GetName() {
		case "ceylon_tasks_finished_total", "ceylon_worker_results_total":
			// (completed, failed, cancelled) or (completed, failed) per label value
			if n := len(f.GetMetric()); n > 3*(maxLabelValues+1) {
				t.Fatalf("%s: %d series", f.GetName(), n)
			}
			other := false
			for _, mt := range f.GetMetric() {
				for _, l := range mt.GetLabel() {
					other = other || l.GetValue() == otherLabel
				}
			}
			if !other {
				t.Fatalf("%s: no %q series", f.GetName(), otherLabel)
			}
		}
	}
}
