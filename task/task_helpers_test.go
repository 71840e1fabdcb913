package task

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// testManager is a started Manager that records its events.
type testManager struct {
	*Manager
	events *testutil.Cond
	log    []Event
}

var loopback = agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1")

// splitOptions sorts a test's options into the agent's and the role's.
func splitOptions[O any](t *testing.T, opts []any) (aopts []agent.Option, ropts []O) {
	t.Helper()
	for _, o := range opts {
		switch o := o.(type) {
		case agent.Option:
			aopts = append(aopts, o)
		case O:
			ropts = append(ropts, o)
		default:
			t.Fatalf("option of type %T", o)
		}
	}
	return aopts, ropts
}

// startManager starts a manager on a loopback admin agent; opts are
// agent.Options (for its agent) and ManagerOptions.
func startManager(t *testing.T, opts ...any) *testManager {
	t.Helper()
	aopts, mopts := splitOptions[ManagerOption](t, opts)
	tm := &testManager{events: testutil.NewCond()}
	a, err := agent.New("task_manager", append([]agent.Option{loopback, agent.WithWorkspace("ws-" + t.Name()), agent.AsAdmin()}, aopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	mopts = append([]ManagerOption{
		WithObserver(func(ev Event) { tm.events.Update(func() { tm.log = append(tm.log, ev) }) }),
	}, mopts...)
	m, err := NewManager(a, mopts...)
	if err != nil {
		t.Fatal(err)
	}
	tm.Manager = m
	if err := m.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	return tm
}

// awaitEvent waits until an event matching ok has been observed.
func (tm *testManager) awaitEvent(t *testing.T, what string, ok func(Event) bool) {
	t.Helper()
	tm.events.Await(t, what, 10*time.Second, func() bool {
		for _, ev := range tm.log {
			if ok(ev) {
				return true
			}
		}
		return false
	})
}

// newWorker makes a worker on a loopback agent joined to m (not started);
// opts are agent.Options and WorkerOptions.
func newWorker(t *testing.T, m *testManager, name string, opts ...any) *Worker {
	t.Helper()
	aopts, wopts := splitOptions[WorkerOption](t, opts)
	a, err := agent.New(name, append([]agent.Option{loopback, agent.WithWorkspace("ws-" + t.Name()), agent.WithJoin(m.Addrs()[0])}, aopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(a, wopts...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// startWorker starts a worker joined to m; setup registers its processors.
// It waits until the manager has registered it.
func startWorker(t *testing.T, m *testManager, name string, setup func(*Worker), opts ...any) *Worker {
	t.Helper()
	w := newWorker(t, m, name, opts...)
	if setup != nil {
		setup(w)
	}
	before := workerNames(t, m)
	if err := w.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	if err := m.WaitForWorkers(testutil.Context(t), len(before)+1); err != nil {
		t.Fatal(err)
	}
	return w
}

func workerNames(t *testing.T, m *testManager) []string {
	r, err := m.Stats(testutil.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, w := range r.Workers {
		if w.Connected {
			out = append(out, w.Name)
		}
	}
	return out
}

func workerStats(t *testing.T, m *testManager, name string) WorkerStats {
	t.Helper()
	r, err := m.Stats(testutil.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range r.Workers {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no stats for worker %q in %+v", name, r.Workers)
	return WorkerStats{}
}

// skillTask is the skill-routing task: difficulty 1-10, processed by "skill".
func skillTask(id string, difficulty int) messages.Task {
	return messages.Task{ID: id, Name: "Task " + id, Description: fmt.Sprintf("difficulty %d", difficulty), Difficulty: difficulty, Type: "skill"}
}

// skillProcessor is the skill-routing example's simulated work: it takes time proportional
// to the difficulty and fails when the task is harder than the worker.
func skillProcessor(unit time.Duration) HandlerFunc {
	return func(ctx context.Context, job *Job) ([]byte, error) {
		select {
		case <-time.After(time.Duration(job.Task.Difficulty) * unit):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		if job.Skill < job.Task.Difficulty {
			return nil, fmt.Errorf("task too difficult: difficulty %d > skill %d", job.Task.Difficulty, job.Skill)
		}
		return []byte(job.Worker), nil
	}
}

func runTask(t *testing.T, m *testManager, task messages.Task) messages.TaskResult {
	t.Helper()
	r, err := m.Run(testutil.Context(t), task)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func noop(context.Context, *Job) ([]byte, error) { return nil, nil }
