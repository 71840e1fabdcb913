package task

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// A commit stuck on a slow disk, here one carrying a layer's records (what
// the playground's AddTasks writes), does not stall the manager: it answers
// and handles every worker's heartbeats meanwhile, and a result that comes
// in during the stuck commit is reported right after the next one, not
// behind a queue of writes.
func TestSlowCommitDoesNotStallTheManager(t *testing.T) {
	t.Parallel()
	j := openJournal(t, filepath.Join(t.TempDir(), "slow.db"))
	var commits atomic.Int64
	var holding atomic.Bool
	entered, hold := make(chan struct{}, 1), make(chan struct{})
	j.beforeWrite = func(int, int) {
		if holding.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-hold // the disk is stuck until the test lets go
		}
		commits.Add(1)
	}
	m := startManager(t, WithJournal(j))
	goB := make(chan struct{})
	startWorker(t, m, "A", func(w *Worker) { w.Handle("job", noop) }, WithHeartbeatInterval(20*time.Millisecond))
	b := startWorker(t, m, "B", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, _ *Job) ([]byte, error) {
			select {
			case <-goB:
				return []byte("done"), nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		})
	}, WithCapabilities("b"))
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "r", Type: "job", Description: "runs on B", Capabilities: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	m.awaitEvent(t, "r assigned", func(ev Event) bool { return ev.Type == EventAssigned && ev.TaskID == "r" })

	// A layer's records go into a commit that gets stuck.
	holding.Store(true)
	updated := make(chan error, 1)
	go func() {
		updated <- m.Update(ctx, func(tx *Tx) error { return tx.Put("layer", []byte("k"), make([]byte, 64<<10)) })
	}()
	<-entered

	// Meanwhile the manager hears A's heartbeats...
	lastSeenOfA := func() (seen time.Time) {
		if err := m.View(ctx, func(*Tx) error {
			for _, w := range m.workerList {
				if w.info.Name == "A" {
					seen = w.lastSeen
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	before := lastSeenOfA()
	testutil.Eventually(t, "a heartbeat of A during the stuck commit", func() bool { return lastSeenOfA().After(before) })

	// ...and takes B's result, which waits for durability only.
	close(goB)
	testutil.Eventually(t, "B's result at the manager", func() bool {
		var got bool
		_ = m.View(ctx, func(*Tx) error {
			t := m.tasks["r"]
			got = t != nil && t.status == StatusCompleted && !t.settled
			return nil
		})
		return got
	})
	waited := make(chan messages.TaskResult, 1)
	go func() { r, _ := m.Wait(ctx, "r"); waited <- r }()
	select {
	case r := <-waited:
		t.Fatalf("a result reported before its commit: %+v", r)
	case err := <-updated:
		t.Fatalf("Update returned during its stuck commit: %v", err)
	default:
	}

	atRelease := commits.Load()
	close(hold)
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	r := <-waited
	if !r.Success || string(r.Output) != "done" || r.Worker != b.Name() {
		t.Fatalf("result: %+v", r)
	}
	if n := commits.Load() - atRelease; n > 2 {
		t.Fatalf("the result took %d commits after the stuck one started, want at most 2", n)
	}
}
