package playground

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ceylon-go/ceylon/task"
)

// A playground started again on its journal resumes the graph: finished
// tasks keep their results and do not run again, a task that was running
// runs again, and tasks waiting on it run after it with its output.
func TestJournalResumesTheGraph(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	journal := filepath.Join(dir, "pg.db")
	var mu sync.Mutex
	runs := map[string]int{}
	gate, bStarted := make(chan struct{}), make(chan struct{})
	handler := func(ctx context.Context, r *Request) ([]byte, error) {
		mu.Lock()
		runs[r.Task.ID]++
		first := runs[r.Task.ID] == 1
		mu.Unlock()
		if r.Task.ID == "b" && first { // b is in flight when the first playground stops
			close(bStarted)
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return sum(ctx, r)
	}
	workers := []Worker{{Name: "w", Processor: "sum", Handler: handler, Concurrency: 4}}
	ctx := testCtx(t)

	p1, err := New(WithWorkspace("pg-journal"), WithJournal(journal))
	if err != nil {
		t.Fatal(err)
	}
	if err := p1.Start(ctx, workers...); err != nil {
		t.Fatal(err)
	}
	if _, err := p1.AddTasks(ctx,
		Task{ID: "a", Type: "sum", Input: MustEncode(1)},
		Task{ID: "b", Type: "sum", Input: MustEncode(10), Dependencies: []string{"a"}},
		Task{ID: "c", Type: "sum", Input: MustEncode(100), Dependencies: []string{"b"}},
		Task{ID: "d", Type: "sum", Input: MustEncode(1000)},
	); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "d"} {
		if _, err := p1.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	<-bStarted
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	close(gate)

	p2, err := New(WithWorkspace("pg-journal"), WithJournal(journal))
	if err != nil {
		t.Fatal(err)
	}
	if err := p2.Start(ctx, workers...); err != nil {
		t.Fatal(err)
	}
	defer p2.Stop()
	r, err := p2.Wait(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := intResult(t, r); got != 111 {
		t.Fatalf("c = %d, want 111 (1 + 10 + 100)", got)
	}
	if r, err := p2.Result("a"); err != nil || intResult(t, r) != 1 {
		t.Fatalf("a's journaled result: %+v %v", r, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if runs["a"] != 1 || runs["d"] != 1 || runs["b"] != 2 || runs["c"] != 1 {
		t.Fatalf("runs: %v (a and d must not run again; b ran twice)", runs)
	}
	if pr := p2.Progress(); pr.Total != 4 || pr.Finished != 4 {
		t.Fatalf("progress after resume: %+v", pr)
	}
}

func TestJournalErrorsAtNew(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "broken.db")
	if err := os.WriteFile(path, []byte("this is not a journal"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(WithJournal(path)); !errors.Is(err, task.ErrJournalCorrupt) {
		t.Fatalf("corrupt journal: %v", err)
	}
}

// A task cancelled while it waited for its dependency stays cancelled
// after a restart, and does not run: the replay released it when its
// dependency's result came back, before its cancel, and it was handed to
// the manager all the same.
func TestCancelledWaitingTaskDoesNotRunAfterARestart(t *testing.T) {
	t.Parallel()
	journal := filepath.Join(t.TempDir(), "pg.db")
	var bRuns atomic.Int32
	gate := make(chan struct{})
	started := make(chan struct{}, 1)
	h := func(ctx context.Context, r *Request) ([]byte, error) {
		switch r.Task.ID {
		case "a":
			started <- struct{}{}
			<-gate
		case "b":
			bRuns.Add(1)
		}
		return Encode(1)
	}
	// One at a time: after the restart, whatever was handed over runs
	// before a task added then.
	ws := []Worker{{Name: "w", Processor: "x", Handler: h, Concurrency: 1}}
	ctx := testCtx(t)
	start := func() *Playground {
		p, err := New(WithWorkspace("pg-cancel-restart"), WithJournal(journal))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx, ws...); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p1 := start()
	if _, err := p1.AddTasks(ctx, Task{ID: "a", Type: "x"}, Task{ID: "b", Type: "x", Dependencies: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := p1.Cancel(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if _, err := p1.Wait(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := p1.Wait(ctx, "b"); !errors.Is(err, ErrCancelled) {
		t.Fatalf("b: %v, want ErrCancelled", err)
	}
	if err := p1.Stop(); err != nil {
		t.Fatal(err)
	}
	p2 := start()
	defer p2.Stop()
	if _, err := p2.AddTasks(ctx, Task{ID: "after", Type: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Wait(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Wait(ctx, "b"); !errors.Is(err, ErrCancelled) || bRuns.Load() != 0 {
		t.Fatalf("b after the restart: %v, ran %d times; want ErrCancelled, never run", err, bRuns.Load())
	}
}
