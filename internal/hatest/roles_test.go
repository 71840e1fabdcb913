package hatest

// The processes of the tests: this test binary, re-executed in a role
// (TestMain). Each prints what it does as lines on its output and takes
// commands on its input.

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gometrics "github.com/armon/go-metrics"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

const (
	roleEnv   = "CEYLON_HA_ROLE"
	workspace = "ha-test"
	secret    = "replicated"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runRole(role, strings.Split(os.Args[len(os.Args)-1], "|")); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	races := testutil.CatchChildRaces()
	os.Exit(races.Check(m.Run()))
}

// runRole runs one process. args: the listen address, then the role's.
func runRole(role string, args []string) error {
	ctx := context.Background()
	stdin := bufio.NewScanner(os.Stdin)
	switch role {
	case "manager", "manager-wrong-secret", "manager-single":
		// listen|dir|index|bootstrap ids|join addrs
		return runManager(ctx, role, args[0], args[1], args[2], csv(args[3]), csv(args[4]), stdin)
	case "worker": // listen|name|join addrs|slots|work (ms)
		slots, _ := strconv.Atoi(args[3])
		ms, _ := strconv.Atoi(args[4])
		return runWorker(ctx, args[0], args[1], csv(args[2]), slots, time.Duration(ms)*time.Millisecond, stdin)
	case "producer": // listen|join addrs
		return runProducer(ctx, args[0], csv(args[1]), stdin)
	}
	return fmt.Errorf("unknown role %q", role)
}

// logger writes an agent's log to stderr (the test shows it on failure).
func logger() agent.Option {
	return agent.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
}

func csv(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func runManager(ctx context.Context, role, listen, dir, index string, bootstrap, joins []string, stdin *bufio.Scanner) error {
	sec := secret
	if role == "manager-wrong-secret" {
		sec = "not-the-secret"
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
	}
	opts := []agent.Option{agent.AsAdmin(), agent.WithWorkspace(workspace), agent.WithSecret(sec), logger(),
		agent.WithListenAddrs(listen), agent.WithIdentityFile(filepath.Join(dir, "m"+index+".key"))}
	if len(joins) > 0 {
		opts = append(opts, agent.WithJoin(joins...))
	}
	a, err := agent.New("manager-"+index, opts...)
	if err != nil {
		return err
	}
	j, err := task.OpenJournal(filepath.Join(dir, "journal-"+index+".db"), workspace)
	if err != nil {
		return err
	}
	defer j.Close()
	// The first assignment of each term, for the failover benchmark.
	var leadMu sync.Mutex
	var assignedTerm, term uint64
	mopts := []task.ManagerOption{task.WithJournal(j), task.WithObserver(func(ev task.Event) {
		if ev.Type != task.EventAssigned {
			return
		}
		leadMu.Lock()
		defer leadMu.Unlock()
		if assignedTerm != term {
			assignedTerm = term
			fmt.Println("FIRSTASSIGN", term, time.Now().UnixNano())
		}
	})}
	if role != "manager-single" {
		var ids []peer.ID
		for _, s := range bootstrap {
			id, err := peer.ParseID(s)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		var ropts []task.ReplicaOption
		if os.Getenv("CEYLON_HA_SMALL_SNAPSHOTS") != "" { // often, so that a follower catches up from one
			ropts = append(ropts, task.WithSnapshots(256, 200*time.Millisecond))
		}
		if len(ids) > 0 {
			ropts = append(ropts, task.ReplicaBootstrap(ids...))
		}
		mopts = append(mopts, task.WithReplication(filepath.Join(dir, "raft-"+index), ropts...),
			task.WithLeadership(func(leading bool, t uint64) {
				state := "STANDBY"
				if leading {
					state = "LEADING"
					leadMu.Lock()
					term = t
					leadMu.Unlock()
				}
				fmt.Println(state, t, time.Now().UnixNano())
			}))
	}
	m, err := task.NewManager(a, mopts...)
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Stop()
	fmt.Println("ADDR", m.Addrs()[0])
	// $CEYLON_HA_PROFILE_DIR: a CPU profile of each manager, until STOPPROF.
	stopProf := func() {}
	var inm *gometrics.InmemSink
	if os.Getenv("CEYLON_HA_RAFT_METRICS") != "" { // Raft's own metrics, printed at STOPPROF
		inm = gometrics.NewInmemSink(time.Minute, 5*time.Minute)
		cfg := gometrics.DefaultConfig("x")
		cfg.EnableHostname = false
		_, _ = gometrics.NewGlobal(cfg, inm)
	}
	if d := os.Getenv("CEYLON_HA_PROFILE_DIR"); d != "" {
		pf, err := os.Create(filepath.Join(d, "manager-"+index+".prof"))
		if err != nil {
			return err
		}
		_ = pprof.StartCPUProfile(pf)
		stopProf = func() { pprof.StopCPUProfile(); _ = pf.Close() }
	}
	defer stopProf()
	for stdin.Scan() {
		f := strings.Fields(stdin.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "STOPPROF":
			if inm != nil {
				for _, iv := range inm.Data() {
					for k, s := range iv.Samples {
						fmt.Printf("RAFTM %s n=%d mean=%.3fms max=%.3fms\n", k, s.Count, s.AggregateSample.Mean(), s.Max)
					}
				}
			}
			stopProf()
			stopProf = func() {}
			fmt.Println("STOPPED")
		case "WORKERS":
			n, _ := strconv.Atoi(f[1])
			if err := m.WaitForWorkers(ctx, n); err != nil {
				return err
			}
			fmt.Println("WORKERS", n)
		case "STATS": // the tasks as this manager sees them
			infos, err := m.Tasks(ctx)
			if err != nil {
				fmt.Println("STATS error", err)
				continue
			}
			succeeded, multi := 0, 0
			for _, in := range infos {
				ok := 0
				for _, at := range in.Attempts {
					if at.Outcome == "ok" {
						ok++
					}
				}
				if in.Status == task.StatusCompleted {
					succeeded++
				}
				if ok > 1 {
					multi++
				}
			}
			fmt.Println("STATS", len(infos), succeeded, multi)
		case "TASK": // a task's attempts
			in, err := m.Task(ctx, f[1])
			var at []string
			for _, a := range in.Attempts {
				at = append(at, fmt.Sprintf("%d@%s:%d-%d:%q", a.Attempt, a.Worker, a.AssignedAt.UnixNano(), a.EndedAt.UnixNano(), a.Outcome))
			}
			fmt.Println("TASK", f[1], in.Status, strings.Join(at, " "), err)
		case "SYNCED": // until this manager follows a leader and has applied the log it knows committed
			deadline := time.Now().Add(time.Minute)
			for {
				st, err := m.Replica()
				if err != nil || (st.State == "Follower" && st.Leader != "" && st.LastContact < time.Second && st.CommitIndex > 0 && st.AppliedIndex >= st.CommitIndex) || time.Now().After(deadline) {
					fmt.Println("SYNCED", st.State, st.AppliedIndex, st.CommitIndex, err)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		case "JOURNAL":
			n, err := j.Len()
			fmt.Println("JOURNAL", n, err)
		case "JOURNALWAIT": // until the journal holds n tasks (a minute at most)
			want, _ := strconv.Atoi(f[1])
			deadline := time.Now().Add(time.Minute)
			n, err := j.Len()
			for err == nil && n < want && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
				n, err = j.Len()
			}
			fmt.Println("JOURNAL", n, err)
		case "PEERS":
			rs, err := m.Replicas(ctx)
			var out []string
			for _, r := range rs {
				out = append(out, fmt.Sprintf("%s:%v:%v", r.ID, r.Voter, r.Leader))
			}
			fmt.Println("PEERS", strings.Join(out, ","), err)
		case "BENCH": // BENCH tasks roundtrips: throughput, then sequential round trips
			n, _ := strconv.Atoi(f[1])
			rt, _ := strconv.Atoi(f[2])
			el, p50, p99, err := bench(ctx, m, n, rt)
			if err != nil {
				return err
			}
			fmt.Println("BENCH", el.Nanoseconds(), p50.Microseconds(), p99.Microseconds())
		}
	}
	return nil
}

// bench submits n no-op tasks at once and waits for them all, then runs
// rt tasks one after the other.
func bench(ctx context.Context, m *task.Manager, n, rt int) (el, p50, p99 time.Duration, err error) {
	subs := make([]task.Submission, n)
	stamp := time.Now().UnixNano()
	for i := range subs {
		subs[i] = task.Submission{Task: messages.Task{ID: fmt.Sprintf("b%d-%d", stamp, i), Type: "noop"}}
	}
	start := time.Now()
	for i := 0; i < n; i += 1024 {
		if err := m.SubmitAll(ctx, subs[i:min(i+1024, n)]); err != nil {
			return 0, 0, 0, err
		}
	}
	for _, s := range subs {
		if _, err := m.Wait(ctx, s.Task.ID); err != nil {
			return 0, 0, 0, err
		}
	}
	el = time.Since(start)
	lat := make([]time.Duration, rt)
	for i := range lat {
		t0 := time.Now()
		if _, err := m.Run(ctx, messages.Task{ID: fmt.Sprintf("rt%d-%d", stamp, i), Type: "noop"}); err != nil {
			return 0, 0, 0, err
		}
		lat[i] = time.Since(t0)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return el, lat[rt/2], lat[rt*99/100], nil
}

func runWorker(ctx context.Context, listen, name string, joins []string, slots int, work time.Duration, stdin *bufio.Scanner) error {
	a, err := agent.New(name, agent.WithWorkspace(workspace), agent.WithSecret(secret), logger(),
		agent.WithListenAddrs(listen), agent.WithJoin(joins...))
	if err != nil {
		return err
	}
	w, err := task.NewWorker(a, task.WithMaxConcurrency(slots))
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20) // flushed whole (a full buffer would split a line)
	var mu sync.Mutex
	w.Handle("work", func(ctx context.Context, j *task.Job) ([]byte, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(work):
		}
		mu.Lock()
		fmt.Fprintln(out, "RAN", j.Task.ID, time.Now().UnixNano())
		mu.Unlock()
		return j.Task.Input, nil
	})
	w.Handle("noop", func(context.Context, *task.Job) ([]byte, error) { return nil, nil })
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer w.Stop()
	stop := make(chan struct{})
	defer close(stop)
	go func() { // the RAN lines, flushed often but not one write each
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			mu.Lock()
			_ = out.Flush()
			mu.Unlock()
		}
	}()
	fmt.Println("STARTED", a.ID())
	for stdin.Scan() {
		if stdin.Text() == "FLUSH" {
			mu.Lock()
			_ = out.Flush()
			mu.Unlock()
			fmt.Println("FLUSHED")
		}
	}
	return nil
}

// runProducer submits tasks through a task.Client that knows every manager
// and waits for each result, counting what it sees.
func runProducer(ctx context.Context, listen string, joins []string, stdin *bufio.Scanner) error {
	a, err := agent.New("producer", agent.WithWorkspace(workspace), agent.WithSecret(secret),
		agent.WithListenAddrs(listen), agent.WithJoin(joins...))
	if err != nil {
		return err
	}
	c, err := task.NewClient(a)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Stop()
	fmt.Println("STARTED", a.ID())
	for stdin.Scan() {
		f := strings.Fields(stdin.Text())
		if len(f) == 1 && f[0] == "STREAM" { // batches of tasks, one after the other, until stopped
			go stream(ctx, c)
			continue
		}
		if len(f) != 2 || f[0] != "RUN" {
			continue
		}
		n, _ := strconv.Atoi(f[1])
		tasks := make([]messages.Task, n)
		for i := range tasks {
			tasks[i] = messages.Task{ID: fmt.Sprintf("t%04d", i), Type: "work", Input: []byte(strconv.Itoa(i))}
		}
		submitted := make([]chan struct{}, (n+99)/100) // closed once batch b is accepted
		for b := range submitted {
			submitted[b] = make(chan struct{})
		}
		go func() {
			for i := 0; i < n; i += 100 {
				if err := c.SubmitAll(ctx, tasks[i:min(i+100, n)]); err != nil {
					fmt.Println("SUBMITERR", err)
				}
				close(submitted[i/100])
			}
		}()
		var (
			mu              sync.Mutex
			ok, failed, bad int
			done            int
			wg              sync.WaitGroup
		)
		sem := make(chan struct{}, 64)
		for i, t := range tasks {
			wg.Add(1)
			<-submitted[i/100]
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, err := c.Wait(ctx, t.ID)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					fmt.Println("WAITERR", t.ID, err)
					failed++
				case !r.Success:
					failed++
				case string(r.Output) != strconv.Itoa(i):
					bad++
				default:
					ok++
				}
				done++
				if done%100 == 0 {
					fmt.Println("PROGRESS", done)
				}
			}()
		}
		wg.Wait()
		fmt.Println("RESULT", ok, failed, bad)
	}
	return nil
}

// stream submits batches of 32 short tasks and waits for each batch, for
// ever: a steady load across failovers.
func stream(ctx context.Context, c *task.Client) {
	for b := 0; ; b++ {
		batch := make([]messages.Task, 32)
		for i := range batch {
			batch[i] = messages.Task{ID: fmt.Sprintf("s%d-%d", b, i), Type: "work"}
		}
		if err := c.SubmitAll(ctx, batch); err != nil {
			fmt.Println("SUBMITERR", err)
			continue
		}
		for _, t := range batch {
			if _, err := c.Wait(ctx, t.ID); err != nil {
				fmt.Println("WAITERR", t.ID, err)
			}
		}
	}
}
