package task

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

func openJournal(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := OpenJournal(path, "ws-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// A manager restarted on its journal keeps the results of finished tasks
// and runs the others again.
func TestJournalResumes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tasks.db")
	key := filepath.Join(dir, "admin.key")
	j := openJournal(t, path)
	m1 := startManager(t, WithJournal(j), agent.WithIdentityFile(key))
	release := make(chan struct{})
	startWorker(t, m1, "W", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			if job.Task.Priority == 0 { // the "slow" half never finishes before the restart
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return []byte("out-" + job.Task.ID), nil
		})
	}, WithMaxConcurrency(20))
	ctx := testutil.Context(t)
	var batch []Submission
	for i := range 20 {
		batch = append(batch, Submission{Task: messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "d", Priority: i % 2}})
	}
	if err := m1.SubmitAll(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 20; i += 2 {
		if r, err := m1.Wait(ctx, fmt.Sprint(i)); err != nil || !r.Success {
			t.Fatalf("fast task %d: %+v %v", i, r, err)
		}
	}
	if err := m1.Stop(); err != nil {
		t.Fatal(err)
	}
	close(release)
	_ = j.Close()

	// Restart on the same journal and key: the same identity (its port
	// is chosen anew here), the old results, and the unfinished tasks run
	// again.
	j2 := openJournal(t, path)
	m2 := startManager(t, WithJournal(j2), agent.WithIdentityFile(key))
	if m2.Agent().ID() != m1.Agent().ID() {
		t.Fatalf("restarted manager has another identity: %s, was %s", m2.Agent().ID(), m1.Agent().ID())
	}
	for i := 1; i < 20; i += 2 {
		r, err := m2.Wait(ctx, fmt.Sprint(i))
		if err != nil || !r.Success || string(r.Output) != fmt.Sprint("out-", i) {
			t.Fatalf("journaled result %d: %+v %v", i, r, err)
		}
	}
	if info, _ := m2.Task(ctx, "0"); info.Status != StatusPending {
		t.Fatalf("unfinished task after restart: %v", info.Status)
	}
	startWorker(t, m2, "W2", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) { return []byte("again-" + job.Task.ID), nil })
	}, WithMaxConcurrency(20))
	for i := 0; i < 20; i += 2 {
		r, err := m2.Wait(ctx, fmt.Sprint(i))
		if err != nil || !r.Success || string(r.Output) != fmt.Sprint("again-", i) {
			t.Fatalf("resumed task %d: %+v %v", i, r, err)
		}
	}
	info, _ := m2.Task(ctx, "0")
	if len(info.Attempts) != 2 || info.Attempts[0].Worker != "W" || info.Attempts[0].Outcome == "ok" ||
		info.Attempts[1].Worker != "W2" || info.Attempt != 2 {
		t.Fatalf("attempt history across the restart: %+v", info.Attempts)
	}
	rep, _ := m2.Stats(ctx)
	statsOf := map[string]WorkerStats{}
	for _, w := range rep.Workers {
		statsOf[w.Name] = w
	}
	if statsOf["W"].Successful != 10 || statsOf["W2"].Successful != 10 {
		t.Fatalf("worker statistics across the restart: %+v", rep.Workers)
	}
	if rep.Submitted != 20 || rep.Succeeded != 20 {
		t.Fatalf("report after restart: %+v", rep)
	}
	if err := m2.Submit(ctx, batch[0].Task); !errors.Is(err, ErrDuplicateTask) {
		t.Fatalf("resubmitting a journaled task: %v", err)
	}
}

func TestJournalBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, make([]byte, 100000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(garbage, "ws"); !errors.Is(err, ErrJournalCorrupt) {
		t.Fatalf("garbage file: %v", err)
	}
	text := filepath.Join(dir, "text.db")
	_ = os.WriteFile(text, []byte("not a database at all"), 0o600)
	if _, err := OpenJournal(text, "ws"); !errors.Is(err, ErrJournalCorrupt) {
		t.Fatalf("text file: %v", err)
	}
	good := filepath.Join(dir, "good.db")
	j, err := OpenJournal(good, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(good, "ws"); !errors.Is(err, ErrJournalLocked) {
		t.Fatalf("second open: %v", err)
	}
	_ = j.Close()
	if _, err := OpenJournal(good, "another-ws"); !errors.Is(err, ErrJournalVersion) {
		t.Fatalf("other workspace: %v", err)
	}
	// An empty file is a lost history, not a new journal.
	empty := filepath.Join(dir, "empty.db")
	_ = os.WriteFile(empty, nil, 0o600)
	if _, err := OpenJournal(empty, "ws"); !errors.Is(err, ErrJournalCorrupt) {
		t.Fatalf("empty file: %v", err)
	}
	// Damage the file behind bbolt's back: clear error at open, no panic.
	data, _ := os.ReadFile(good)
	for i := 4096; i < len(data); i++ {
		data[i] ^= 0x5a
	}
	_ = os.WriteFile(good, data, 0o600)
	if _, err := OpenJournal(good, "ws"); !errors.Is(err, ErrJournalCorrupt) {
		t.Fatalf("damaged file: %v", err)
	}
	// Damage in the middle of a journal full of records shows at open too.
	full := filepath.Join(dir, "full.db")
	jf, err := OpenJournal(full, "ws")
	if err != nil {
		t.Fatal(err)
	}
	var recs []*taskRecord
	for i := range 2000 {
		recs = append(recs, &taskRecord{Seq: uint64(i), Task: messages.Task{ID: fmt.Sprint("t", i), Type: "x", Description: strings.Repeat("d", 200)}})
	}
	if err := jf.writeTasks(recs, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	_ = jf.Close()
	data, _ = os.ReadFile(full)
	mid := len(data) / 2 &^ 4095
	for i := mid + 16; i < mid+64; i++ { // a page header in the middle
		data[i] ^= 0xff
	}
	_ = os.WriteFile(full, data, 0o600)
	if _, err := OpenJournal(full, "ws"); !errors.Is(err, ErrJournalCorrupt) {
		t.Fatalf("damage in the middle: %v", err)
	}
}

// A layer above the manager keeps its records in the manager's commits
// (Update's and a hook's Put) and reads them back when a restarted manager
// restores it, before anything runs; the manager's own buckets are refused.
func TestJournalKeepsOtherRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, key := filepath.Join(dir, "j.db"), filepath.Join(dir, "key")
	j := openJournal(t, path)
	m := startManager(t, WithJournal(j), agent.WithIdentityFile(key), WithHook(func(tx *Tx, ev Event) {
		if ev.Type == EventSubmitted {
			_ = tx.Put("graph", []byte("c"), []byte(ev.TaskID))
		}
	}))
	ctx := testutil.Context(t)
	err := m.Update(ctx, func(tx *Tx) error {
		if err := tx.Put("tasks", []byte("k"), []byte("v")); err == nil {
			t.Error("wrote into the manager's bucket")
		}
		_ = tx.Put("graph", []byte("b"), []byte("2"))
		_ = tx.Put("graph", []byte("a"), []byte("1"))
		return tx.Submit([]Submission{{Task: messages.Task{ID: "t", Type: "job", Description: "with records"}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Update(ctx, func(tx *Tx) error {
		_ = tx.Put("graph", []byte("z"), []byte("dropped"))
		return errors.New("changed my mind")
	}); err == nil {
		t.Fatal("a failed update reported success")
	}
	if err := m.View(ctx, func(tx *Tx) error { return tx.Put("graph", []byte("v"), nil) }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Put in a view: %v", err)
	}
	if err := m.View(ctx, func(tx *Tx) error { return tx.AfterCommit(func(*Tx, error) {}) }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("AfterCommit in a view: %v", err)
	}
	// What waits for a commit runs once it is durable, before Update
	// returns, and may put more (in the next commit).
	after := 0
	if err := m.Update(ctx, func(tx *Tx) error {
		_ = tx.Put("graph", []byte("d"), []byte("4"))
		return tx.AfterCommit(func(tx *Tx, err error) {
			if err == nil {
				after++
				_ = tx.Put("graph", []byte("e"), []byte("after"))
			}
		})
	}); err != nil || after != 1 {
		t.Fatalf("after commit: ran %d times, %v", after, err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()

	var got []string
	var status Status
	m2 := startManager(t, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key), WithRestore(func(r *Recovery) error {
		info, ok := r.Task("t")
		if !ok {
			return errors.New("task t not recovered")
		}
		status = info.Status
		return r.ForEach("graph", func(k, v []byte) error { got = append(got, string(k)+"="+string(v)); return nil })
	}))
	defer m2.Stop()
	if fmt.Sprint(got) != "[a=1 b=2 c=t d=4 e=after]" || status != StatusPending {
		t.Fatalf("restored %v, task %v", got, status)
	}
}

// With a retention, finished tasks are forgotten after it, in memory and
// in the journal.
func TestRetentionForgetsFinishedTasks(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		path := filepath.Join(t.TempDir(), "r.db")
		j := openJournal(t, path)
		m := startManager(t, on, WithJournal(j), WithRetention(2*time.Second), WithTick(10*time.Millisecond))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on)
		if r := runTask(t, m, messages.Task{ID: "old", Type: "job", Description: "d"}); !r.Success {
			t.Fatal(r)
		}
		// Kept until the retention ends...
		if info, err := m.Task(testutil.Context(t), "old"); err != nil || info.Status != StatusCompleted {
			t.Fatalf("finished task before its retention ended: %+v %v", info, err)
		}
		testutil.Eventually(t, "the task to expire", func() bool {
			_, err := m.Task(testutil.Context(t), "old")
			return errors.Is(err, ErrUnknownTask)
		})
		testutil.Eventually(t, "the journal record to go", func() bool {
			recs, err := j.loadTasks()
			return err == nil && len(recs) == 0
		})
		// The ID is free again.
		if r := runTask(t, m, messages.Task{ID: "old", Type: "job", Description: "again"}); !r.Success {
			t.Fatal(r)
		}
	})
}

// Past the count of finished tasks kept, the oldest finished are
// forgotten first, in memory and in the journal; the totals still count
// them.
func TestKeepFinishedBoundsMemory(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		j := openJournal(t, filepath.Join(t.TempDir(), "k.db"))
		m := startManager(t, on, WithJournal(j), WithKeepFinished(5), WithRetention(0), WithTick(10*time.Millisecond))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on)
		for i := range 12 {
			if r := runTask(t, m, messages.Task{ID: fmt.Sprint("t", i), Type: "job", Description: "d"}); !r.Success {
				t.Fatal(r)
			}
		}
		ctx := testutil.Context(t)
		if _, err := m.Task(ctx, "t0"); !errors.Is(err, ErrUnknownTask) {
			t.Fatalf("the oldest finished task: %v, want it forgotten", err)
		}
		if info, err := m.Task(ctx, "t11"); err != nil || info.Status != StatusCompleted {
			t.Fatalf("the newest: %+v %v", info, err)
		}
		st, err := m.Stats(ctx)
		if err != nil || st.Succeeded != 12 {
			t.Fatalf("totals: %d succeeded, %v; want 12", st.Succeeded, err)
		}
		testutil.Eventually(t, "the journal to hold the 5 kept", func() bool {
			n, err := j.Len()
			return err == nil && n == 5
		})
	})
}

// A retried task counts once among those kept, as it last finished, and a
// deleted one not at all: neither makes the limit forget a task too early.
func TestKeepFinishedCountsRetriedAndDeleted(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithKeepFinished(2), WithRetention(0))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on)
		ctx := testutil.Context(t)
		cancelled := func(id string) {
			t.Helper()
			if err := m.Cancel(ctx, id); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, id+" cancelled", func() bool {
				info, err := m.Task(ctx, id)
				return err == nil && info.Status == StatusCancelled
			})
		}
		known := func(id string) bool {
			_, err := m.Task(ctx, id)
			return err == nil
		}
		if err := m.Submit(ctx, messages.Task{ID: "a", Type: "nobody", Description: "d"}); err != nil {
			t.Fatal(err)
		}
		cancelled("a")
		runTask(t, m, messages.Task{ID: "b", Type: "job", Description: "d"})
		if err := m.Retry(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		cancelled("a")
		runTask(t, m, messages.Task{ID: "c", Type: "job", Description: "d"})
		if !known("a") || known("b") || !known("c") {
			t.Fatalf("kept a %v, b %v, c %v; want a and c (a finished again after b)", known("a"), known("b"), known("c"))
		}
		if err := m.Delete(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		runTask(t, m, messages.Task{ID: "d", Type: "job", Description: "d"})
		if !known("a") || !known("d") {
			t.Fatalf("kept a %v, d %v; want both (c was deleted)", known("a"), known("d"))
		}
	})
}

// Deleting every task once read keeps the expiry queue small: its stale
// entries are compacted away.
func TestKeepFinishedCompactsDeleted(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithKeepFinished(10), WithRetention(0))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on)
		ctx := testutil.Context(t)
		for i := range 200 {
			id := fmt.Sprint("t", i)
			runTask(t, m, messages.Task{ID: id, Type: "job", Description: "d"})
			if err := m.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		n, err := agent.Call(ctx, m.Agent(), func() (int, error) { return len(m.expiring), nil })
		if err != nil || n > 64 {
			t.Fatalf("%d entries in the expiry queue after 200 deleted tasks, want at most 64 (%v)", n, err)
		}
	})
}

// Many finished tasks expiring in one sweep are all forgotten (the queue
// is walked while its count drops: nothing compacts it under the walk).
func TestRetentionExpiresManyAtOnce(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithRetention(time.Second), WithKeepFinished(0), WithTick(10*time.Millisecond))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on)
		ctx := testutil.Context(t)
		subs := make([]Submission, 300)
		for i := range subs {
			subs[i] = Submission{Task: messages.Task{ID: fmt.Sprint("t", i), Type: "job", Description: "d"}}
		}
		if err := m.SubmitAll(ctx, subs); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Wait(ctx, "t299"); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, "all 300 forgotten", func() bool {
			n, err := agent.Call(ctx, m.Agent(), func() (int, error) { return len(m.tasks) + len(m.expiring) + m.kept, nil })
			return err == nil && n == 0
		})
	})
}

// With no limit of either kind, finished tasks stay.
func TestKeepFinishedUnlimited(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithKeepFinished(0), WithRetention(0))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on)
		for i := range 3 {
			runTask(t, m, messages.Task{ID: fmt.Sprint("u", i), Type: "job", Description: "d"})
		}
		if _, err := m.Task(testutil.Context(t), "u0"); err != nil {
			t.Fatalf("no limit: %v", err)
		}
	})
}

// A result is reported (to Wait, to observers) only once it is durable:
// while its commit is stuck, the submitter keeps waiting.
func TestResultReportedOnlyOnceDurable(t *testing.T) {
	t.Parallel()
	j := openJournal(t, filepath.Join(t.TempDir(), "d.db"))
	var stuck atomic.Bool
	entered, gate := make(chan struct{}, 1), make(chan struct{})
	var open sync.Once
	release := func() { open.Do(func() { close(gate) }) }
	j.beforeWrite = func(int, int) {
		if stuck.Load() {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-gate
		}
	}
	m := startManager(t, WithJournal(j))
	t.Cleanup(release) // before the manager's Stop: a failure must not leave the commit stuck
	started, finish := make(chan struct{}), make(chan struct{})
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("job", func(context.Context, *Job) ([]byte, error) {
			close(started)
			<-finish
			return []byte("done"), nil
		})
	})
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "t", Type: "job", Description: "its result waits for the disk"}); err != nil {
		t.Fatal(err)
	}
	<-started
	stuck.Store(true)
	close(finish)
	<-entered // the result's commit has begun, and is stuck
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if r, err := m.Wait(short, "t"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("result reported before it was durable: %+v %v", r, err)
	}
	release()
	if r, err := m.Wait(ctx, "t"); err != nil || !r.Success || string(r.Output) != "done" {
		t.Fatalf("after the commit: %+v %v", r, err)
	}
}

// A Cancel that returned is durable: Delete may follow at once, and a
// restarted manager has the task cancelled.
func TestCancelIsDurableWhenItReturns(t *testing.T) {
	t.Parallel()
	j := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	m := startManager(t, WithJournal(j))
	ctx := testutil.Context(t)
	for i := range 20 {
		id := fmt.Sprint("d", i)
		if err := m.Submit(ctx, messages.Task{ID: id, Type: "nobody-runs"}); err != nil {
			t.Fatal(err)
		}
		if err := m.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			continue
		}
		if err := m.Delete(ctx, id); err != nil {
			t.Fatalf("delete right after the cancel: %v", err)
		}
	}
	recs, err := j.loadTasks()
	if err != nil || len(recs) != 10 {
		t.Fatalf("%d records, want the 10 cancelled and kept: %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Status != StatusCancelled {
			t.Fatalf("%s is %v in the journal, want cancelled", r.Task.ID, r.Status)
		}
	}
}

// A task's priority from its type (HandlerOptions.Priority) is journaled
// with it: a restarted manager (or the next leader) queues it as before.
func TestTypePriorityIsJournaled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	j := openJournal(t, path)
	m := startManager(t, WithJournal(j))
	startWorker(t, m, "W", func(w *Worker) {
		w.HandleWith("hi", noop, HandlerOptions{Priority: 10})
	})
	ctx := testutil.Context(t)
	if err := m.Pause(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "h", Type: "hi"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	j2 := openJournal(t, path)
	m2 := startManager(t, WithJournal(j2))
	p, err := agent.Call(ctx, m2.agent, func() (int, error) { return m2.tasks["h"].priority, nil })
	if err != nil || p != 10 {
		t.Fatalf("the task's priority after a restart: %d %v, want its type's, 10", p, err)
	}
}
