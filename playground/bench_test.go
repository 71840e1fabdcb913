package playground

// DAG benchmarks: a playground here, 4 no-op workers in a child process
// (the test binary re-executed; see TestMain).

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/task"
)

const benchWorkersEnv = "PLAYGROUND_BENCH_WORKERS"

func noopHandler(context.Context, *Request) ([]byte, error) { return nil, nil }

// runBenchWorkers runs 4 no-op workers joined to join until shut down.
func runBenchWorkers(join string) {
	var was []*task.Worker
	for i := range 4 {
		w := Worker{Name: fmt.Sprint("bench-", i), Processor: "noop", Handler: noopHandler, Concurrency: 256}
		wa, err := w.Agent(agent.WithJoin(join), agent.WithWorkspace("pg-bench"), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			panic(err)
		}
		if err := wa.Start(context.Background()); err != nil {
			panic(err)
		}
		was = append(was, wa)
	}
	fmt.Println("READY")
	for _, wa := range was {
		<-wa.Done()
	}
}

func startBench(b *testing.B) *Playground {
	b.Helper()
	var cmd *exec.Cmd
	p, err := New(WithWorkspace("pg-bench"), WithRemoteWorkers(4), WithListening(func(addrs []string) {
		cmd = exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), benchWorkersEnv+"="+addrs[0])
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			panic(err)
		}
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
			}
		}()
	}))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = p.Stop() // shuts the child's workers down
		_ = cmd.Wait()
	})
	return p
}

// randomDAG builds n no-op tasks; task i depends on up to two distinct
// earlier tasks picked at random (average in-degree just under 2).
func randomDAG(n int, prefix string, withDeps bool) []Task {
	r := rand.New(rand.NewPCG(1, 2))
	tasks := make([]Task, n)
	for i := range tasks {
		tasks[i] = Task{ID: fmt.Sprint(prefix, i), Type: "noop", Description: "noop"}
		if withDeps && i >= 2 {
			a, c := r.IntN(i), r.IntN(i-1)
			if c >= a {
				c++
			}
			tasks[i].Dependencies = []string{fmt.Sprint(prefix, a), fmt.Sprint(prefix, c)}
		}
	}
	return tasks
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runAll adds the tasks and waits for them all; it returns wall and CPU
// time of this (the admin) process.
func runAll(b *testing.B, p *Playground, tasks []Task) (wall, cpu time.Duration) {
	ctx := context.Background()
	runtime.GC()
	c0, t0 := cpuTime(), time.Now()
	if _, err := p.AddTasks(ctx, tasks...); err != nil {
		b.Fatal(err)
	}
	for _, t := range tasks {
		if _, err := p.Wait(ctx, t.ID); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(t0), cpuTime() - c0
}

// BenchmarkDAG runs a random DAG of b.N no-op tasks (make bench: 100,000)
// end to end, and the same number of independent tasks as the baseline.
// sched-µs/task is the admin's extra CPU per task for the dependencies.
func BenchmarkDAG(b *testing.B) {
	p := startBench(b)
	flat := randomDAG(b.N, "flat-", false)
	dag := randomDAG(b.N, "dag-", true)
	runAll(b, p, randomDAG(min(b.N, 2000), "warm-", false))
	b.ResetTimer()
	flatWall, flatCPU := runAll(b, p, flat)
	dagWall, dagCPU := runAll(b, p, dag)
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(dagWall.Seconds(), "dag-wall-s")
	b.ReportMetric(n/dagWall.Seconds(), "dag-tasks/s")
	b.ReportMetric(n/flatWall.Seconds(), "flat-tasks/s")
	b.ReportMetric(float64(flatCPU.Microseconds())/n, "flat-cpu-µs/task")
	b.ReportMetric(float64(dagCPU.Microseconds())/n, "dag-cpu-µs/task")
	b.ReportMetric(float64((dagCPU-flatCPU).Microseconds())/n, "sched-µs/task")
}

// BenchmarkPendingMemory reports the heap held per pending task: tasks
// waiting on a dependency (held by the playground only) and tasks queued in
// the task manager with no worker for their type.
func BenchmarkPendingMemory(b *testing.B) {
	p, err := New(WithWorkspace("pg-mem"))
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer p.Stop()
	ctx := context.Background()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	mk := func(prefix, typ string, dep bool) []Task {
		ts := make([]Task, b.N)
		for i := range ts {
			ts[i] = Task{ID: fmt.Sprint(prefix, i), Type: typ, Description: "pending"}
			if dep {
				ts[i].Dependencies = []string{"never"}
			}
		}
		return ts
	}
	if _, err := p.AddTasks(ctx, Task{ID: "never", Type: "nobody-runs-this"}); err != nil {
		b.Fatal(err)
	}
	waiting, queued := mk("w-", "noop", true), mk("q-", "nobody-runs-this", false)
	b.ResetTimer()
	h0 := heap()
	if _, err := p.AddTasks(ctx, waiting...); err != nil {
		b.Fatal(err)
	}
	h1 := heap()
	if _, err := p.AddTasks(ctx, queued...); err != nil {
		b.Fatal(err)
	}
	for p.Progress().Total < 2*b.N+1 {
		time.Sleep(time.Millisecond)
	}
	// Wait until the submitter has handed them all to the manager.
	for {
		rep, err := p.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Pending >= b.N+1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	h2 := heap()
	b.StopTimer()
	b.ReportMetric(float64(h1-h0)/float64(b.N), "B/waiting-task")
	b.ReportMetric(float64(h2-h1)/float64(b.N), "B/queued-task")
	runtime.KeepAlive(waiting)
	runtime.KeepAlive(queued)
}
