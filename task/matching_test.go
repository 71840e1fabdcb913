package task

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

func TestResolvePolicyLayers(t *testing.T) {
	t.Parallel()
	d := Policy{Timeout: time.Minute, MaxRetries: 2, RetryInterval: time.Second, Backoff: messages.BackoffExponential, MaxRetryInterval: time.Minute}
	// A handler's options travel as the worker announces them.
	ho := HandlerOptions{Policy: Policy{Timeout: 10 * time.Second, MaxRetries: 5, MaxRetryInterval: 5 * time.Second}}
	hi := ho.typeInfo("job")
	h := &hi
	cases := []struct {
		name string
		task messages.Task
		h    *messages.TypeInfo
		want Policy
	}{
		{"defaults", messages.Task{}, nil, d},
		{"handler over defaults", messages.Task{}, h,
			Policy{Timeout: 10 * time.Second, MaxRetries: 5, RetryInterval: time.Second, Backoff: messages.BackoffExponential, MaxRetryInterval: 5 * time.Second}},
		{"task over handler", messages.Task{Timeout: time.Second, Backoff: messages.BackoffFixed}, h,
			Policy{Timeout: time.Second, MaxRetries: 5, RetryInterval: time.Second, Backoff: messages.BackoffFixed, MaxRetryInterval: 5 * time.Second}},
		{"task says no retries", messages.Task{MaxRetries: messages.NoRetry}, h,
			Policy{Timeout: 10 * time.Second, MaxRetries: 0, RetryInterval: time.Second, Backoff: messages.BackoffExponential, MaxRetryInterval: 5 * time.Second}},
	}
	for _, c := range cases {
		if got := resolvePolicy(&c.task, c.h, d); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	if got := (Policy{RetryInterval: 100 * time.Millisecond, Backoff: messages.BackoffExponential}).retryDelay(3); got != 400*time.Millisecond {
		t.Errorf("third exponential retry after %v", got)
	}
}

// The score is the documented formula: a smoothed success rate that starts
// at 50%, scaled by experience that saturates.
func TestWorkerScore(t *testing.T) {
	t.Parallel()
	cases := []struct {
		completed, successful int
		want                  float64
	}{
		{0, 0, 0.5 * 0.7},
		{10, 10, 11.0 / 12 * (0.7 + 0.3*10/30)},
		{10, 0, 1.0 / 12 * (0.7 + 0.3*10/30)}, // a failing worker ranks low despite experience
		{1000, 1000, 1001.0 / 1002 * (0.7 + 0.3*1000/1020)},
	}
	for _, c := range cases {
		w := &workerState{stats: WorkerStats{Results: c.completed, Successful: c.successful}}
		if got := w.score(); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("score(%d/%d) = %v, want %v", c.successful, c.completed, got, c.want)
		}
	}
	reliable := &workerState{stats: WorkerStats{Results: 10, Successful: 10}}
	veteran := &workerState{stats: WorkerStats{Results: 1000, Successful: 700}}
	if reliable.score() <= veteran.score() {
		t.Errorf("a 100%% worker with 10 tasks should outrank a 70%% worker with 1000")
	}
}

func TestRankingOfCandidates(t *testing.T) {
	t.Parallel()
	mk := func(name string, skill, completed, successful, inflight, max int) *workerState {
		w := &workerState{info: messages.WorkerInfo{Name: name, Skill: skill, MaxConcurrency: max},
			stats: WorkerStats{Results: completed, Successful: successful}, slots: map[slotKey]*slot{}}
		for i := range inflight {
			w.slots[slotKey{fmt.Sprint(i), 1}] = &slot{}
		}
		return w
	}
	task := &taskState{lastWorker: "flaky"}
	cases := []struct {
		name      string
		a         *workerState
		aCap      bool
		b         *workerState
		bCap      bool
		aIsBetter bool
	}{
		{"skilled beats unskilled", mk("a", 5, 0, 0, 0, 1), true, mk("b", 9, 100, 100, 0, 1), false, true},
		{"higher score", mk("a", 5, 10, 10, 0, 1), true, mk("b", 5, 10, 5, 0, 1), true, true},
		{"the worker that just failed it goes last", mk("flaky", 9, 100, 100, 0, 1), true, mk("b", 5, 0, 0, 0, 1), true, false},
		{"too hard for both: the more skilled", mk("a", 3, 0, 0, 0, 1), false, mk("b", 6, 0, 0, 0, 1), false, false},
		{"equal score: lighter load", mk("a", 5, 0, 0, 1, 4), true, mk("b", 5, 0, 0, 2, 4), true, true},
		{"then the smaller skill surplus", mk("a", 9, 0, 0, 0, 1), true, mk("b", 6, 0, 0, 0, 1), true, false},
		{"then the name", mk("a", 5, 0, 0, 0, 1), true, mk("b", 5, 0, 0, 0, 1), true, true},
	}
	for _, c := range cases {
		if got := better(c.a, c.aCap, c.b, c.bCap, task); got != c.aIsBetter {
			t.Errorf("%s: better = %v", c.name, got)
		}
	}
}

// Among ready tasks of equal priority, the hardest goes first, whatever
// the order they were submitted in.
func TestHardestFirst(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var order []int
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("skill", func(ctx context.Context, job *Job) ([]byte, error) {
			if job.Task.ID == "blocker" {
				<-release
			}
			mu.Lock()
			order = append(order, job.Task.Difficulty)
			mu.Unlock()
			return nil, nil
		})
	}, WithSkill(10))
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, skillTask("blocker", 1)); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, m, "blocker")
	for i, d := range []int{2, 8, 5, 10, 3} {
		if err := m.Submit(ctx, skillTask(fmt.Sprint(i), d)); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if _, err := m.Wait(ctx, "0"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[1 10 8 5 3 2]" {
		t.Fatalf("order of difficulties: %v", order)
	}
}
