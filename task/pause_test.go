package task

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// A paused type's tasks wait (others run), and run once it is resumed; a
// restarted manager keeps the type paused.
func TestPauseAndResume(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, key := filepath.Join(dir, "pause.db"), filepath.Join(dir, "key")
	j := openJournal(t, path)
	m1 := startManager(t, WithJournal(j), agent.WithIdentityFile(key))
	var jobs atomic.Int32
	startWorker(t, m1, "W", func(w *Worker) {
		w.Handle("job", func(context.Context, *Job) ([]byte, error) { jobs.Add(1); return nil, nil })
		w.Handle("other", noop)
	}, WithMaxConcurrency(4))
	ctx := testutil.Context(t)
	if err := m1.Pause(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := m1.Submit(ctx, messages.Task{ID: fmt.Sprint("j", i), Type: "job", Description: "paused type"}); err != nil {
			t.Fatal(err)
		}
	}
	if r := runTask(t, m1, messages.Task{ID: "o", Type: "other", Description: "runs"}); !r.Success {
		t.Fatal(r)
	}
	if info, err := m1.Task(ctx, "j0"); err != nil || info.Status != StatusPending || jobs.Load() != 0 {
		t.Fatalf("a paused task: %+v %v (%d ran)", info, err, jobs.Load())
	}
	if st, _ := m1.Stats(ctx); !slices.Equal(st.Paused, []string{"job"}) {
		t.Fatalf("stats: paused %v", st.Paused)
	}
	if err := m1.Resume(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r, err := m1.Wait(ctx, fmt.Sprint("j", i)); err != nil || !r.Success {
			t.Fatalf("after resume: %+v %v", r, err)
		}
	}
	if err := m1.Pause(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := m1.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	m2 := startManager(t, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key))
	if p, err := m2.Paused(ctx); err != nil || !slices.Equal(p, []string{"other"}) {
		t.Fatalf("paused after a restart: %v %v", p, err)
	}
}
