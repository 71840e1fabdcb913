package playground

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

func TestMain(m *testing.M) {
	if join := os.Getenv("PLAYGROUND_REMOTE_WORKER"); join != "" {
		runRemoteWorker(join)
		return
	}
	if join := os.Getenv(benchWorkersEnv); join != "" {
		runBenchWorkers(join)
		return
	}
	races := testutil.CatchChildRaces()
	os.Exit(races.Check(testutil.CheckLeaks(m.Run())))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func start(t *testing.T, workers []Worker, opts ...Option) *Playground {
	t.Helper()
	p, err := New(append([]Option{WithWorkspace("pg-" + t.Name())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(testCtx(t), workers...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
	})
	return p
}

// sum adds the task's input (an int) and every input from dependencies.
func sum(ctx context.Context, req *Request) ([]byte, error) {
	var total int
	if len(req.Task.Input) > 0 {
		if err := req.DecodeInput(&total); err != nil {
			return nil, err
		}
	}
	for id := range req.Inputs {
		var v int
		if err := req.DecodeDependency(id, &v); err != nil {
			return nil, err
		}
		total += v
	}
	return Encode(total)
}

func sumWorkers(n int) []Worker {
	var ws []Worker
	for i := range n {
		ws = append(ws, Worker{Name: fmt.Sprint("sum-", i), Processor: "sum", Handler: sum, Concurrency: 8})
	}
	return ws
}

func intResult(t *testing.T, r Result) int {
	t.Helper()
	var v int
	if err := Decode(r.Output, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDiamondOutputsMeetAtTheJoin(t *testing.T) {
	onMemnet(t, func(t *testing.T, on Option) {
		p := start(t, sumWorkers(2), on)
		ctx := testCtx(t)
		_, err := p.AddTasks(ctx,
			Task{ID: "a", Type: "sum", Input: MustEncode(1)},
			Task{ID: "b", Type: "sum", Input: MustEncode(10), Dependencies: []string{"a"}},
			Task{ID: "c", Type: "sum", Input: MustEncode(100), Dependencies: []string{"a"}},
			Task{ID: "d", Type: "sum", Dependencies: []string{"b", "c"}},
		)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.Wait(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		// b = 11, c = 101: d sees both.
		if got := intResult(t, r); got != 112 {
			t.Fatalf("d = %d, want 112", got)
		}
		// Each dependency finished, and successfully, before the join ran.
		rd, err := p.Result("d")
		if err != nil || !rd.Success {
			t.Fatalf("d: %+v %v", rd, err)
		}
		for _, id := range []string{"a", "b", "c"} {
			ra, err := p.Result(id)
			if err != nil || !ra.Success {
				t.Fatalf("%s: %+v %v", id, ra, err)
			}
		}
	})
}

func TestChainOfAThousand(t *testing.T) {
	t.Parallel()
	p := start(t, sumWorkers(2))
	ctx := testCtx(t)
	tasks := []Task{{ID: "0", Type: "sum", Input: MustEncode(0)}}
	for i := 1; i < 1000; i++ {
		tasks = append(tasks, Task{ID: fmt.Sprint(i), Type: "sum", Input: MustEncode(1), Dependencies: []string{fmt.Sprint(i - 1)}})
	}
	if _, err := p.AddTasks(ctx, tasks...); err != nil {
		t.Fatal(err)
	}
	r, err := p.Wait(ctx, "999")
	if err != nil {
		t.Fatal(err)
	}
	if got := intResult(t, r); got != 999 {
		t.Fatalf("end of chain = %d, want 999", got)
	}
}

func TestFanOutOfAThousand(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int32
	slow := func(ctx context.Context, req *Request) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		return sum(ctx, req)
	}
	var ws []Worker
	for i := range 4 {
		ws = append(ws, Worker{Name: fmt.Sprint("w", i), Processor: "sum", Handler: slow, Concurrency: 4})
	}
	p := start(t, ws)
	ctx := testCtx(t)
	tasks := []Task{{ID: "root", Type: "sum", Input: MustEncode(1)}}
	var leaves []string
	for i := range 1000 {
		id := fmt.Sprint("leaf-", i)
		leaves = append(leaves, id)
		tasks = append(tasks, Task{ID: id, Type: "sum", Dependencies: []string{"root"}})
	}
	tasks = append(tasks, Task{ID: "join", Type: "sum", Dependencies: leaves})
	if _, err := p.AddTasks(ctx, tasks...); err != nil {
		t.Fatal(err)
	}
	r, err := p.Wait(ctx, "join")
	if err != nil {
		t.Fatal(err)
	}
	if got := intResult(t, r); got != 1000 {
		t.Fatalf("join = %d, want 1000", got)
	}
	// Independent tasks ran in parallel, up to the workers' capacity.
	if pk := peak.Load(); pk < 4 || pk > 16 {
		t.Fatalf("peak parallelism %d, want between 4 and 16", pk)
	}
}

func TestFailurePropagatesTransitively(t *testing.T) {
	onMemnet(t, func(t *testing.T, on Option) {
		var ran sync.Map
		ws := []Worker{
			{Name: "ok", Processor: "sum", Handler: func(ctx context.Context, r *Request) ([]byte, error) {
				ran.Store(r.Task.ID, true)
				return sum(ctx, r)
			}, Concurrency: 4},
			{Name: "bad", Processor: "fail", Handler: func(context.Context, *Request) ([]byte, error) {
				return nil, errors.New("boom")
			}, Options: task.HandlerOptions{Policy: task.Policy{MaxRetries: -1}}},
		}
		p := start(t, ws, on)
		ctx := testCtx(t)
		if _, err := p.AddTasks(ctx,
			Task{ID: "a", Type: "fail"},
			Task{ID: "b", Type: "sum", Dependencies: []string{"a"}},
			Task{ID: "c", Type: "sum", Dependencies: []string{"b"}},
			Task{ID: "side", Type: "sum", Input: MustEncode(1)},
		); err != nil {
			t.Fatal(err)
		}
		_, err := p.Wait(ctx, "a")
		if !errors.Is(err, ErrTaskFailed) || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("a: %v", err)
		}
		for _, id := range []string{"b", "c"} {
			r, err := p.Wait(ctx, id)
			if !errors.Is(err, ErrDependencyFailed) || r.Success {
				t.Fatalf("%s: %+v %v", id, r, err)
			}
			if _, ran := ran.Load(id); ran {
				t.Fatalf("%s ran although its dependency failed", id)
			}
		}
		_, err = p.Wait(ctx, "c")
		if !strings.Contains(err.Error(), `"b"`) || !strings.Contains(err.Error(), `"a"`) {
			t.Fatalf("c's error should name the chain b, a: %v", err)
		}
		if _, err := p.Wait(ctx, "side"); err != nil {
			t.Fatalf("independent task: %v", err)
		}
		// A task added later on top of a failed one fails at once.
		if _, err := p.AddAndExecuteTask(ctx, Task{ID: "late", Type: "sum", Dependencies: []string{"c"}}); !errors.Is(err, ErrDependencyFailed) {
			t.Fatalf("late: %v", err)
		}
		st, err := p.Task(ctx, "c")
		if err != nil || st.Status != task.StatusFailed {
			t.Fatalf("status of c: %+v %v", st, err)
		}
	})
}

func TestRejectsCyclesAndUnknownDependencies(t *testing.T) {
	t.Parallel()
	p := start(t, sumWorkers(1))
	ctx := testCtx(t)
	_, err := p.AddTasks(ctx,
		Task{ID: "x", Type: "sum"},
		Task{ID: "a", Type: "sum", Dependencies: []string{"c"}},
		Task{ID: "b", Type: "sum", Dependencies: []string{"a"}},
		Task{ID: "c", Type: "sum", Dependencies: []string{"b", "x"}},
	)
	if !errors.Is(err, ErrCycle) || !strings.Contains(err.Error(), "a -> c -> b -> a") {
		t.Fatalf("cycle: %v", err)
	}
	_, err = p.AddTasks(ctx, Task{ID: "y", Type: "sum"}, Task{ID: "z", Type: "sum", Dependencies: []string{"nope"}})
	if !errors.Is(err, ErrUnknownDependency) {
		t.Fatalf("unknown dependency: %v", err)
	}
	for _, id := range []string{"x", "a", "y", "z"} {
		if _, err := p.Task(ctx, id); !errors.Is(err, ErrUnknownTask) {
			t.Fatalf("%s was added from a rejected batch: %v", id, err)
		}
	}
	if _, err := p.AddTasks(ctx, Task{ID: "s", Type: "sum", Dependencies: []string{"s"}}); !errors.Is(err, messages.ErrSelfDependency) {
		t.Fatalf("self dependency: %v", err)
	}
	// The shortest cycle between two tasks is refused too.
	if _, err := p.AddTasks(ctx, Task{ID: "p", Type: "sum", Dependencies: []string{"q"}}, Task{ID: "q", Type: "sum", Dependencies: []string{"p"}}); !errors.Is(err, ErrCycle) {
		t.Fatalf("two-task cycle: %v", err)
	}
	if _, err := p.AddTasks(ctx, Task{ID: "d", Type: "sum"}, Task{ID: "d", Type: "sum"}); !errors.Is(err, ErrDuplicateTask) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestNoWaitThenFetch(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	p := start(t, []Worker{{Name: "w", Processor: "gate", Handler: func(ctx context.Context, r *Request) ([]byte, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return []byte("done"), nil
	}}})
	ctx := testCtx(t)
	r, err := p.AddAndExecuteTask(ctx, Task{Name: "gated", Type: "gate"}, NoWait())
	if err != nil || r.TaskID == "" {
		t.Fatalf("no-wait add: %+v %v", r, err)
	}
	if _, err := p.Result(r.TaskID); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("result before it ran: %v", err)
	}
	close(release)
	got, err := p.Wait(ctx, r.TaskID)
	if err != nil || string(got.Output) != "done" {
		t.Fatalf("wait: %+v %v", got, err)
	}
	again, err := p.Result(r.TaskID)
	if err != nil || string(again.Output) != "done" {
		t.Fatalf("fetch: %+v %v", again, err)
	}
	st, err := p.Task(ctx, r.TaskID)
	if err != nil || st.Status != task.StatusCompleted || st.Worker != "w" || len(st.Attempts) != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
}

func TestHundredConcurrentCallers(t *testing.T) {
	t.Parallel()
	p := start(t, sumWorkers(4))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.AddAndExecuteTask(ctx, Task{Type: "sum", Input: MustEncode(i)})
			if err != nil {
				errs <- err
				return
			}
			var v int
			if err := Decode(r.Output, &v); err != nil || v != i {
				errs <- fmt.Errorf("caller %d got %d (%v)", i, v, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if pr := p.Progress(); pr.Total != 100 || pr.Finished != 100 || pr.Failed != 0 {
		t.Fatalf("progress %+v", pr)
	}
}

func TestChildTasks(t *testing.T) {
	t.Parallel()
	split := func(ctx context.Context, r *Request) ([]byte, error) {
		var n int
		_ = r.DecodeInput(&n)
		for i := range n {
			r.Spawn(Task{Type: "sum", Input: MustEncode(i + 1)})
		}
		return Encode(0)
	}
	p := start(t, append(sumWorkers(2), Worker{Name: "splitter", Processor: "split", Handler: split}))
	ctx := testCtx(t)
	if _, err := p.AddTasks(ctx,
		Task{ID: "parent", Type: "split", Input: MustEncode(3)},
		Task{ID: "total", Type: "sum", Dependencies: []string{"parent"}},
	); err != nil {
		t.Fatal(err)
	}
	r, err := p.Wait(ctx, "total")
	if err != nil {
		t.Fatal(err)
	}
	// total sees the parent's output (0) and its children's (1+2+3).
	if got := intResult(t, r); got != 6 {
		t.Fatalf("total = %d, want 6", got)
	}
	for i := range 3 {
		if _, err := p.Result(fmt.Sprintf("parent/%d", i)); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	st, _ := p.Task(ctx, "parent")
	child, _ := p.Task(ctx, "parent/2")
	if st.Status != task.StatusCompleted || st.FinishedAt.Before(child.FinishedAt) {
		t.Fatalf("parent finished %v, before its child %v", st.FinishedAt, child.FinishedAt)
	}
}

func TestChildFailureFailsParent(t *testing.T) {
	onMemnet(t, func(t *testing.T, on Option) {
		p := start(t, []Worker{
			{Name: "s", Processor: "split", Handler: func(ctx context.Context, r *Request) ([]byte, error) {
				r.Spawn(Task{ID: "kid", Type: "fail"})
				return nil, nil
			}},
			{Name: "f", Processor: "fail", Handler: func(context.Context, *Request) ([]byte, error) {
				return nil, errors.New("kid broke")
			}, Options: task.HandlerOptions{Policy: task.Policy{MaxRetries: -1}}},
		}, on)
		_, err := p.AddAndExecuteTask(testCtx(t), Task{ID: "parent", Type: "split"})
		if !errors.Is(err, ErrChildFailed) || !strings.Contains(err.Error(), "kid broke") {
			t.Fatalf("parent: %v", err)
		}
	})
}

func TestStartNamesMissingWorkers(t *testing.T) {
	onMemnet(t, func(t *testing.T, on Option) {
		p, err := New(WithWorkspace("missing"), WithRemoteWorkerNames("far-away"), WithWaitTimeout(300*time.Millisecond), on)
		if err != nil {
			t.Fatal(err)
		}
		err = p.Start(testCtx(t), sumWorkers(1)...)
		if !errors.Is(err, task.ErrWorkersMissing) || !strings.Contains(err.Error(), "far-away") {
			t.Fatalf("start: %v", err)
		}
	})
}

// runRemoteWorker is a worker in another OS process that joins a
// playground by address.
func runRemoteWorker(join string) {
	w := Worker{Name: "remote", Processor: "where", Handler: func(ctx context.Context, r *Request) ([]byte, error) {
		return []byte(fmt.Sprintf("pid %d", os.Getpid())), nil
	}, Concurrency: 4}
	wa, err := w.Agent(agent.WithJoin(join), agent.WithWorkspace("pg-remote"), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		panic(err)
	}
	if err := wa.Start(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("JOINED")
	<-wa.Done()
}

func TestRemoteWorkerProcess(t *testing.T) {
	t.Parallel()
	listening := make(chan string, 1)
	p, err := New(WithWorkspace("pg-remote"), WithRemoteWorkerNames("remote"),
		WithListening(func(addrs []string) { listening <- addrs[0] }))
	if err != nil {
		t.Fatal(err)
	}
	// Start in the background: it waits for the remote worker.
	started := make(chan error, 1)
	go func() { started <- p.Start(testCtx(t)) }()
	addr := <-listening
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PLAYGROUND_REMOTE_WORKER="+addr)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	ctx := testCtx(t)
	for i := range 20 {
		r, err := p.AddAndExecuteTask(ctx, Task{ID: fmt.Sprint(i), Type: "where"})
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("pid %d", cmd.Process.Pid); string(r.Output) != want || r.Worker != "remote" {
			t.Fatalf("task ran at %q by %s, want %q", r.Output, r.Worker, want)
		}
	}
	// Stop shuts the remote worker down: its process exits by itself.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("remote worker: %v", err)
	}
}

func TestMonitorServesStats(t *testing.T) {
	t.Parallel()
	p := start(t, sumWorkers(1), WithHTTP("127.0.0.1:0"))
	if _, err := p.AddAndExecuteTask(testCtx(t), Task{Type: "sum", Input: MustEncode(1)}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(p.MonitorURL() + "stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s task.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	if s.Succeeded != 1 || len(s.Workers) != 1 || s.Workers[0].Name != "sum-0" {
		t.Fatalf("stats: %+v", s)
	}
}

// Cancel: a waiting task never runs, a running one is told to stop, and
// the dependents of either fail with ErrDependencyFailed, transitively.
func TestCancelPropagates(t *testing.T) {
	onMemnet(t, func(t *testing.T, on Option) {
		started := make(chan struct{}, 1)
		p := start(t, append(sumWorkers(1), Worker{Name: "gate", Processor: "gate", Handler: func(ctx context.Context, r *Request) ([]byte, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}}), on)
		ctx := testCtx(t)
		if _, err := p.AddTasks(ctx,
			Task{ID: "run", Type: "gate"},
			Task{ID: "wait", Type: "sum", Dependencies: []string{"run"}},
			Task{ID: "after-wait", Type: "sum", Dependencies: []string{"wait"}},
			Task{ID: "after-run", Type: "sum", Dependencies: []string{"run"}},
		); err != nil {
			t.Fatal(err)
		}
		<-started
		// Cancel a waiting task: it and what depends on it end; "run" goes on.
		if err := p.Cancel(ctx, "wait"); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(ctx, "wait"); !errors.Is(err, ErrCancelled) {
			t.Fatalf("wait: %v", err)
		}
		if _, err := p.Wait(ctx, "after-wait"); !errors.Is(err, ErrDependencyFailed) {
			t.Fatalf("after-wait: %v", err)
		}
		if info, _ := p.Task(ctx, "run"); info.Status.Final() {
			t.Fatalf("run ended with its dependent's cancel: %+v", info)
		}
		// Cancel the running task: its processor is stopped, and its other
		// dependent fails.
		if err := p.Cancel(ctx, "run"); err != nil {
			t.Fatal(err)
		}
		if r, err := p.Wait(ctx, "run"); r.Success || err == nil {
			t.Fatalf("run: %+v %v", r, err)
		}
		if _, err := p.Wait(ctx, "after-run"); !errors.Is(err, ErrDependencyFailed) {
			t.Fatalf("after-run: %v", err)
		}
		if err := p.Cancel(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
			t.Fatalf("cancel unknown: %v", err)
		}
	})
}

// WaitAll waits for every task named (or all) and reports each result; a
// task added with a dependency that has already completed runs at once,
// with that dependency's output.
func TestWaitAllAndCompletedDependencies(t *testing.T) {
	onMemnet(t, func(t *testing.T, on Option) {
		p := start(t, sumWorkers(2), on)
		ctx := testCtx(t)
		if _, err := p.AddTasks(ctx, Task{ID: "a", Type: "sum", Input: MustEncode(2)}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		// "a" is done: "b" depends on it and runs with its output.
		if _, err := p.AddTasks(ctx, Task{ID: "b", Type: "sum", Input: MustEncode(3), Dependencies: []string{"a"}},
			Task{ID: "c", Type: "sum", Input: MustEncode(4)}); err != nil {
			t.Fatal(err)
		}
		all, err := p.WaitAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 {
			t.Fatalf("WaitAll returned %d results", len(all))
		}
		for id, want := range map[string]int{"a": 2, "b": 5, "c": 4} {
			if got := intResult(t, all[id]); got != want {
				t.Fatalf("%s = %d, want %d", id, got, want)
			}
		}
		some, err := p.WaitAll(ctx, "b")
		if err != nil || len(some) != 1 || intResult(t, some["b"]) != 5 {
			t.Fatalf("WaitAll(b): %v %v", some, err)
		}
	})
}

// The playground's sentinels are the task layer's, so errors.Is works
// across layers; Stop ends waits with ErrStopped, and what the graph holds
// stays readable after it.
func TestErrorsAcrossLayersAndAfterStop(t *testing.T) {
	t.Parallel()
	p, err := New(WithWorkspace("pg-" + t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if _, err := p.AddTasks(ctx, Task{ID: "early", Type: "sum"}); !errors.Is(err, ErrNotStarted) || !errors.Is(err, agent.ErrNotStarted) {
		t.Fatalf("add before Start: %v", err)
	}
	if err := p.Start(ctx, sumWorkers(1)...); err != nil {
		t.Fatal(err)
	}
	if err := p.Cancel(ctx, "nope"); !errors.Is(err, task.ErrUnknownTask) {
		t.Fatalf("cancel unknown: %v", err)
	}
	if _, err := p.AddTasks(ctx, Task{ID: "never", Type: "sum", Dependencies: []string{"nope"}}); !errors.Is(err, ErrUnknownDependency) {
		t.Fatalf("unknown dependency: %v", err)
	}
	if _, err := p.AddTasks(ctx, Task{ID: "stuck", Type: "nobody-runs-this"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddTasks(ctx, Task{ID: "stuck", Type: "sum"}); !errors.Is(err, task.ErrDuplicateTask) {
		t.Fatalf("duplicate: %v", err)
	}
	waited := make(chan error, 1)
	go func() { _, err := p.Wait(ctx, "stuck"); waited <- err }()
	testutil.Eventually(t, "the task pending", func() bool {
		st, err := p.Task(ctx, "stuck")
		return err == nil && st.Status == task.StatusPending
	})
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; !errors.Is(err, ErrStopped) {
		t.Fatalf("wait across Stop: %v", err)
	}
	if _, err := p.AddTasks(ctx, Task{ID: "late", Type: "sum"}); !errors.Is(err, ErrStopped) {
		t.Fatalf("add after Stop: %v", err)
	}
	if _, err := p.Result("stuck"); !errors.Is(err, ErrNotFinished) {
		t.Fatalf("result after Stop: %v", err)
	}
	if pr := p.Progress(); pr.Total != 1 || pr.Finished != 0 {
		t.Fatalf("progress after Stop: %+v", pr)
	}
}

// A task too large for a frame is refused when added, with the task
// layer's named error, and nothing of its batch is added.
func TestOversizedTaskIsRefusedWhenAdded(t *testing.T) {
	t.Parallel()
	p := start(t, sumWorkers(1))
	ctx := testCtx(t)
	_, err := p.AddAndExecuteTask(ctx, Task{ID: "big2", Type: "sum", Input: make([]byte, 5<<20)}, NoWait())
	if !errors.Is(err, task.ErrTaskTooLarge) {
		t.Fatalf("5 MiB task: %v", err)
	}
	if _, err := p.Task(ctx, "big2"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("the refused task was added: %v", err)
	}
	r, err := p.AddAndExecuteTask(ctx, Task{ID: "small", Type: "sum", Input: MustEncode(3)})
	if err != nil || intResult(t, r) != 3 {
		t.Fatalf("a small task after: %+v %v", r, err)
	}
}

// A task the manager refuses (here: a type no worker runs, with the
// manager told its processors) fails with the manager's reason, alone:
// the rest of its batch runs.
func TestTaskRefusedByTheManagerFailsAlone(t *testing.T) {
	t.Parallel()
	p := start(t, sumWorkers(1), WithManagerOptions(task.WithProcessors("sum")))
	ctx := testCtx(t)
	if _, err := p.AddTasks(ctx, Task{ID: "ok", Type: "sum", Input: MustEncode(1)}, Task{ID: "refused", Type: "other"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx, "refused"); !errors.Is(err, ErrTaskFailed) || !strings.Contains(err.Error(), "no such processor") {
		t.Fatalf("refused: %v", err)
	}
	if r, err := p.Wait(ctx, "ok"); err != nil || intResult(t, r) != 1 {
		t.Fatalf("ok: %+v %v", r, err)
	}
}

// A playground whose manager requires grants gives its own workers
// theirs: tasks run as in an open one.
func TestStrictPlaygroundRunsItsOwnWorkers(t *testing.T) {
	t.Parallel()
	p := start(t, sumWorkers(2), WithManagerOptions(task.WithGrantsRequired()))
	ctx := testCtx(t)
	if _, err := p.AddTasks(ctx, Task{ID: "a", Type: "sum", Input: MustEncode(1)}, Task{ID: "b", Type: "sum", Input: MustEncode(2), Dependencies: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if r, err := p.Wait(ctx, "b"); err != nil || intResult(t, r) != 3 {
		t.Fatalf("b: %+v %v", r, err)
	}
}

// onMemnet runs a test on an in-memory network in a synctest bubble (its
// timers are virtual); on puts every agent of a playground on it.
func onMemnet(t *testing.T, test func(t *testing.T, on Option)) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		testutil.SettleActors(t)
		net := memnet.New()
		test(t, WithAgentOptions(agent.WithNetwork(net.Factory())))
	})
}

// The listen rule: a playground with only local workers listens on
// loopback; one that waits for remote workers listens as any agent does,
// on every interface (with a secret too), non-loopback addresses first.
func TestListenRule(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name     string
		opts     []Option
		loopOnly bool
	}{
		{"local", nil, true},
		{"remote", []Option{WithRemoteWorkers(1)}, false},
		{"remote-secret", []Option{WithRemoteWorkers(1), WithSecret("s")}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var addrs []string
			opts := append([]Option{WithWorkspace("ws-" + t.Name()), WithWaitTimeout(50 * time.Millisecond),
				WithListening(func(a []string) { addrs = a })}, c.opts...)
			p, err := New(opts...)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Start(testCtx(t))
			if c.loopOnly {
				if err != nil {
					t.Fatal(err)
				}
				defer p.Stop()
			} else if !errors.Is(err, task.ErrWorkersMissing) {
				t.Fatalf("start without the remote worker: %v", err)
			}
			if len(addrs) == 0 {
				t.Fatal("no addresses")
			}
			loop := strings.Contains(addrs[0], "/ip4/127.") || strings.Contains(addrs[0], "/ip6/::1/")
			if loop != c.loopOnly {
				if !c.loopOnly && !hasNonLoopbackInterface() {
					t.Skip("no interface other than loopback here")
				}
				t.Fatalf("first address %s (loopback %v), want loopback only %v; all: %v", addrs[0], loop, c.loopOnly, addrs)
			}
		})
	}
}

func hasNonLoopbackInterface() bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return true
		}
	}
	return false
}

// A worker needs a name and at least one processor, each with a handler.
func TestWorkerValidation(t *testing.T) {
	h := func(context.Context, *Request) ([]byte, error) { return nil, nil }
	for _, w := range []Worker{
		{Processor: "x", Handler: h},
		{Name: "w"},
		{Name: "w", Processor: "x"},
		{Name: "w", Handler: h},
		{Name: "w", Processors: map[string]Handler{"": h}},
		{Name: "w", Processors: map[string]Handler{"x": nil}},
		{Name: "w", Processor: "x", Handler: h, Processors: map[string]Handler{"x": h}},
	} {
		if _, err := w.Agent(); !errors.Is(err, ErrInvalidWorker) {
			t.Errorf("%+v: %v", w, err)
		}
	}
	if _, err := (Worker{Name: "w", Processors: map[string]Handler{"x": h, "y": h}}).Agent(); err != nil {
		t.Fatal(err)
	}
}

// A producer on another agent adds a DAG to the playground and waits for
// its results; the playground's refusals and failures come back as its
// named errors.
func TestRemoteClient(t *testing.T) {
	t.Parallel()
	var addr string
	p := start(t, sumWorkers(2), WithListening(func(addrs []string) { addr = addrs[0] }))
	ctx := testCtx(t)
	a, err := agent.New("producer", agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace(p.Manager().Agent().Workspace()), agent.WithJoin(addr))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	ids, err := c.AddTasks(ctx,
		Task{ID: "a", Type: "sum", Input: MustEncode(1)},
		Task{ID: "b", Type: "sum", Input: MustEncode(2), Dependencies: []string{"a"}})
	if err != nil || len(ids) != 2 {
		t.Fatalf("%v %v", ids, err)
	}
	if r, err := c.Wait(ctx, "b"); err != nil || intResult(t, r) != 3 {
		t.Fatalf("b: %+v %v", r, err)
	}
	if r, err := c.AddAndExecuteTask(ctx, Task{ID: "c", Type: "sum", Input: MustEncode(5), Dependencies: []string{"b"}}); err != nil || intResult(t, r) != 8 {
		t.Fatalf("c: %+v %v", r, err)
	}
	if _, err := c.AddTasks(ctx, Task{ID: "x", Type: "sum", Dependencies: []string{"y"}}, Task{ID: "y", Type: "sum", Dependencies: []string{"x"}}); !errors.Is(err, ErrCycle) {
		t.Fatalf("a cycle: %v", err)
	}
	if _, err := c.AddTasks(ctx, Task{ID: "a", Type: "sum"}); !errors.Is(err, ErrDuplicateTask) {
		t.Fatalf("a duplicate: %v", err)
	}
	if _, err := c.AddTasks(ctx, Task{ID: "z", Type: "sum", Dependencies: []string{"nope"}}); !errors.Is(err, ErrUnknownDependency) {
		t.Fatalf("an unknown dependency: %v", err)
	}
	if _, err := c.Wait(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("wait for nothing: %v", err)
	}
	if _, err := p.AddTasks(ctx, Task{ID: "bad", Type: "nobody"}, Task{ID: "after", Type: "sum", Input: MustEncode(1), Dependencies: []string{"bad"}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Cancel(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, "after"); !errors.Is(err, ErrDependencyFailed) {
		t.Fatalf("a task after a failed one: %v", err)
	}
}
