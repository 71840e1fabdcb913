package task

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// Failed and cancelled tasks are listed (the dead letters), can be run
// again (Retry: a new attempt, journaled) or forgotten (Delete: the ID is
// free again); neither works on a task that is not final.
func TestFailedRetryDelete(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, key := filepath.Join(dir, "dead.db"), filepath.Join(dir, "key")
	j := openJournal(t, path)
	m := startManager(t, WithJournal(j), agent.WithIdentityFile(key))
	var fail atomic.Bool
	fail.Store(true)
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("job", func(context.Context, *Job) ([]byte, error) {
			if fail.Load() {
				return nil, ErrSkipRetry
			}
			return []byte("ok"), nil
		})
	})
	ctx := testutil.Context(t)
	if r := runTask(t, m, messages.Task{ID: "f", Type: "job", Description: "fails"}); r.Success {
		t.Fatal(r)
	}
	if err := m.Submit(ctx, messages.Task{ID: "waits", Type: "nobody", Description: "not final"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Retry(ctx, "waits"); !errors.Is(err, ErrNotFinal) {
		t.Fatalf("retry of a pending task: %v", err)
	}
	if err := m.Delete(ctx, "waits"); !errors.Is(err, ErrNotFinal) {
		t.Fatalf("delete of a pending task: %v", err)
	}
	dead, err := m.Failed(ctx)
	if err != nil || len(dead) != 1 || dead[0].Task.ID != "f" || dead[0].Status != StatusFailed {
		t.Fatalf("failed: %+v %v", dead, err)
	}
	fail.Store(false)
	if err := m.Retry(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	r, err := m.Wait(ctx, "f")
	if err != nil || !r.Success || string(r.Output) != "ok" {
		t.Fatalf("after retry: %+v %v", r, err)
	}
	info, _ := m.Task(ctx, "f")
	if len(info.Attempts) != 2 {
		t.Fatalf("attempt history: %+v", info.Attempts)
	}
	if err := m.Delete(ctx, "f"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Task(ctx, "f"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("deleted: %v", err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	m2 := startManager(t, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key))
	if _, err := m2.Task(ctx, "f"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("deleted, after a restart: %v", err)
	}
	if err := m2.Submit(ctx, messages.Task{ID: "f", Type: "job", Description: "the ID is free"}); err != nil {
		t.Fatal(err)
	}
}
