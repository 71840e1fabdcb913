package task

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// SubmitAsync answers through its future: accepted once durable (never
// before the commit), refused with the named error; past the bound on
// unanswered submissions the producer waits.
func TestSubmitAsync(t *testing.T) {
	t.Parallel()
	j, stuck := stuckJournal(t)
	m := startManager(t, WithJournal(j), WithMaxPendingSubmits(2))
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) })
	ctx := testutil.Context(t)

	var fs []*SubmitFuture
	for i := range 100 {
		f, err := m.SubmitAsync(ctx, messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "async"})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		if err := f.Wait(ctx); err != nil {
			t.Fatalf("task %s: %v", f.TaskID(), err)
		}
	}
	if r, err := m.Wait(ctx, "99"); err != nil || !r.Success {
		t.Fatalf("the last: %+v %v", r, err)
	}
	dup, err := m.SubmitAsync(ctx, messages.Task{ID: "0", Type: "job", Description: "again"})
	if err != nil {
		t.Fatal(err)
	}
	if err := dup.Wait(ctx); !errors.Is(err, ErrDuplicateTask) {
		t.Fatalf("duplicate: %v", err)
	}

	// With the disk stuck, a submission is not acknowledged, and past
	// the bound the producer waits.
	if err := m.View(ctx, func(*Tx) error { stuck.next = true; return nil }); err != nil {
		t.Fatal(err)
	}
	held, err := m.SubmitAsync(ctx, messages.Task{ID: "held", Type: "job", Description: "its commit is stuck"})
	if err != nil {
		t.Fatal(err)
	}
	<-stuck.entered
	if _, err := m.SubmitAsync(ctx, messages.Task{ID: "second", Type: "job", Description: "fills the bound"}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := m.SubmitAsync(short, messages.Task{ID: "third", Type: "job", Description: "no room"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past the bound: %v", err)
	}
	select {
	case <-held.Done():
		t.Fatalf("acknowledged before its commit: %v", held.Err())
	default:
	}
	close(stuck.release)
	if err := held.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// Futures still open when the manager stops are answered ErrStopped, and
// a function that panics in a View is answered at once.
func TestSubmitAsyncAcrossStop(t *testing.T) {
	t.Parallel()
	j, stuck := stuckJournal(t)
	m := startManager(t, WithJournal(j))
	ctx := testutil.Context(t)
	if err := m.View(ctx, func(*Tx) error { panic("boom") }); !errors.Is(err, agent.ErrCallPanicked) {
		t.Fatalf("a panicking view: %v", err)
	}
	if err := m.View(ctx, func(*Tx) error { stuck.next = true; return nil }); err != nil {
		t.Fatal(err)
	}
	f1, err := m.SubmitAsync(ctx, messages.Task{ID: "a", Type: "job", Description: "its commit is stuck"})
	if err != nil {
		t.Fatal(err)
	}
	<-stuck.entered
	f2, err := m.SubmitAsync(ctx, messages.Task{ID: "b", Type: "job", Description: "behind it"})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop() }()
	close(stuck.release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	for _, f := range []*SubmitFuture{f1, f2} {
		select {
		case <-f.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("future %s still open after Stop", f.TaskID())
		}
		if err := f.Err(); err != nil && !errors.Is(err, agent.ErrStopped) {
			t.Fatalf("future %s: %v", f.TaskID(), err)
		}
	}
}

// stuck holds the journal's next commit (set next in the manager's actor)
// until release is closed; entered says the commit is held.
type stuck struct {
	next             bool
	entered, release chan struct{}
}

// stuckJournal is a journal whose next commit can be held.
func stuckJournal(t *testing.T) (*Journal, *stuck) {
	j := openJournal(t, filepath.Join(t.TempDir(), "stuck.db"))
	s := &stuck{entered: make(chan struct{}, 1), release: make(chan struct{})}
	j.beforeWrite = func(int, int) {
		if s.next {
			s.next = false
			s.entered <- struct{}{}
			<-s.release
		}
	}
	return j, s
}
