package task

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// A periodic task runs at each fire of its schedule; runs missed while the
// manager was down are made up by one run when it starts again.
func TestPeriodicTasks(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		if _, err := NewManager(nil, WithPeriodic("bad", "not a schedule", messages.Task{Type: "job"})); err == nil {
			t.Fatal("a bad cron spec was accepted")
		}
		dir := t.TempDir()
		path, key := filepath.Join(dir, "cron.db"), filepath.Join(dir, "key")
		cronJob := WithPeriodic("tick", "@every 1s", messages.Task{Type: "job"})
		j := openJournal(t, path)
		m1 := startManager(t, on, WithJournal(j), agent.WithIdentityFile(key), WithTick(10*time.Millisecond), cronJob)
		var mu sync.Mutex
		var runs []string
		handle := func(w *Worker) {
			w.Handle("job", func(_ context.Context, j *Job) ([]byte, error) {
				mu.Lock()
				runs = append(runs, j.Task.ID)
				mu.Unlock()
				return nil, nil
			})
		}
		startWorker(t, m1, "W", handle, on)
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(runs) }
		testutil.Eventually(t, "a run", func() bool { return count() >= 1 })
		tasks1, err := m1.Tasks(testutil.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := m1.Stop(); err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
		old := map[string]bool{}
		for _, info := range tasks1 {
			old[info.Task.ID] = true
		}
		before := len(old)
		time.Sleep(2500 * time.Millisecond) // the outage (virtual time): two or three fires missed
		ctx := testutil.Context(t)

		up := time.Now() // fires before it were missed; after it, regular
		m2 := startManager(t, on, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key), WithTick(10*time.Millisecond), cronJob)
		startWorker(t, m2, "W", handle, on)
		testutil.Eventually(t, "the made-up run and a regular one", func() bool { return count() >= before+2 })
		tasks, err := m2.Tasks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		missed := 0
		for _, info := range tasks {
			if old[info.Task.ID] {
				continue // a run of the first life
			}
			at, ok := strings.CutPrefix(info.Task.ID, "tick@")
			if !ok {
				t.Fatalf("a task %q", info.Task.ID)
			}
			fire, err := time.Parse(time.RFC3339Nano, at)
			if err != nil {
				t.Fatal(err)
			}
			if fire.Before(up) { // made up for the outage
				missed++
			}
		}
		if missed != 1 {
			t.Fatalf("%d runs for the fires missed while down, want 1: %v", missed, runs)
		}
	})
}

// A periodic task that never ran counts from its manager's first start,
// journaled: a first run missed while the manager was down is made up as
// later ones are (it used to count from each start, so a manager down
// across the first due time skipped that run).
func TestPeriodicFirstRunIsMadeUp(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		dir := t.TempDir()
		path, key := filepath.Join(dir, "cron.db"), filepath.Join(dir, "key")
		cronJob := WithPeriodic("hourly", "@every 1h", messages.Task{Type: "job"})
		j := openJournal(t, path)
		m1 := startManager(t, on, WithJournal(j), agent.WithIdentityFile(key), WithTick(10*time.Millisecond), cronJob)
		time.Sleep(59 * time.Minute) // virtual time
		if err := m1.Stop(); err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
		time.Sleep(2 * time.Minute) // down across the first due time
		m2 := startManager(t, on, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key), WithTick(10*time.Millisecond), cronJob)
		ctx := testutil.Context(t)
		testutil.Eventually(t, "the missed first run made up", func() bool {
			tasks, err := m2.Tasks(ctx)
			return err == nil && len(tasks) == 1 && strings.HasPrefix(tasks[0].Task.ID, "hourly@")
		})
	})
}
