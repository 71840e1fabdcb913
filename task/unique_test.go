package task

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// A Unique key refuses other submissions with it for its ttl, whatever
// became of the first task, in one batch too, and across a restart; after
// the ttl the key is free.
func TestUniqueTasks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, key := filepath.Join(dir, "unique.db"), filepath.Join(dir, "key")
	j := openJournal(t, path)
	m1 := startManager(t, WithJournal(j), agent.WithIdentityFile(key))
	startWorker(t, m1, "W", func(w *Worker) { w.Handle("job", noop) })
	ctx := testutil.Context(t)
	job := func(id string) messages.Task { return messages.Task{ID: id, Type: "job", Description: "unique"} }
	if r, err := m1.Run(ctx, job("first"), Unique("report:42", time.Hour)); err != nil || !r.Success {
		t.Fatalf("first: %+v %v", r, err)
	}
	if err := m1.Submit(ctx, job("second"), Unique("report:42", time.Hour)); !errors.Is(err, ErrDuplicateUnique) {
		t.Fatalf("a duplicate after the first finished: %v", err)
	}
	batch := []Submission{{Task: job("b1"), UniqueKey: "k", UniqueUntil: time.Now().Add(time.Hour)},
		{Task: job("b2"), UniqueKey: "k", UniqueUntil: time.Now().Add(time.Hour)}}
	if err := m1.SubmitAll(ctx, batch); !errors.Is(err, ErrDuplicateUnique) {
		t.Fatalf("a duplicate in one batch: %v", err)
	}
	if err := m1.Submit(ctx, job("short"), Unique("brief", 200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the short key to expire", func() bool {
		return m1.Submit(ctx, job("short-again-"+time.Now().Format("150405.000000")), Unique("brief", time.Hour)) == nil
	})
	if err := m1.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()

	m2 := startManager(t, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key))
	if err := m2.Submit(ctx, job("third"), Unique("report:42", time.Hour)); !errors.Is(err, ErrDuplicateUnique) {
		t.Fatalf("a duplicate after a restart: %v", err)
	}
	if err := m2.Submit(ctx, job("other"), Unique("report:43", time.Hour)); err != nil {
		t.Fatalf("another key: %v", err)
	}
}

// A Unique key outlives its task's record: deleted, or expired by the
// retention, the task no longer is in the journal, and a restarted manager
// still refuses the key until its ttl ends.
func TestUniqueKeyOutlivesItsRecord(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	ctx := testutil.Context(t)
	life := func(opts ...any) (*testManager, *Journal) {
		j := openJournal(t, path)
		return startManager(t, append([]any{WithJournal(j)}, opts...)...), j
	}
	stop := func(m *testManager, j *Journal) {
		if err := m.Update(ctx, func(*Tx) error { return nil }); err != nil { // all before it is durable
			t.Fatal(err)
		}
		if err := m.Stop(); err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
	}
	submitAndCancel := func(m *testManager, id string) {
		if err := m.Submit(ctx, messages.Task{ID: id, Type: "nobody-runs"}, Unique("k-"+id, time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := m.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	m, j := life()
	submitAndCancel(m, "deleted")
	if err := m.Delete(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	stop(m, j)
	m, j = life(WithRetention(time.Millisecond))
	submitAndCancel(m, "expired")
	testutil.Eventually(t, "the expired task's record gone", func() bool {
		recs, err := j.loadTasks()
		return err == nil && len(recs) == 0
	})
	stop(m, j)
	m, _ = life()
	for _, id := range []string{"deleted", "expired"} {
		if err := m.Submit(ctx, messages.Task{ID: id + "-again", Type: "nobody-runs"}, Unique("k-"+id, time.Hour)); !errors.Is(err, ErrDuplicateUnique) {
			t.Fatalf("k-%s, held by a task whose record is gone, after a restart: %v, want ErrDuplicateUnique", id, err)
		}
	}
}
