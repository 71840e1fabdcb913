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
