package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// Tests for the manager's less-travelled paths: cancelling what is not
// running, losing a task too often, unreachable workers, invalid results,
// skill policies, hooks, forgetting, and the journal's edges.

// A pending task (no worker runs its type) and a retrying one (waiting out
// its backoff) can both be cancelled; waiters hear it.
func TestCancelPendingAndRetryingTasks(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("flaky", func(context.Context, *Job) ([]byte, error) { return nil, errors.New("boom") })
	})
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "pending", Type: "nobody-runs-this", Description: "waits for a worker"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "retrying", Type: "flaky", Description: "waits to retry",
		MaxRetries: 3, RetryInterval: time.Hour}); err != nil {
		t.Fatal(err)
	}
	m.awaitEvent(t, "the first failure", func(ev Event) bool { return ev.Type == EventRetrying && ev.TaskID == "retrying" })
	for _, id := range []string{"pending", "retrying"} {
		if err := m.Cancel(ctx, id); err != nil {
			t.Fatal(err)
		}
		r, err := m.Wait(ctx, id)
		if err != nil || r.Success || !strings.Contains(r.ErrorMessage, "cancelled") {
			t.Fatalf("%s: %+v %v", id, r, err)
		}
		if info, _ := m.Task(ctx, id); info.Status != StatusCancelled {
			t.Fatalf("%s: status %v", id, info.Status)
		}
	}
	if err := m.Cancel(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("cancel of an unknown task: %v", err)
	}
}

// A task whose worker is lost more often than WithMaxLost allows fails
// with ErrTooManyLost, instead of being requeued for ever.
func TestTooManyLost(t *testing.T) {
	t.Parallel()
	grace := agent.WithPeerOptions(peer.WithLeaveGrace(0))
	m := startManager(t, WithMaxLost(1), agent.WithPeerOptions(peer.WithLeaveGrace(0)))
	hang := func(w *Worker) {
		w.Handle("job", func(ctx context.Context, _ *Job) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() })
	}
	ctx := testutil.Context(t)
	w1 := startWorker(t, m, "W1", hang, grace)
	if err := m.Submit(ctx, messages.Task{ID: "t", Type: "job", Description: "its workers keep dying"}); err != nil {
		t.Fatal(err)
	}
	m.awaitEvent(t, "the first assignment", func(ev Event) bool { return ev.Type == EventAssigned && ev.Worker == "W1" })
	_ = w1.Stop()
	m.awaitEvent(t, "the requeue", func(ev Event) bool { return ev.Type == EventRequeued })
	w2 := startWorker(t, m, "W2", hang, grace)
	m.awaitEvent(t, "the second assignment", func(ev Event) bool { return ev.Type == EventAssigned && ev.Worker == "W2" })
	_ = w2.Stop()
	r, err := m.Wait(ctx, "t")
	if err != nil || r.Success || !strings.Contains(r.ErrorMessage, ErrTooManyLost.Error()) {
		t.Fatalf("result: %+v %v", r, err)
	}
}

// A worker the manager cannot reach any more (its process died, and the
// manager has not noticed yet) is taken out of matching when an
// assignment to it cannot be sent; the task goes to another worker (it
// spends one of its lost budget).
func TestUnreachableWorkerIsSkipped(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithMaxLost(1), agent.WithPeerOptions(peer.WithLeaveGrace(time.Hour)))
	dead := startWorker(t, m, "A-dead", func(w *Worker) { w.Handle("job", noop) })
	ctx := testutil.Context(t)
	// A dies without a word (no goodbye, its host gone).
	_ = dead.Agent().Node().Host().Close()
	testutil.Eventually(t, "the manager without a connection to A", func() bool {
		return m.Agent().Node().Host().Network().Connectedness(dead.Agent().Node().ID()) != 1 // network.Connected
	})
	startWorker(t, m, "B", func(w *Worker) { w.Handle("job", noop) })
	run, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	r, err := m.Run(run, messages.Task{ID: "t", Type: "job", Description: "A cannot be reached"})
	if err != nil || !r.Success || r.Worker != "B" {
		info, _ := m.Task(ctx, "t")
		rep, _ := m.Stats(ctx)
		t.Fatalf("result: %+v %v\n%+v\n%+v\nevents %+v", r, err, info, rep, m.log)
	}
	// A sorts first among equals, so it was tried first.
	info, _ := m.Task(ctx, "t")
	if len(info.Attempts) != 2 || !strings.Contains(info.Attempts[0].Outcome, "unreachable") {
		t.Fatalf("attempts: %+v", info.Attempts)
	}
}

// A result that does not validate, from the worker holding the attempt,
// fails the attempt with a clear message (and is retried), instead of
// being taken as a success.
func TestInvalidResultFailsTheAttempt(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on)
		var w *Worker
		first := make(chan struct{})
		var once sync.Once
		w = startWorker(t, m, "W", func(wa *Worker) {
			wa.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
				if job.Attempt == 1 {
					once.Do(func() { close(first) })
					<-ctx.Done()
					return nil, ctx.Err()
				}
				return []byte("ok"), nil
			})
		}, on)
		ctx := testutil.Context(t)
		if err := m.Submit(ctx, messages.Task{ID: "t", Type: "job", Description: "its first result is garbage", MaxRetries: 1, RetryInterval: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		<-first
		bad := messages.TaskResult{TaskID: "t", Attempt: 1, Worker: "W", Success: true, ExecutionTime: -time.Second}
		if err := w.Agent().Send(ctx, m.Agent().ID(), bad); err != nil {
			t.Fatal(err)
		}
		r, err := m.Wait(ctx, "t")
		if err != nil || !r.Success || r.Attempt != 2 {
			t.Fatalf("result: %+v %v", r, err)
		}
		info, _ := m.Task(ctx, "t")
		if !strings.Contains(info.Attempts[0].Outcome, "invalid result") {
			t.Fatalf("attempts: %+v", info.Attempts)
		}
	})
}

// Skill policies: SkillStrict keeps a task too hard for every connected
// worker waiting; SkillPrefer gives it to the most skilled one; either way
// a skilled enough worker that is busy is waited for.
func TestSkillPoliciesWait(t *testing.T) {
	t.Parallel()
	hard := messages.Task{Type: "job", Description: "difficulty 8", Difficulty: 8}
	for _, policy := range []SkillPolicy{SkillStrict, SkillPrefer} {
		t.Run(fmt.Sprint(policy), func(t *testing.T) {
			m := startManager(t, WithSkillPolicy(policy))
			startWorker(t, m, "Junior", func(w *Worker) { w.Handle("job", noop) }, WithSkill(3))
			ctx := testutil.Context(t)
			task := hard
			task.ID = "hard"
			if policy == SkillStrict {
				if err := m.Submit(ctx, task); err != nil {
					t.Fatal(err)
				}
				short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
				defer cancel()
				if _, err := m.Wait(short, "hard"); !errors.Is(err, ErrNoEligibleWorker) {
					t.Fatalf("strict, nobody skilled enough: %v", err)
				}
				startWorker(t, m, "Senior", func(w *Worker) { w.Handle("job", noop) }, WithSkill(9))
				if r, err := m.Wait(ctx, "hard"); err != nil || r.Worker != "Senior" {
					t.Fatalf("strict: %+v %v", r, err)
				}
				return
			}
			if r := runTask(t, m, task); !r.Success || r.Worker != "Junior" {
				t.Fatalf("prefer, nobody skilled enough: %+v", r)
			}
			// A busy Senior is waited for rather than the task going to
			// the idle Junior.
			release := make(chan struct{})
			startWorker(t, m, "Senior", func(w *Worker) {
				w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
					if job.Task.ID == "busy" {
						<-release
					}
					return nil, nil
				})
			}, WithSkill(9))
			t.Cleanup(func() { close(release) })
			busy := hard
			busy.ID = "busy"
			if err := m.Submit(ctx, busy); err != nil {
				t.Fatal(err)
			}
			m.awaitEvent(t, "Senior busy", func(ev Event) bool { return ev.Type == EventAssigned && ev.TaskID == "busy" })
			next := hard
			next.ID = "next"
			if err := m.Submit(ctx, next); err != nil {
				t.Fatal(err)
			}
			short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			if _, err := m.Wait(short, "next"); err == nil {
				t.Fatal("the hard task went to the weaker worker while the skilled one was busy")
			}
		})
	}
}

// A hook sees every event and may submit from there (a follow-up task);
// WithForgetFinished drops a task once it is final and waited for.
func TestHookAndForgetFinished(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []EventType
	m := startManager(t, WithForgetFinished(), WithHook(func(tx *Tx, ev Event) {
		mu.Lock()
		seen = append(seen, ev.Type)
		mu.Unlock()
		if ev.Type == EventCompleted && ev.TaskID == "first" {
			_ = tx.Submit([]Submission{{Task: messages.Task{ID: "second", Type: "job", Description: "submitted by the hook"}}})
		}
	}))
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) })
	ctx := testutil.Context(t)
	if r := runTask(t, m, messages.Task{ID: "first", Type: "job", Description: "d"}); !r.Success {
		t.Fatal(r)
	}
	m.awaitEvent(t, "the hook's task done", func(ev Event) bool { return ev.Type == EventCompleted && ev.TaskID == "second" })
	testutil.Eventually(t, "both forgotten", func() bool {
		_, e1 := m.Task(ctx, "first")
		_, e2 := m.Task(ctx, "second")
		return errors.Is(e1, ErrUnknownTask) && errors.Is(e2, ErrUnknownTask)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []EventType{EventSubmitted, EventAssigned, EventCompleted} {
		found := false
		for _, got := range seen {
			found = found || got == want
		}
		if !found {
			t.Fatalf("the hook never saw %v: %v", want, seen)
		}
	}
}

// A restarted manager keeps failed and cancelled tasks as they ended, and
// runs again a task whose attempt was unfinished, keeping that attempt in
// the history.
func TestJournalRecoversEveryKindOfTask(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, key := filepath.Join(dir, "j.db"), filepath.Join(dir, "key")
	j := openJournal(t, path)
	m1 := startManager(t, WithJournal(j), agent.WithIdentityFile(key))
	block := make(chan struct{})
	w := startWorker(t, m1, "W", func(w *Worker) {
		w.Handle("fail", func(context.Context, *Job) ([]byte, error) { return nil, ErrSkipRetry })
		w.Handle("block", func(ctx context.Context, _ *Job) ([]byte, error) {
			select {
			case <-block:
			case <-ctx.Done():
			}
			return nil, ctx.Err()
		})
	}, WithMaxConcurrency(2))
	ctx := testutil.Context(t)
	if r := runTask(t, m1, messages.Task{ID: "failed", Type: "fail", Description: "fails for good"}); r.Success {
		t.Fatal(r)
	}
	for _, id := range []string{"cancelled", "unfinished"} {
		if err := m1.Submit(ctx, messages.Task{ID: id, Type: "block", Description: id}); err != nil {
			t.Fatal(err)
		}
		m1.awaitEvent(t, id+" assigned", func(ev Event) bool { return ev.Type == EventAssigned && ev.TaskID == id })
	}
	if err := m1.Cancel(ctx, "cancelled"); err != nil {
		t.Fatal(err)
	}
	if r, _ := m1.Wait(ctx, "cancelled"); r.Success {
		t.Fatal("cancelled task succeeded")
	}
	_ = w.Stop()
	close(block)
	_ = m1.Stop()
	_ = j.Close()

	m2 := startManager(t, WithJournal(openJournal(t, path)), agent.WithIdentityFile(key))
	for id, want := range map[string]Status{"failed": StatusFailed, "cancelled": StatusCancelled} {
		info, err := m2.Task(ctx, id)
		if err != nil || info.Status != want {
			t.Fatalf("%s after the restart: %+v %v", id, info, err)
		}
	}
	info, err := m2.Task(ctx, "unfinished")
	if err != nil || info.Status != StatusPending || len(info.Attempts) != 1 {
		t.Fatalf("unfinished after the restart: %+v %v", info, err)
	}
	startWorker(t, m2, "W2", func(w *Worker) { w.Handle("block", noop) })
	if r, err := m2.Wait(ctx, "unfinished"); err != nil || !r.Success || r.Attempt != 2 {
		t.Fatalf("unfinished, run again: %+v %v", r, err)
	}
}

// When the journal cannot write, a submission is refused with the error
// (nothing is accepted that is not durable), and the manager goes on.
func TestJournalWriteErrors(t *testing.T) {
	t.Parallel()
	j := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	var fail sync.Mutex
	failing := false
	j.failWrite = func() error {
		fail.Lock()
		defer fail.Unlock()
		if failing {
			return errors.New("disk full")
		}
		return nil
	}
	m := startManager(t, WithJournal(j))
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) })
	ctx := testutil.Context(t)
	fail.Lock()
	failing = true
	fail.Unlock()
	err := m.Submit(ctx, messages.Task{ID: "lost", Type: "job", Description: "not durable"})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("submit while the journal fails: %v", err)
	}
	fail.Lock()
	failing = false
	fail.Unlock()
	if r := runTask(t, m, messages.Task{ID: "ok", Type: "job", Description: "durable again"}); !r.Success {
		t.Fatal(r)
	}
}

// A task too large for one frame to a worker is refused at Submit with a
// named error (its inputs count), never sent, and no worker is marked
// lost; one that fits runs, and so does the next small task.
func TestOversizedTaskIsRefusedAtSubmit(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("echo", func(_ context.Context, j *Job) ([]byte, error) { return j.Task.Input[:1], nil })
	})
	ctx := testutil.Context(t)
	err := m.Submit(ctx, messages.Task{ID: "big", Type: "echo", Description: "5 MiB", Input: make([]byte, 5<<20)})
	if !errors.Is(err, ErrTaskTooLarge) {
		t.Fatalf("5 MiB task: %v", err)
	}
	err = m.Submit(ctx, messages.Task{ID: "big-inputs", Type: "echo", Description: "small, with large inputs", Input: []byte{1}},
		DependenciesMet(map[string][]byte{"a": make([]byte, 3<<20), "b": make([]byte, 2<<20)}))
	if !errors.Is(err, ErrTaskTooLarge) {
		t.Fatalf("task with 5 MiB of inputs: %v", err)
	}
	if _, err := m.Task(ctx, "big"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("the refused task is known: %v", err)
	}
	fits := messages.Task{ID: "fits", Type: "echo", Description: "just under the limit", Input: make([]byte, m.Agent().MaxMessageSize()-1024)}
	if r := runTask(t, m, fits); !r.Success {
		t.Fatalf("a task that fits: %+v", r)
	}
	if r := runTask(t, m, messages.Task{ID: "small", Type: "echo", Description: "after", Input: []byte{2}}); !r.Success || r.Worker != "W" {
		t.Fatalf("a small task after: %+v", r)
	}
	if ws := workerStats(t, m, "W"); !ws.Connected {
		t.Fatalf("the worker was marked lost: %+v", ws)
	}
}

// Stats prints as the report table, lists every task (Tasks, in
// submission order) and keeps a worker that left, with its numbers.
func TestStatsReportAndTasks(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	w := startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, WithMaxConcurrency(3))
	ctx := testutil.Context(t)
	for i := range 3 {
		if r := runTask(t, m, messages.Task{ID: fmt.Sprint("t", i), Type: "job", Description: "d"}); !r.Success {
			t.Fatal(r)
		}
	}
	if err := m.Submit(ctx, messages.Task{ID: "waits", Type: "nobody", Description: "no worker runs it"}); err != nil {
		t.Fatal(err)
	}
	tasks, err := m.Tasks(ctx)
	if err != nil || len(tasks) != 4 || tasks[0].Task.ID != "t0" || tasks[3].Status.String() != "pending" {
		t.Fatalf("tasks: %+v %v", tasks, err)
	}
	_ = w.Stop()
	testutil.Eventually(t, "the worker gone", func() bool {
		st, _ := m.Stats(ctx)
		return len(st.Workers) == 1 && !st.Workers[0].Connected
	})
	st, err := m.Stats(ctx)
	if err != nil || st.Unfinished() != 1 || st.Workers[0].Results != 3 || st.Workers[0].Capacity != 3 {
		t.Fatalf("stats: %+v %v", st, err)
	}
	out := st.String()
	for _, want := range []string{"tasks: 4 submitted, 3 succeeded, 0 failed, 0 cancelled, 1 pending", "success rate 100.0%", "W", "100%"} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	js, err := json.Marshal(st)
	if err != nil || !strings.Contains(string(js), `"success_rate":1`) || !strings.Contains(string(js), `"capacity":3`) {
		t.Fatalf("json: %s %v", js, err)
	}
}

// A handler that returns why its context ended (context.Cause) does not
// get the cause added a second time to its error; one that returns
// something else gets it added, and errors.Is finds both.
func TestWithCause(t *testing.T) {
	cause := fmt.Errorf("%w: lease over", ErrCancelledByManager)
	if err := withCause(cause, cause); err.Error() != cause.Error() {
		t.Fatalf("the cause itself: %q", err)
	}
	if err := withCause(fmt.Errorf("wrapped: %w", cause), cause); strings.Count(err.Error(), "lease over") != 1 {
		t.Fatalf("a wrapped cause: %q", err)
	}
	if err := withCause(fmt.Errorf("stopped: %v", cause), cause); strings.Count(err.Error(), "lease over") != 1 {
		t.Fatalf("the cause's text: %q", err)
	}
	err := withCause(context.Canceled, cause)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrCancelledByManager) || err.Error() != "context canceled ("+cause.Error()+")" {
		t.Fatalf("another error: %q", err)
	}
	if err := withCause(nil, cause); err != nil {
		t.Fatalf("no error: %v", err)
	}
}
