package task

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
)

// A journal written by version 3 (testdata/journal-v3.db: task done
// completed by W, waiting never run, the statistics of W and W2 in one
// table) opens: each worker's statistics are a record of their own from
// then on, and a commit writes those of the workers that changed, the
// others kept.
func TestJournalV3IsMigrated(t *testing.T) {
	t.Parallel()
	j := openTestdata(t, "journal-v3.db", "ws-v3")
	if err := j.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyWorkers); v != nil {
			t.Error("the version 3 worker table is still in the meta bucket")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stats, err := j.loadWorkers()
	if err != nil {
		t.Fatal(err)
	}
	if w, w2 := stats["W"], stats["W2"]; len(stats) != 2 || w.Results != 7 || w.Successful != 6 || w.TotalTime != 7*time.Second ||
		w2.Skill != 3 || w2.Results != 2 || len(w2.Capabilities) != 1 {
		t.Fatalf("worker statistics after the migration: %+v", stats)
	}
	// The test data was written on a fixed day: no retention, or its
	// finished task would expire at once.
	m := startManager(t, WithJournal(j), WithRetention(0), agent.WithWorkspace("ws-v3"))
	ctx := testutil.Context(t)
	if r, err := m.Wait(ctx, "done"); err != nil || !r.Success || string(r.Output) != "out" {
		t.Fatalf("done after the migration: %+v %v", r, err)
	}
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, agent.WithWorkspace("ws-v3"))
	if r, err := m.Wait(ctx, "waiting"); err != nil || !r.Success {
		t.Fatalf("waiting after the migration: %+v %v", r, err)
	}
	if err := m.Update(ctx, func(*Tx) error { return nil }); err != nil { // everything before is durable
		t.Fatal(err)
	}
	if stats, err = j.loadWorkers(); err != nil {
		t.Fatal(err)
	}
	if w, w2 := stats["W"], stats["W2"]; w.Results != 8 || w.Successful != 7 || w2.Results != 2 || w2.Skill != 3 {
		t.Fatalf("worker statistics after W ran a task: %+v", stats)
	}
}

// A commit carries the statistics of the workers that changed since the
// last one, not every worker's: with a thousand workers known, a result
// writes one worker's.
func TestCommitsCarryTheWorkersThatChanged(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		j := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
		known := map[string]WorkerStats{}
		for i := range 1000 {
			name := fmt.Sprintf("gone-%04d", i)
			known[name] = WorkerStats{Name: name, Results: 5, Successful: 5}
		}
		if err := j.writeTasks(nil, known, nil, nil); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var written []int // worker statistics per commit
		j.beforeWrite = func(_, workers int) {
			mu.Lock()
			written = append(written, workers)
			mu.Unlock()
		}
		m := startManager(t, on, WithJournal(j))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on)
		ctx := testutil.Context(t)
		for i := range 3 {
			if _, err := m.Run(ctx, messages.Task{ID: fmt.Sprint(i), Type: "job"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Update(ctx, func(*Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(written) == 0 || slices.Max(written) > 1 {
			t.Fatalf("worker statistics per commit: %v, want at most W's", written)
		}
		stats, err := j.loadWorkers()
		if err != nil || len(stats) != 1001 || stats["W"].Results != 3 || stats["gone-0999"].Results != 5 {
			t.Fatalf("%d workers' statistics, W's %+v: %v", len(stats), stats["W"], err)
		}
	})
}
