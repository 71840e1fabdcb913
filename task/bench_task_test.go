package task

// Task-layer benchmarks: a Manager here, 4 no-op workers in a child
// process (the test binary re-executed; see TestMain).

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

const benchWorkersEnv = "CEYLON_BENCH_WORKERS_JOIN"

var loopbackTCP = agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")

// runBenchWorkers runs 4 no-op workers joined to the address in the
// environment until the manager shuts them down or stdin closes.
func runBenchWorkers(join string) {
	defer testutil.ProfileChild()()
	var ws []*Worker
	for i := range 4 {
		a, err := agent.New(fmt.Sprintf("w%d", i), loopbackTCP, agent.WithWorkspace("bench-tasks"), agent.WithJoin(join))
		if err != nil {
			panic(err)
		}
		w, err := NewWorker(a, WithMaxConcurrency(256))
		if err != nil {
			panic(err)
		}
		w.Handle("noop", noop)
		if err := w.Start(context.Background()); err != nil {
			panic(err)
		}
		ws = append(ws, w)
	}
	fmt.Println("READY")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, w := range ws {
		_ = w.Stop()
	}
}

// startTaskBench starts a manager here and 4 workers in a child process.
func startTaskBench(b *testing.B, done *atomic.Int64, opts ...ManagerOption) *Manager {
	b.Helper()
	a, err := agent.New("task_manager", agent.AsAdmin(), loopbackTCP, agent.WithWorkspace("bench-tasks"))
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewManager(a, append([]ManagerOption{
		WithObserver(func(ev Event) {
			if ev.Type == EventCompleted || ev.Type == EventFailed {
				done.Add(1)
			}
		}),
	}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Stop() })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchWorkersEnv+"="+m.Addrs()[0])
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "READY") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitForWorkers(ctx, 4); err != nil {
		b.Fatal(err)
	}
	return m
}

// benchJournal opens a journal for one benchmark and closes it after.
func benchJournal(b *testing.B) *Journal {
	b.Helper()
	j, err := OpenJournal(filepath.Join(b.TempDir(), "bench.db"), "bench-tasks")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = j.Close() })
	return j
}

// awaitDone waits until n tasks have completed or failed.
func awaitDone(done *atomic.Int64, n int) {
	for done.Load() < int64(n) {
		time.Sleep(100 * time.Microsecond)
	}
}

func noopTask(id string) messages.Task {
	return messages.Task{ID: id, Type: "noop", Description: "nothing"}
}

// BenchmarkTaskThroughput submits b.N no-op tasks in batches and reports
// tasks/s until the last completes (make bench runs 20,000).
func BenchmarkTaskThroughput(b *testing.B) {
	var done atomic.Int64
	runThroughput(b, startTaskBench(b, &done), &done)
}

// BenchmarkTaskThroughputJournal is BenchmarkTaskThroughput with the
// manager journaling every task and result to a bbolt file (fsync on each
// group commit).
func BenchmarkTaskThroughputJournal(b *testing.B) {
	j := benchJournal(b)
	var done atomic.Int64
	m := startTaskBench(b, &done, WithJournal(j))
	runThroughput(b, m, &done)
	perCommit, _ := agent.Call(context.Background(), m.agent, func() (float64, error) {
		return float64(m.journalStats.records) / float64(max(m.journalStats.commits, 1)), nil
	})
	b.ReportMetric(perCommit, "records/commit")
}

// BenchmarkTaskThroughputJournalRandomIDs is BenchmarkTaskThroughputJournal
// with task IDs in no order (like UUIDs): the journal's records are keyed
// by sequence number, so its commits append whatever the IDs are.
func BenchmarkTaskThroughputJournalRandomIDs(b *testing.B) {
	j := benchJournal(b)
	var done atomic.Int64
	m := startTaskBench(b, &done, WithJournal(j))
	runThroughputIDs(b, m, &done, func(i int) string {
		h := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		return hex.EncodeToString(h[:16])
	})
}

func runThroughput(b *testing.B, m *Manager, done *atomic.Int64) {
	runThroughputIDs(b, m, done, func(i int) string { return fmt.Sprint(i) })
}

func runThroughputIDs(b *testing.B, m *Manager, done *atomic.Int64, idOf func(int) string) {
	ctx := context.Background()
	const batch = 1000
	subs := make([]Submission, 0, batch)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		subs = append(subs, Submission{Task: noopTask(idOf(i))})
		if len(subs) == batch || i == b.N-1 {
			if err := m.SubmitAll(ctx, subs); err != nil {
				b.Fatal(err)
			}
			subs = subs[:0]
		}
	}
	if _, err := m.Wait(ctx, idOf(b.N-1)); err != nil {
		b.Fatal(err)
	}
	awaitDone(done, b.N)
	el := time.Since(start)
	b.StopTimer()
	rep, _ := m.Stats(ctx)
	if rep.Succeeded != b.N {
		b.Fatalf("%d of %d succeeded", rep.Succeeded, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "tasks/s")
}

// BenchmarkTaskRoundTrip runs no-op tasks one at a time (submit, wait for
// the result) and reports the round-trip percentiles (make bench runs 1,000).
func BenchmarkTaskRoundTrip(b *testing.B) {
	var done atomic.Int64
	runRoundTrips(b, startTaskBench(b, &done))
}

// BenchmarkTaskRoundTripJournal is BenchmarkTaskRoundTrip with the
// journal on: each round trip waits for the task's acceptance and its
// result to be durable.
func BenchmarkTaskRoundTripJournal(b *testing.B) {
	j := benchJournal(b)
	var done atomic.Int64
	runRoundTrips(b, startTaskBench(b, &done, WithJournal(j)))
}

// BenchmarkTaskRoundTripJournalManyWorkers is BenchmarkTaskRoundTripJournal
// with the statistics of 1,000 workers that came and went in the journal:
// what a commit costs in a large workspace.
func BenchmarkTaskRoundTripJournalManyWorkers(b *testing.B) {
	j := benchJournal(b)
	gone := map[string]WorkerStats{}
	for i := range 1000 {
		name := fmt.Sprintf("worker-%04d", i)
		gone[name] = WorkerStats{Name: name, Capacity: 4, Results: 1234, Successful: 1200, TotalTime: 123456789}
	}
	if err := j.writeTasks(nil, gone, nil, nil); err != nil {
		b.Fatal(err)
	}
	var done atomic.Int64
	runRoundTrips(b, startTaskBench(b, &done, WithJournal(j)))
}

func runRoundTrips(b *testing.B, m *Manager) {
	ctx := context.Background()
	for i := range 100 { // warm up
		if _, err := m.Run(ctx, noopTask(fmt.Sprint("warm", i))); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		r, err := m.Run(ctx, noopTask(fmt.Sprint(i)))
		if err != nil || !r.Success {
			b.Fatal(r, err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	testutil.ReportLatency(b, lat)
}

// BenchmarkTaskSubmitAsync submits b.N no-op tasks one by one from one
// goroutine with SubmitAsync (no batching by the caller) and reports
// tasks/s until the last completes.
func BenchmarkTaskSubmitAsync(b *testing.B) {
	var done atomic.Int64
	runAsync(b, startTaskBench(b, &done), &done)
}

// BenchmarkTaskSubmitAsyncJournal is BenchmarkTaskSubmitAsync with the
// journal on: every submission acknowledged once durable.
func BenchmarkTaskSubmitAsyncJournal(b *testing.B) {
	j := benchJournal(b)
	var done atomic.Int64
	runAsync(b, startTaskBench(b, &done, WithJournal(j)), &done)
}

// BenchmarkTaskSubmitJournal submits one by one from one goroutine with
// Submit (one commit waited for per task): the baseline SubmitAsync is
// for.
func BenchmarkTaskSubmitJournal(b *testing.B) {
	j := benchJournal(b)
	var done atomic.Int64
	m := startTaskBench(b, &done, WithJournal(j))
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := m.Submit(ctx, noopTask(fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
	}
	awaitDone(&done, b.N)
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tasks/s")
}

func runAsync(b *testing.B, m *Manager, done *atomic.Int64) {
	ctx := context.Background()
	futures := make(chan *SubmitFuture, 8192)
	errs := make(chan error, 1)
	go func() {
		var first error
		for f := range futures {
			if err := f.Wait(ctx); err != nil && first == nil {
				first = err
			}
		}
		errs <- first
	}()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		f, err := m.SubmitAsync(ctx, noopTask(fmt.Sprint(i)))
		if err != nil {
			b.Fatal(err)
		}
		futures <- f
	}
	close(futures)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	awaitDone(done, b.N)
	el := time.Since(start)
	b.StopTimer()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.N)/el.Seconds(), "tasks/s")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "mgr-allocs/task") // the manager's process, this loop included
}

const benchProducerEnv = "CEYLON_BENCH_PRODUCER_JOIN"

// runBenchProducer is a producer in a process of its own: once told to
// go, it submits n no-op tasks from one goroutine with Client.SubmitAsync
// and waits until every one is acknowledged (durable), then runs 1,000
// tasks one at a time and prints the round trips' percentiles.
func runBenchProducer(join string) {
	a, err := agent.New("producer", loopbackTCP, agent.WithWorkspace("bench-tasks"), agent.WithJoin(join))
	if err != nil {
		panic(err)
	}
	c, err := NewClient(a, WithClientInFlight(256))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		panic(err)
	}
	defer a.Stop()
	if _, err := c.Manager(ctx); err != nil {
		panic(err)
	}
	fmt.Println("READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var n int
		if _, err := fmt.Sscanf(in.Text(), "GO %d", &n); err != nil {
			continue
		}
		futures := make(chan *SubmitFuture, 4096)
		errc := make(chan error, 1)
		go func() {
			var first error
			for f := range futures {
				if err := f.Wait(ctx); err != nil && first == nil {
					first = err
				}
			}
			errc <- first
		}()
		for i := range n {
			f, err := c.SubmitAsync(ctx, noopTask(fmt.Sprint("p", i)))
			if err != nil {
				panic(err)
			}
			futures <- f
		}
		close(futures)
		if err := <-errc; err != nil {
			panic(err)
		}
		lat := make([]time.Duration, 1000)
		for i := range lat {
			t0 := time.Now()
			if r, err := c.Run(ctx, noopTask(fmt.Sprint("rt", i))); err != nil || !r.Success {
				panic(fmt.Sprint(r, err))
			}
			lat[i] = time.Since(t0)
		}
		slices.Sort(lat)
		fmt.Printf("DONE %d %d\n", lat[len(lat)/2].Microseconds(), lat[len(lat)*99/100].Microseconds())
	}
}

// BenchmarkRemoteProducer: a producer in a third process (producer ->
// manager -> workers, the process layout of a broker's benchmark) submits
// b.N no-op tasks from one goroutine (Client.SubmitAsync); tasks/s until
// the last completes, then the producer's round-trip percentiles over
// 1,000 tasks run one at a time.
func BenchmarkRemoteProducer(b *testing.B) {
	var done atomic.Int64
	runRemoteProducer(b, startTaskBench(b, &done), &done)
}

// BenchmarkRemoteProducerJournal is BenchmarkRemoteProducer with the
// journal on: every submission acknowledged to the producer once durable.
func BenchmarkRemoteProducerJournal(b *testing.B) {
	j := benchJournal(b)
	var done atomic.Int64
	runRemoteProducer(b, startTaskBench(b, &done, WithJournal(j)), &done)
}

func runRemoteProducer(b *testing.B, m *Manager, done *atomic.Int64) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchProducerEnv+"="+m.Addrs()[0])
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "READY") {
	}
	b.ResetTimer()
	start := time.Now()
	fmt.Fprintf(stdin, "GO %d\n", b.N)
	awaitDone(done, b.N)
	el := time.Since(start)
	b.StopTimer()
	var p50, p99 float64
	for sc.Scan() {
		if _, err := fmt.Sscanf(sc.Text(), "DONE %f %f", &p50, &p99); err == nil {
			break
		}
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "tasks/s")
	b.ReportMetric(p50, "rt-p50-µs")
	b.ReportMetric(p99, "rt-p99-µs")
}
