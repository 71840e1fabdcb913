package playground

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
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
