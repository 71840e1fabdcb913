package task

import (
	"context"
	"errors"
	"fmt"
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

// Skill routing: Junior, Intermediate and Senior get the tasks of difficulty
// 2, 5 and 8, each one a worker skilled enough for it, and all succeed.
func TestNormalFlowAllSucceed(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	for _, w := range []struct {
		name  string
		skill int
	}{{"Junior", 3}, {"Intermediate", 6}, {"Senior", 9}} {
		startWorker(t, m, w.name, func(wa *Worker) { wa.Handle("skill", skillProcessor(time.Millisecond)) }, WithSkill(w.skill))
	}
	ctx := testutil.Context(t)
	var tasks []messages.Task
	for i, d := range []int{2, 5, 8} {
		tasks = append(tasks, skillTask(fmt.Sprint(i+1), d))
	}
	for _, task := range tasks {
		if err := m.Submit(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	for _, task := range tasks {
		r, err := m.Wait(ctx, task.ID)
		if err != nil {
			t.Fatal(err)
		}
		info, _ := m.Task(ctx, task.ID)
		if !r.Success || info.Status != StatusCompleted {
			t.Fatalf("task %s (difficulty %d): %+v", task.ID, task.Difficulty, r)
		}
		if s := workerStats(t, m, r.Worker); s.Skill < task.Difficulty {
			t.Fatalf("task of difficulty %d went to %s (skill %d)", task.Difficulty, r.Worker, s.Skill)
		}
	}
	rep, _ := m.Stats(ctx)
	if rep.Succeeded != 3 || rep.SuccessRate != 1 {
		t.Fatalf("report: %+v", rep)
	}
}

// Error flow: a task too hard for the only worker fails there
// (success=false) and the worker's success rate drops; a capable worker
// that joins later gets the next task and keeps 100%.
func TestErrorFlowWeakWorkerSuccessRateDrops(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	startWorker(t, m, "W1", func(w *Worker) { w.Handle("skill", skillProcessor(time.Millisecond)) }, WithSkill(3))
	hard := skillTask("hard", 6)
	hard.MaxRetries = messages.NoRetry
	r := runTask(t, m, hard)
	if r.Success || r.Worker != "W1" || r.ErrorMessage == "" {
		t.Fatalf("too hard task: %+v", r)
	}
	startWorker(t, m, "W2", func(w *Worker) { w.Handle("skill", skillProcessor(time.Millisecond)) }, WithSkill(7))
	if r := runTask(t, m, skillTask("easy", 4)); !r.Success || r.Worker != "W2" {
		t.Fatalf("task of difficulty 4: %+v", r)
	}
	if s := workerStats(t, m, "W1"); s.Results != 1 || s.SuccessRate() != 0 {
		t.Fatalf("W1 stats: %+v", s)
	}
	if s := workerStats(t, m, "W2"); s.Results != 1 || s.SuccessRate() != 1 {
		t.Fatalf("W2 stats: %+v", s)
	}
}

// Timeout flow: a stuck worker's lease runs out; the manager's cancel
// reaches the processor, the attempt counts as failed, and the retry runs
// on the other worker. The stuck attempt's late result is ignored.
func TestTimeoutCancelsAndRetriesElsewhere(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithDefaultPolicy(Policy{Timeout: time.Minute, MaxRetries: 1, RetryInterval: time.Millisecond}))
		causes := make(chan error, 10)
		// Equal workers are ranked by name, so Alpha gets the first attempt.
		startWorker(t, m, "Alpha", func(w *Worker) {
			w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
				<-ctx.Done()
				causes <- context.Cause(ctx)
				return nil, ctx.Err()
			})
		}, on)
		startWorker(t, m, "Bravo", func(w *Worker) { w.Handle("job", noop) }, on)
		task := messages.Task{ID: "t", Type: "job", Description: "gets stuck first", Timeout: 200 * time.Millisecond}
		r := runTask(t, m, task)
		if !r.Success || r.Worker != "Bravo" || r.Attempt != 2 {
			t.Fatalf("result after timeout: %+v", r)
		}
		select {
		case cause := <-causes:
			if !errors.Is(cause, ErrCancelledByManager) {
				t.Fatalf("processor context ended by %v, want the manager's cancel", cause)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the cancel never reached the stuck processor")
		}
		info, _ := m.Task(testutil.Context(t), "t")
		if len(info.Attempts) != 2 || info.Attempts[0].Outcome != "timeout" || info.Attempts[0].Worker != "Alpha" {
			t.Fatalf("attempts: %+v", info.Attempts)
		}
		if s := workerStats(t, m, "Alpha"); s.Results != 1 || s.Successful != 0 {
			t.Fatalf("stuck worker stats: %+v", s)
		}
		testutil.Eventually(t, "the stuck attempt's late result", func() bool {
			rep, _ := m.Stats(testutil.Context(t))
			return rep.LateResults == 1
		})
	})
}

func TestTimeoutWithoutRetryFails(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on)
		startWorker(t, m, "Stuck", func(w *Worker) {
			w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() })
		}, on)
		task := messages.Task{ID: "t", Type: "job", Description: "stuck", Timeout: 100 * time.Millisecond, MaxRetries: messages.NoRetry}
		r := runTask(t, m, task)
		if r.Success || !strings.Contains(r.ErrorMessage, ErrTaskTimeout.Error()) {
			t.Fatalf("result: %+v", r)
		}
		info, _ := m.Task(testutil.Context(t), "t")
		if info.Status != StatusFailed {
			t.Fatalf("status %v", info.Status)
		}
		// The stuck run ends when cancelled; its late result frees the slot
		// and is counted, not applied.
		testutil.Eventually(t, "the late result", func() bool {
			rep, _ := m.Stats(testutil.Context(t))
			return rep.LateResults == 1 && rep.Workers[0].InFlight == 0
		})
	})
}

// Retries wait RetryInterval, doubling each time.
func TestRetryExponentialBackoff(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithTick(5*time.Millisecond))
		startWorker(t, m, "W", func(w *Worker) {
			w.HandleWith("flaky", func(ctx context.Context, job *Job) ([]byte, error) {
				if job.Attempt < 4 {
					return nil, fmt.Errorf("attempt %d fails", job.Attempt)
				}
				return []byte("ok"), nil
			}, HandlerOptions{Policy: Policy{MaxRetries: 3, RetryInterval: 40 * time.Millisecond, Backoff: messages.BackoffExponential}})
		}, on)
		r := runTask(t, m, messages.Task{ID: "f", Type: "flaky", Description: "fails three times"})
		if !r.Success || r.Attempt != 4 {
			t.Fatalf("result: %+v", r)
		}
		info, _ := m.Task(testutil.Context(t), "f")
		var gaps []time.Duration
		for i := 1; i < len(info.Attempts); i++ {
			gaps = append(gaps, info.Attempts[i].AssignedAt.Sub(info.Attempts[i-1].EndedAt))
		}
		want := []time.Duration{40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond}
		for i, g := range gaps {
			// Virtual time: the gap is the interval, plus at most a tick.
			if g < want[i] || g > want[i]+10*time.Millisecond {
				t.Fatalf("retry %d came after %v, want %v (gaps %v)", i+1, g, want[i], gaps)
			}
		}
		if !(gaps[2] > gaps[1] && gaps[1] > gaps[0]) {
			t.Fatalf("gaps did not grow: %v", gaps)
		}
		// A processor error wrapping ErrSkipRetry is final.
		startWorker(t, m, "W2", func(w *Worker) {
			w.Handle("bad", func(context.Context, *Job) ([]byte, error) { return nil, fmt.Errorf("bad input: %w", ErrSkipRetry) })
		}, on)
		if r := runTask(t, m, messages.Task{ID: "b", Type: "bad", Description: "never retried"}); r.Success || r.Attempt != 1 {
			t.Fatalf("skip-retry result: %+v", r)
		}
	})
}

// A worker stopped mid-task: the manager requeues the task, another
// worker completes it, and no task completes twice.
func TestWorkerStoppedMidTask(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	var completions sync.Map // task -> *atomic.Int32
	count := func(id string) {
		v, _ := completions.LoadOrStore(id, new(atomic.Int32))
		v.(*atomic.Int32).Add(1)
	}
	started := make(chan struct{}, 10)
	quitter := startWorker(t, m, "Quitter", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			started <- struct{}{}
			<-ctx.Done() // holds the task until its worker stops
			return nil, ctx.Err()
		})
	}, WithMaxConcurrency(5))
	ctx := testutil.Context(t)
	for i := range 5 {
		if err := m.Submit(ctx, messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		<-started
	}
	startWorker(t, m, "Finisher", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) { count(job.Task.ID); return nil, nil })
	}, WithMaxConcurrency(5))
	if err := quitter.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		r, err := m.Wait(ctx, fmt.Sprint(i))
		if err != nil || !r.Success || r.Worker != "Finisher" {
			t.Fatalf("task %d: %+v, %v", i, r, err)
		}
	}
	completions.Range(func(k, v any) bool {
		if n := v.(*atomic.Int32).Load(); n != 1 {
			t.Errorf("task %v completed %d times", k, n)
		}
		return true
	})
	if rep, _ := m.Stats(ctx); rep.Requeued != 5 || rep.Succeeded != 5 {
		t.Fatalf("report: %+v", rep)
	}
}

// 1,000 tasks over 8 workers: each completes exactly once, the numbers add up.
func TestThousandTasksEightWorkers(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	var runs sync.Map
	for i := range 8 {
		startWorker(t, m, fmt.Sprintf("w%d", i), func(w *Worker) {
			w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
				if _, dup := runs.LoadOrStore(job.Task.ID, job.Worker); dup {
					return nil, fmt.Errorf("task %s ran twice", job.Task.ID)
				}
				return []byte(job.Task.ID), nil
			})
		}, WithMaxConcurrency(4))
	}
	ctx := testutil.Context(t)
	batch := make([]Submission, 1000)
	for i := range batch {
		batch[i].Task = messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "d"}
	}
	if err := m.SubmitAll(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		r, err := m.Wait(ctx, fmt.Sprint(i))
		if err != nil || !r.Success || string(r.Output) != fmt.Sprint(i) {
			t.Fatalf("task %d: %+v %v", i, r, err)
		}
	}
	rep, _ := m.Stats(ctx)
	total := 0
	for _, w := range rep.Workers {
		total += w.Results
		if w.Results != w.Successful {
			t.Errorf("worker %s: %d completed, %d successful", w.Name, w.Results, w.Successful)
		}
	}
	if total != 1000 || rep.Succeeded != 1000 || rep.Failed != 0 || rep.Pending != 0 || rep.Retried != 0 {
		t.Fatalf("report does not add up (worker total %d): %+v", total, rep)
	}
}

// A gpu task never goes to a worker without gpu; it waits (the submitter
// gets a clear error when it stops waiting) until a gpu worker joins.
func TestCapabilityRouting(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	startWorker(t, m, "cpu", func(w *Worker) { w.Handle("train", noop) }, WithSkill(10), WithMaxConcurrency(8))
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "g", Type: "train", Description: "needs a gpu", Capabilities: []string{"gpu"}}); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := m.Wait(short, "g"); !errors.Is(err, ErrNoEligibleWorker) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a gpu task with no gpu worker: %v", err)
	}
	if info, _ := m.Task(ctx, "g"); info.Status != StatusPending || len(info.Attempts) != 0 {
		t.Fatalf("gpu task was tried: %+v", info)
	}
	startWorker(t, m, "gpu", func(w *Worker) { w.Handle("train", noop) }, WithCapabilities("gpu", "high-memory"))
	if r, err := m.Wait(ctx, "g"); err != nil || !r.Success || r.Worker != "gpu" {
		t.Fatalf("gpu task: %+v %v", r, err)
	}
}

func TestSubmitValidation(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithProcessors("known"))
	ctx := testutil.Context(t)
	ok := messages.Task{ID: "a", Type: "known", Description: "d"}
	if err := m.Submit(ctx, ok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		task messages.Task
		want error
	}{
		{ok, ErrDuplicateTask},
		{messages.Task{ID: "b", Type: "known", Description: "d", Difficulty: 11}, messages.ErrDifficultyRange},
		{messages.Task{ID: "c", Type: ""}, messages.ErrEmptyType},
		{messages.Task{ID: "d", Type: "unknown", Description: "d"}, ErrUnknownProcessor},
		{messages.Task{ID: "e", Type: "known", Description: "d", Dependencies: []string{"a"}}, ErrUnresolvedDependencies},
	}
	for _, c := range cases {
		if err := m.Submit(ctx, c.task); !errors.Is(err, c.want) {
			t.Errorf("task %q: got %v, want %v", c.task.ID, err, c.want)
		}
	}
	// A batch with one bad task adds nothing.
	err := m.SubmitAll(ctx, []Submission{{Task: messages.Task{ID: "x", Type: "known", Description: "d"}}, {Task: ok}})
	if !errors.Is(err, ErrDuplicateTask) {
		t.Fatalf("batch: %v", err)
	}
	if _, err := m.Task(ctx, "x"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("half a batch was added: %v", err)
	}
}

// Higher priority tasks run first among ready tasks.
func TestPriority(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var order []string
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			if job.Task.ID == "blocker" {
				<-release
			}
			mu.Lock()
			order = append(order, job.Task.ID)
			mu.Unlock()
			return nil, nil
		})
	})
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "blocker", Type: "job", Description: "d"}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, m, "blocker")
	for _, p := range []struct {
		id   string
		prio int
	}{{"low", 1}, {"high", 9}, {"mid", 5}} {
		if err := m.Submit(ctx, messages.Task{ID: p.id, Type: "job", Description: "d", Priority: p.prio}); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if _, err := m.Wait(ctx, "low"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[blocker high mid low]" {
		t.Fatalf("order %v", order)
	}
}

// A worker that stops sending heartbeats loses its tasks to another.
func TestMissedHeartbeatsRequeue(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithHeartbeatTimeout(300*time.Millisecond), WithTick(10*time.Millisecond))
		startWorker(t, m, "Silent", func(w *Worker) {
			w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() })
		}, WithHeartbeatInterval(time.Hour), WithAckAfter(10*time.Millisecond), on)
		ctx := testutil.Context(t)
		if err := m.Submit(ctx, messages.Task{ID: "t", Type: "job", Description: "d"}); err != nil {
			t.Fatal(err)
		}
		waitAcked(t, m, "t")
		startWorker(t, m, "Alive", func(w *Worker) { w.Handle("job", noop) }, WithHeartbeatInterval(50*time.Millisecond), on)
		r, err := m.Wait(ctx, "t")
		if err != nil || !r.Success || r.Worker != "Alive" {
			t.Fatalf("result: %+v %v", r, err)
		}
		info, _ := m.Task(ctx, "t")
		if info.Attempts[0].Worker != "Silent" || info.Attempts[0].Outcome == "ok" {
			t.Fatalf("attempts: %+v", info.Attempts)
		}
	})
}

func TestShutdownEndsWorkers(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	var ws []*Worker
	for i := range 3 {
		ws = append(ws, startWorker(t, m, fmt.Sprint("w", i), func(w *Worker) { w.Handle("job", noop) }))
	}
	if r := runTask(t, m, messages.Task{ID: "t", Type: "job", Description: "d"}); !r.Success {
		t.Fatal(r)
	}
	if err := m.Shutdown(testutil.Context(t), "done"); err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		select {
		case <-w.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("worker %s did not stop", w.Name())
		}
	}
}

// waitAcked waits until the worker running task id has acknowledged it.
func waitAcked(t *testing.T, m *testManager, id string) {
	t.Helper()
	m.awaitEvent(t, "ack of "+id, func(ev Event) bool { return ev.Type == EventAcked && ev.TaskID == id })
}

// An output too large to send fails the task at once (not at the end of
// its lease), and for good.
func TestOversizedOutputFailsFast(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("big", func(context.Context, *Job) ([]byte, error) { return make([]byte, 5<<20), nil })
	})
	// The lease is longer than the test's context: only a fast failure
	// passes.
	task := messages.Task{ID: "big", Type: "big", Description: "too much output", Timeout: time.Hour}
	r := runTask(t, m, task)
	if r.Success || r.Attempt != 1 || !strings.Contains(r.ErrorMessage, "frame too large") {
		t.Fatalf("result: %+v", r)
	}
}

// A result for an attempt is taken only from the worker that holds it: a
// result another worker sends for it is refused, and the real one counts.
func TestResultFromAnotherWorkerIsRefused(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithProcessors("job"))
	release := make(chan struct{})
	var once sync.Once
	startWorker(t, m, "A", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			<-release
			return []byte("from A"), nil
		})
	})
	// After A's Stop is registered, so it runs first: a failure must not
	// leave A's processor stuck.
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	b := startWorker(t, m, "B", func(w *Worker) { w.Handle("other", noop) })
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "t", Type: "job", Description: "held by A"}); err != nil {
		t.Fatal(err)
	}
	m.awaitEvent(t, "the assignment to A", func(ev Event) bool { return ev.Type == EventAssigned && ev.Worker == "A" })
	forged := messages.TaskResult{TaskID: "t", Attempt: 1, Worker: "A", Success: true, Output: []byte("forged"), Final: true}
	if err := b.Agent().Send(ctx, m.Agent().ID(), forged); err != nil {
		t.Fatal(err)
	}
	// The forged result is handled (and ignored) before A's real one,
	// which comes only now.
	testutil.Eventually(t, "the forged result handled", func() bool {
		rep, _ := m.Stats(ctx)
		info, _ := m.Task(ctx, "t")
		return rep.LateResults == 1 || info.Status == StatusCompleted
	})
	if info, _ := m.Task(ctx, "t"); info.Status == StatusCompleted {
		t.Fatalf("the forged result was taken: %+v", info)
	}
	once.Do(func() { close(release) })
	r, err := m.Wait(ctx, "t")
	if err != nil || string(r.Output) != "from A" || r.Worker != "A" {
		t.Fatalf("result: %+v %v", r, err)
	}
}

// Waiting for no workers returns at once without asking the manager's
// actor, so a context that has already ended (or a short one, on a busy
// manager) does not fail it: the playground's Start with no workers
// failed so under load, with a 50 ms wait timeout.
func TestWaitForNoWorkers(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := m.WaitForWorkers(ctx, 0); err != nil {
			t.Fatalf("WaitForWorkers(0): %v", err)
		}
		if err := m.WaitForWorkerNames(ctx); err != nil {
			t.Fatalf("WaitForWorkerNames(): %v", err)
		}
		if err := m.WaitForWorkers(ctx, 1); !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitForWorkers(1) with an ended context: %v", err)
		}
	})
}
