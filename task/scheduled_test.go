package task

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// A delayed task is not assigned before its time (it is "scheduled" till
// then), runs after it, and may be cancelled while it waits.
func TestDelayedTasks(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithTick(10*time.Millisecond))
		var mu sync.Mutex
		ranAt := map[string]time.Time{}
		startWorker(t, m, "W", func(w *Worker) {
			w.Handle("job", func(_ context.Context, j *Job) ([]byte, error) {
				mu.Lock()
				ranAt[j.Task.ID] = time.Now()
				mu.Unlock()
				return nil, nil
			})
		}, WithMaxConcurrency(4), on)
		ctx := testutil.Context(t)
		at := time.Now().Add(300 * time.Millisecond)
		if err := m.Submit(ctx, messages.Task{ID: "later", Type: "job", Description: "at a time"}, ProcessAt(at)); err != nil {
			t.Fatal(err)
		}
		if err := m.Submit(ctx, messages.Task{ID: "gone", Type: "job", Description: "cancelled while it waits"}, ProcessIn(200*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if r := runTask(t, m, messages.Task{ID: "now", Type: "job", Description: "at once"}); !r.Success {
			t.Fatal(r)
		}
		info, err := m.Task(ctx, "later")
		if err != nil || info.Status != StatusScheduled || !info.NotBefore.Equal(at) {
			t.Fatalf("before its time: %+v %v", info, err)
		}
		if err := m.Cancel(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if r, err := m.Wait(ctx, "later"); err != nil || !r.Success {
			t.Fatalf("later: %+v %v", r, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if ranAt["later"].Before(at) {
			t.Fatalf("ran at %v, before its time %v", ranAt["later"], at)
		}
		if r, err := m.Wait(ctx, "gone"); err != nil || r.Success {
			t.Fatalf("the cancelled one: %+v %v", r, err)
		}
		if _, ran := ranAt["gone"]; ran {
			t.Fatal("a task cancelled while it waited ran")
		}
	})
}

// A delayed task keeps its time across a restart on the journal.
func TestDelayedTaskSurvivesARestart(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		dir := t.TempDir()
		path, key := filepath.Join(dir, "delay.db"), filepath.Join(dir, "key")
		j := openJournal(t, path)
		m1 := startManager(t, on, WithJournal(j), agent.WithIdentityFile(key))
		at := time.Now().Add(time.Second)
		ctx := testutil.Context(t)
		if err := m1.Submit(ctx, messages.Task{ID: "d", Type: "job", Description: "delayed"}, ProcessAt(at)); err != nil {
			t.Fatal(err)
		}
		if err := m1.Stop(); err != nil {
			t.Fatal(err)
		}
		_ = j.Close()

		m2 := startManager(t, on, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key), WithTick(10*time.Millisecond))
		if info, err := m2.Task(ctx, "d"); err != nil || info.Status != StatusScheduled || !info.NotBefore.Equal(at) {
			t.Fatalf("after the restart: %+v %v", info, err)
		}
		var ranAt time.Time
		var mu sync.Mutex
		startWorker(t, m2, "W", func(w *Worker) {
			w.Handle("job", func(context.Context, *Job) ([]byte, error) {
				mu.Lock()
				ranAt = time.Now()
				mu.Unlock()
				return nil, nil
			})
		}, on)
		if r, err := m2.Wait(ctx, "d"); err != nil || !r.Success {
			t.Fatalf("d: %+v %v", r, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if ranAt.Before(at) {
			t.Fatalf("ran at %v, before its time %v", ranAt, at)
		}
		if _, err := m2.Task(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
			t.Fatal(err)
		}
	})
}

// A retry's delay is journaled: a task waiting out an hour's delay is not
// run again at once by a restarted manager (nor by the next leader), but
// at its time.
func TestRetryDelaySurvivesARestart(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		dir := t.TempDir()
		path, key := filepath.Join(dir, "j.db"), filepath.Join(dir, "key")
		policy := WithDefaultPolicy(Policy{Timeout: time.Minute, MaxRetries: 3, RetryInterval: time.Hour, MaxRetryInterval: time.Hour})
		j1 := openJournal(t, path)
		m1 := startManager(t, on, WithJournal(j1), agent.WithIdentityFile(key), policy)
		w1 := startWorker(t, m1, "W", func(w *Worker) {
			w.Handle("job", func(context.Context, *Job) ([]byte, error) { return nil, errors.New("boom") })
		}, on)
		ctx := testutil.Context(t)
		if err := m1.Submit(ctx, messages.Task{ID: "r", Type: "job", Description: "fails once"}); err != nil {
			t.Fatal(err)
		}
		m1.awaitEvent(t, "the retry", func(ev Event) bool { return ev.Type == EventRetrying })
		failed := time.Now()
		if err := m1.Update(ctx, func(*Tx) error { return nil }); err != nil { // the retry is durable
			t.Fatal(err)
		}
		_ = w1.Stop()
		if err := m1.Stop(); err != nil {
			t.Fatal(err)
		}
		_ = j1.Close()

		m2 := startManager(t, on, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key), policy)
		ran := make(chan time.Time, 1)
		startWorker(t, m2, "W2", func(w *Worker) {
			w.Handle("job", func(context.Context, *Job) ([]byte, error) { ran <- time.Now(); return nil, nil })
		}, on)
		select {
		case at := <-ran:
			t.Fatalf("the retry ran %v after the failure, its delay an hour", at.Sub(failed))
		case <-time.After(30 * time.Minute): // virtual time
		}
		if info, err := m2.Task(context.Background(), "r"); err != nil || info.Status != StatusRetrying { // (ctx has run out in virtual time)
			t.Fatalf("after the restart, half way through the delay: %v %v, want retrying", info.Status, err)
		}
		at := <-ran
		if d := at.Sub(failed); d < time.Hour || d > time.Hour+time.Minute {
			t.Fatalf("the retry ran %v after the failure, want an hour", d)
		}
	})
}
