package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/messages"
)

// testManager is a started TaskManager that records its events.
type testManager struct {
	*TaskManager
	events *cond
	log    []TaskEvent
}

func startManager(t *testing.T, opts ...ManagerOption) *testManager {
	t.Helper()
	tm := &testManager{events: newCond()}
	opts = append([]ManagerOption{
		WithManagerAgent(loopback, WithWorkspace("ws-"+t.Name())),
		WithObserver(func(ev TaskEvent) { tm.events.update(func() { tm.log = append(tm.log, ev) }) }),
	}, opts...)
	m, err := NewTaskManager(opts...)
	if err != nil {
		t.Fatal(err)
	}
	tm.TaskManager = m
	if err := m.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	return tm
}

// awaitEvent waits until an event matching ok has been observed.
func (tm *testManager) awaitEvent(t *testing.T, what string, ok func(TaskEvent) bool) {
	t.Helper()
	tm.events.await(t, what, 10*time.Second, func() bool {
		for _, ev := range tm.log {
			if ok(ev) {
				return true
			}
		}
		return false
	})
}

// eventually polls cond for state that no event announces (such as a late
// result freeing a slot).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startWorker starts a worker joined to m; setup registers its processors.
// It waits until the manager has registered it.
func startWorker(t *testing.T, m *testManager, name string, setup func(*WorkerAgent), opts ...WorkerOption) *WorkerAgent {
	t.Helper()
	opts = append([]WorkerOption{WithWorkerAgent(loopback, WithWorkspace("ws-"+t.Name()), WithJoin(m.Addrs()[0]))}, opts...)
	w, err := NewWorker(name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(w)
	}
	before := workerNames(t, m)
	if err := w.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	if err := m.WaitForWorkers(testCtx(t), len(before)+1); err != nil {
		t.Fatal(err)
	}
	return w
}

func workerNames(t *testing.T, m *testManager) []string {
	r, err := m.Report(testCtx(t))
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
	r, err := m.Report(testCtx(t))
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

// skillTask is the seeds' task: difficulty 1-10, processed by "skill".
func skillTask(id string, difficulty int) messages.Task {
	return messages.Task{ID: id, Name: "Task " + id, Description: fmt.Sprintf("difficulty %d", difficulty), Difficulty: difficulty, Type: "skill"}
}

// skillProcessor is the seeds' simulated work: it takes time proportional
// to the difficulty and fails when the task is harder than the worker.
func skillProcessor(unit time.Duration) TaskFunc {
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
	r, err := m.Run(testCtx(t), task)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func noop(context.Context, *Job) ([]byte, error) { return nil, nil }
