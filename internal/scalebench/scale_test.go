// Package scalebench measures a workspace as it grows: one task manager in
// the benchmark's process, N workers spread over several child processes
// (the test binary re-executed), every worker its own agent and libp2p
// host, all on loopback. Run it with `make bench-scale`.
package scalebench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// Environment of a child process.
const (
	envChild  = "CEYLON_SCALE_CHILD" // the child's index
	envJoin   = "CEYLON_SCALE_JOIN"
	envWS     = "CEYLON_SCALE_WS"
	envCount  = "CEYLON_SCALE_COUNT" // workers in this child
	envTotal  = "CEYLON_SCALE_TOTAL" // workers in the workspace
	envTaskMS = "CEYLON_SCALE_TASK_MS"
	// envProfile names a directory for CPU profiles of the manager's
	// throughput run and of the first child.
	envProfile = "CEYLON_SCALE_PROFILE"
	// envLog makes a sample of the workers log at Info level to stderr.
	envLog = "CEYLON_SCALE_LOG"
)

// profile starts a CPU profile into path; the returned func stops it.
func profile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		panic(err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

func TestMain(m *testing.M) {
	if os.Getenv(envChild) != "" {
		runChild()
		return
	}
	os.Exit(m.Run())
}

var loopbackTCP = agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")

// ping is the broadcast whose spread is timed.
type ping struct {
	Seq int `msgpack:"s"`
}

func (ping) Kind() string { return "scale.ping" }

// report is what a child tells the benchmark.
type report struct {
	Conns      []int   `json:"conns"`      // per worker agent
	Members    []int   `json:"members"`    // roster size per worker agent
	RosterAt   []int64 `json:"roster_at"`  // when each roster was complete (unix ns; 0: not yet)
	PingAt     []int64 `json:"ping_at"`    // when each agent got the last ping (unix ns; 0: not yet)
	StartMS    []int64 `json:"start_ms"`   // how long each worker's Start took
	Failures   uint64  `json:"failures"`   // failed connect attempts, all workers
	Heap       uint64  `json:"heap"`       // bytes in use
	Stacks     uint64  `json:"stacks"`     // bytes
	RSS        int64   `json:"rss"`        // bytes
	Goroutines int     `json:"goroutines"` // in the child
}

func runChild() {
	count, _ := strconv.Atoi(os.Getenv(envCount))
	total, _ := strconv.Atoi(os.Getenv(envTotal))
	taskMS, _ := strconv.Atoi(os.Getenv(envTaskMS))
	idx := os.Getenv(envChild)
	d := time.Duration(taskMS) * time.Millisecond
	workers := make([]*task.Worker, count)
	rosterAt := make([]atomic.Int64, count)
	pingAt := make([]atomic.Int64, count)
	startMS := make([]atomic.Int64, count)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range count {
		aopts := []agent.Option{loopbackTCP, agent.WithWorkspace(os.Getenv(envWS)), agent.WithJoin(os.Getenv(envJoin))}
		if os.Getenv(envLog) != "" && i%25 == 0 { // a sample of what joining workers see
			aopts = append(aopts, agent.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))))
		}
		a, err := agent.New(fmt.Sprintf("w%s-%d", idx, i), aopts...)
		if err != nil {
			panic(err)
		}
		w, err := task.NewWorker(a)
		if err != nil {
			panic(err)
		}
		w.Handle("sleep", func(ctx context.Context, _ *task.Job) ([]byte, error) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		agent.On(w.Agent(), func(_ agent.Context, p ping) error {
			pingAt[i].Store(time.Now().UnixNano())
			return nil
		})
		workers[i] = w
		wg.Go(func() {
			t0 := time.Now()
			if err := w.Start(ctx); err != nil {
				panic(err)
			}
			startMS[i].Store(time.Since(t0).Milliseconds())
			// The roster is complete when it lists every other worker and
			// the manager.
			if w.Agent().Node().WaitMembers(ctx, total) == nil {
				rosterAt[i].Store(time.Now().UnixNano())
			}
		})
	}
	fmt.Println("STARTED")
	var stopProfile func()
	if dir := os.Getenv(envProfile); dir != "" && idx == "0" {
		stopProfile = profile(filepath.Join(dir, "child0-join.cpu"))
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "stats":
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			r := report{RSS: rss(os.Getpid()), Goroutines: runtime.NumGoroutine(), Heap: ms.HeapInuse, Stacks: ms.StackInuse}
			for i, w := range workers {
				n := w.Agent().Node()
				if n == nil {
					r.Conns, r.Members = append(r.Conns, 0), append(r.Members, 0)
				} else {
					st := n.Stats()
					r.Conns, r.Members = append(r.Conns, st.Conns), append(r.Members, st.Members)
					r.Failures += st.ConnectFailures
				}
				r.StartMS = append(r.StartMS, startMS[i].Load())
				r.RosterAt = append(r.RosterAt, rosterAt[i].Load())
				r.PingAt = append(r.PingAt, pingAt[i].Load())
			}
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
		case "idle", "profile": // the first child profiles the idle workspace, then the throughput run
			if stopProfile != nil {
				stopProfile()
			}
			if dir := os.Getenv(envProfile); dir != "" && idx == "0" {
				name := "child0.cpu"
				if in.Text() == "idle" {
					name = "child0-idle.cpu"
				}
				stopProfile = profile(filepath.Join(dir, name))
			}
		case "heap": // the first child writes a heap profile
			if dir := os.Getenv(envProfile); dir != "" && idx == "0" {
				runtime.GC()
				if f, err := os.Create(filepath.Join(dir, "child0.heap")); err == nil {
					_ = pprof.WriteHeapProfile(f)
					_ = f.Close()
				}
			}
		case "quit":
			if stopProfile != nil {
				stopProfile()
			}
			cancel()
			var stops sync.WaitGroup
			for _, w := range workers {
				stops.Go(func() { _ = w.Stop() })
			}
			stops.Wait()
			return
		}
	}
}

// rss reads a process's resident set size.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// child is one child process as the benchmark drives it.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
	mu  sync.Mutex
}

func (c *child) stats() (report, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.in, "stats\n"); err != nil {
		return report{}, err
	}
	for c.out.Scan() {
		line := c.out.Text()
		if strings.HasPrefix(line, "{") {
			var r report
			err := json.Unmarshal([]byte(line), &r)
			return r, err
		}
	}
	return report{}, fmt.Errorf("child ended: %v", c.out.Err())
}

// sizes are the workspaces measured; CEYLON_SCALE_SIZES overrides them
// (e.g. "25,100").
func sizes() []int {
	s := os.Getenv("CEYLON_SCALE_SIZES")
	if s == "" {
		return []int{25, 100, 250, 500, 1000}
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// BenchmarkScale builds a workspace of N workers for each size and
// measures it; each size runs once (use -benchtime 1x). Figures are
// reported as metrics and printed as a table row.
func BenchmarkScale(b *testing.B) {
	fmt.Println("| workers | procs | join all (s) | rosters full after last join (s) | conns/worker max | mean | manager conns | MB/worker idle | task | throughput vs ideal | manager CPU µs/task | workers' CPU µs/task | broadcast to all (ms) | sender's mesh |")
	fmt.Println("| --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |")
	for _, n := range sizes() {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			for b.Loop() {
				runScale(b, n)
			}
		})
	}
}

func runScale(b *testing.B, n int) {
	taskMS := 10
	if n >= 1000 {
		taskMS = 100
	}
	procs := 4
	if p, err := strconv.Atoi(os.Getenv("CEYLON_SCALE_PROCS")); err == nil && p > 0 {
		procs = p
	}
	ws := fmt.Sprintf("scale-%d-%d", n, time.Now().UnixNano())
	var done atomic.Int64
	admin, err := agent.New("task_manager", agent.AsAdmin(), loopbackTCP, agent.WithWorkspace(ws))
	if err != nil {
		b.Fatal(err)
	}
	m, err := task.NewManager(admin,
		task.WithObserver(func(ev task.Event) {
			if ev.Type == task.EventCompleted || ev.Type == task.EventFailed {
				done.Add(1)
			}
		}),
		task.WithForgetFinished(),
	)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = m.Stop() }()

	// Start the children at once: the clock runs from the first start.
	stopJoinProfile := func() {}
	if dir := os.Getenv(envProfile); dir != "" {
		stopJoinProfile = profile(filepath.Join(dir, fmt.Sprintf("manager-join-%d.cpu", n)))
	}
	start := time.Now()
	var children []*child
	for i := range procs {
		count := n / procs
		if i < n%procs {
			count++
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"="+strconv.Itoa(i), envJoin+"="+m.Addrs()[0], envWS+"="+ws,
			envCount+"="+strconv.Itoa(count), envTotal+"="+strconv.Itoa(n), envTaskMS+"="+strconv.Itoa(taskMS))
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		c := &child{cmd: cmd, in: in, out: bufio.NewScanner(out)}
		c.out.Buffer(make([]byte, 1<<20), 16<<20)
		children = append(children, c)
	}
	defer func() {
		for _, c := range children {
			_, _ = io.WriteString(c.in, "quit\n")
			_ = c.in.Close()
		}
		for _, c := range children {
			_ = c.cmd.Wait()
		}
	}()
	if err := m.WaitForWorkers(ctx, n); err != nil {
		b.Fatal(err)
	}
	joined := time.Now()
	stopJoinProfile()
	joinS := joined.Sub(start).Seconds()
	b.Logf("N=%d: all joined after %.1f s", n, joinS)

	// Every roster complete?
	all := func() []report {
		var rs []report
		for _, c := range children {
			r, err := c.stats()
			if err != nil {
				b.Fatal(err)
			}
			rs = append(rs, r)
		}
		return rs
	}
	var rosterS float64
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rs := all()
		var last int64
		complete := true
		for _, r := range rs {
			for _, at := range r.RosterAt {
				if at == 0 {
					complete = false
				}
				last = max(last, at)
			}
		}
		if complete {
			rosterS = max(0, time.Unix(0, last).Sub(joined).Seconds())
			break
		}
		if time.Since(joined) > 5*time.Second && time.Now().Second()%5 == 0 {
			short, least := 0, n
			for _, r := range rs {
				for i, at := range r.RosterAt {
					if at == 0 {
						short++
						least = min(least, r.Members[i])
					}
				}
			}
			fmt.Fprintf(os.Stderr, "N=%d: %d rosters short after %.0f s (smallest %d)\n", n, short, time.Since(joined).Seconds(), least)
		}
		if time.Now().After(deadline) {
			missing := 0
			for _, r := range rs {
				for i, at := range r.RosterAt {
					if at == 0 {
						missing++
						if missing < 4 {
							b.Logf("incomplete roster: %d members", r.Members[i])
						}
					}
				}
			}
			b.Fatalf("%d rosters incomplete 2 minutes after the last join", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}

	b.Logf("N=%d: rosters complete %.1f s after the last join", n, rosterS)
	if rs := all(); true {
		var starts []int64
		var fails uint64
		var heap, stacks uint64
		var gs int
		for _, r := range rs {
			starts = append(starts, r.StartMS...)
			fails += r.Failures
			heap, stacks, gs = heap+r.Heap, stacks+r.Stacks, gs+r.Goroutines
		}
		slices.Sort(starts)
		b.Logf("N=%d: Start took p50 %d ms, p90 %d ms, max %d ms; %d failed connect attempts; per worker: heap %.2f MB, stacks %.2f MB, %d goroutines",
			n, starts[len(starts)/2], starts[len(starts)*9/10], starts[len(starts)-1], fails,
			float64(heap)/float64(n)/(1<<20), float64(stacks)/float64(n)/(1<<20), gs/n)
	}
	if os.Getenv(envProfile) != "" {
		_, _ = io.WriteString(children[0].in, "heap\n")
		_, _ = io.WriteString(children[0].in, "idle\n")
	}
	// Idle: connections, memory, and what idling costs.
	stopIdleProfile := func() {}
	if dir := os.Getenv(envProfile); dir != "" {
		stopIdleProfile = profile(filepath.Join(dir, fmt.Sprintf("manager-idle-%d.cpu", n)))
	}
	idle0, idleMgr0, idleT := childrenCPU(children), cpuTime(), time.Now()
	time.Sleep(3 * time.Second)
	stopIdleProfile()
	idleCores := (childrenCPU(children) - idle0 + cpuTime() - idleMgr0).Seconds() / time.Since(idleT).Seconds()
	rs := all()
	var conns []int
	var rssTotal int64
	for _, r := range rs {
		conns = append(conns, r.Conns...)
		rssTotal += r.RSS
	}
	maxConns := slices.Max(conns)
	mean := 0.0
	for _, c := range conns {
		mean += float64(c)
	}
	mean /= float64(len(conns))
	mgrConns := m.Agent().Node().Stats().Conns
	mbPerWorker := float64(rssTotal) / float64(n) / (1 << 20)

	// A broadcast from the manager to every worker.
	sent := time.Now()
	mesh := m.Agent().Node().Stats().MeshPeers
	if err := m.Agent().Broadcast(ctx, ping{Seq: 1}); err != nil {
		b.Fatal(err)
	}
	var bcastMS float64 = -1
	for time.Since(sent) < 30*time.Second {
		rs := all()
		var last int64
		missing := 0
		for _, r := range rs {
			for _, at := range r.PingAt {
				if at < sent.UnixNano() {
					missing++
				}
				last = max(last, at)
			}
		}
		if missing == 0 {
			bcastMS = float64(time.Unix(0, last).Sub(sent).Microseconds()) / 1000
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.Logf("N=%d: broadcast reached all after %.0f ms", n, bcastMS)
	// Throughput: keep every worker busy for about five ideal seconds.
	d := time.Duration(taskMS) * time.Millisecond
	total := int(5 * time.Second / d * time.Duration(n))
	if dir := os.Getenv(envProfile); dir != "" {
		defer profile(filepath.Join(dir, fmt.Sprintf("manager-%d.cpu", n)))()
		_, _ = io.WriteString(children[0].in, "profile\n")
	}
	cpu0 := cpuTime()
	kids0 := childrenCPU(children)
	t0 := time.Now()
	var submit sync.WaitGroup
	const submitters = 8
	for s := range submitters {
		submit.Go(func() {
			for i := s; i < total; i += submitters {
				if err := m.Submit(ctx, messages.Task{ID: strconv.Itoa(i), Type: "sleep", Description: "sleep"}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	submit.Wait()
	for done.Load() < int64(total) {
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	cpu := cpuTime() - cpu0
	kidsPerTask := float64((childrenCPU(children) - kids0).Microseconds()) / float64(total)
	ideal := float64(n) / d.Seconds()
	pct := float64(total) / elapsed.Seconds() / ideal * 100
	cpuPerTask := float64(cpu.Microseconds()) / float64(total)

	b.ReportMetric(joinS, "join_s")
	b.ReportMetric(rosterS, "roster_s")
	b.ReportMetric(float64(maxConns), "conns_max")
	b.ReportMetric(mean, "conns_mean")
	b.ReportMetric(mbPerWorker, "MB/worker")
	b.ReportMetric(pct, "%ideal")
	b.ReportMetric(cpuPerTask, "mgr_µs/task")
	b.ReportMetric(kidsPerTask, "workers_µs/task")
	b.ReportMetric(bcastMS, "bcast_ms")
	b.ReportMetric(idleCores, "idle_cores")
	fmt.Printf("| %d | %d | %.1f | %.1f | %d | %.1f | %d | %.2f | %d ms | %.0f %% | %.1f | %.1f | %.0f | %d |\n",
		n, procs, joinS, rosterS, maxConns, mean, mgrConns, mbPerWorker, taskMS, pct, cpuPerTask, kidsPerTask, bcastMS, mesh)
}

// childrenCPU sums the user and system CPU time of the child processes.
func childrenCPU(cs []*child) time.Duration {
	var total time.Duration
	for _, c := range cs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which is in parentheses).
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			total += time.Duration(ut+st) * time.Second / 100 // clock ticks (USER_HZ = 100)
		}
	}
	return total
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
