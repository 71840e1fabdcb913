package nattest

// Agents behind NATs, in network namespaces: a "public" network with a
// bootstrap node (DHT entry point and relay) and the task manager, and two
// private networks, each behind its own NAT router (iptables MASQUERADE,
// no port forwarding, no route in). Every agent is a separate OS process
// (this test binary, re-executed in a role; see TestMain) that knows only
// the workspace ID, its secret and the bootstrap node's address.

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/netns"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

const (
	roleEnv   = "CEYLON_NAT_ROLE"
	workspace = "nat-test"
	secret    = "behind-the-nat"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		if err := runRole(role, os.Args[len(os.Args)-1]); err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	races := testutil.CatchChildRaces()
	os.Exit(races.Check(m.Run()))
}

// Ping is what the two NATed workers send each other directly.
type Ping struct {
	From string `msgpack:"from"`
	Seq  int    `msgpack:"seq"`
}

// Kind implements messages.Message.
func (Ping) Kind() string { return "nattest.ping" }

// runRole runs one agent of the test. arg is "ip|bootstrap address|name".
func runRole(role, arg string) error {
	parts := strings.Split(arg, "|")
	ip, boot, name := parts[0], parts[1], parts[2]
	ctx := context.Background()
	stdin := bufio.NewScanner(os.Stdin)
	if strings.HasPrefix(role, "lone-") {
		return runLone(role, ip, boot, stdin)
	}
	switch role {
	case "bootstrap":
		b, err := peer.NewBootstrap(ctx, peer.WithWorkspace(workspace), peer.WithSecret(secret),
			peer.WithListenAddrs("/ip4/"+ip+"/tcp/4001"), peer.WithReachability(peer.ReachabilityPublic),
			peer.WithIdentityFile(name))
		if err != nil {
			return err
		}
		defer b.Close()
		fmt.Println("ADDR", b.Addrs()[0])
		for stdin.Scan() {
		}
		return nil
	case "manager":
		return runManager(ctx, ip, boot, true, stdin)
	case "manager-nat": // behind a NAT: reached over its relay
		return runManager(ctx, ip, boot, false, stdin)
	default:
		return runWorker(ctx, ip, boot, name, role == "worker", stdin)
	}
}

func runManager(ctx context.Context, ip, boot string, public bool, stdin *bufio.Scanner) error {
	popts := []peer.Option{peer.WithRelayService(false)}
	if public {
		popts = append(popts, peer.WithReachability(peer.ReachabilityPublic))
	}
	a, err := agent.New("task_manager", agent.AsAdmin(), agent.WithWorkspace(workspace), agent.WithSecret(secret),
		agent.WithListenAddrs("/ip4/"+ip+"/tcp/7000"), agent.WithBootstrap(boot), agent.WithPeerOptions(popts...))
	if err != nil {
		return err
	}
	m, err := task.NewManager(a)
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Stop()
	fmt.Println("ADDR", m.Addrs()[0])
	for stdin.Scan() {
		f := strings.Fields(stdin.Text())
		switch f[0] {
		case "WORKERS":
			n, _ := strconv.Atoi(f[1])
			start := time.Now()
			if err := m.WaitForWorkers(ctx, n); err != nil {
				return err
			}
			fmt.Println("WORKERS", n, time.Since(start).Milliseconds())
			st, err := m.Stats(ctx)
			if err != nil {
				return err
			}
			var reach []string
			for _, w := range st.Workers {
				reach = append(reach, w.Name+"="+w.Reach)
			}
			sort.Strings(reach)
			fmt.Println("REACH", strings.Join(reach, " "))
		case "RUN":
			n, _ := strconv.Atoi(f[1])
			subs := make([]task.Submission, n)
			for i := range subs {
				subs[i] = task.Submission{Task: messages.Task{ID: fmt.Sprintf("t%d", i), Type: "noop", Description: "no-op"}}
			}
			start := time.Now()
			if err := m.SubmitAll(ctx, subs); err != nil {
				return err
			}
			ok := 0
			for _, s := range subs {
				r, err := m.Wait(ctx, s.Task.ID)
				if err != nil {
					return err
				}
				if r.Success {
					ok++
				}
			}
			fmt.Println("DONE", ok, time.Since(start).Milliseconds())
		case "BENCH": // BENCH tasks roundtrips: throughput, then sequential round trips
			n, _ := strconv.Atoi(f[1])
			rt, _ := strconv.Atoi(f[2])
			subs := make([]task.Submission, n)
			for i := range subs {
				subs[i] = task.Submission{Task: messages.Task{ID: fmt.Sprintf("b%d-%d", time.Now().UnixNano(), i), Type: "noop", Description: "no-op"}}
			}
			start := time.Now()
			if err := m.SubmitAll(ctx, subs); err != nil {
				return err
			}
			for _, s := range subs {
				if _, err := m.Wait(ctx, s.Task.ID); err != nil {
					return err
				}
			}
			el := time.Since(start)
			lat := make([]time.Duration, rt)
			for i := range lat {
				t0 := time.Now()
				if _, err := m.Run(ctx, messages.Task{ID: fmt.Sprintf("rt%d-%d", time.Now().UnixNano(), i), Type: "noop", Description: "no-op"}); err != nil {
					return err
				}
				lat[i] = time.Since(t0)
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			var reach peer.Reach
			for _, d := range a.ConnectedAgents() {
				if pid, err := peer.ParseID(d.ID); err == nil && d.ID != a.ID() {
					reach = a.Node().Reach(pid)
				}
			}
			fmt.Println("BENCH", el.Nanoseconds(), lat[rt/2].Microseconds(), lat[rt*99/100].Microseconds(), reach)
		}
	}
	return nil
}

func runWorker(ctx context.Context, ip, boot, name string, verbose bool, stdin *bufio.Scanner) error {
	a, err := agent.New(name, agent.WithWorkspace(workspace), agent.WithSecret(secret),
		agent.WithListenAddrs("/ip4/"+ip+"/tcp/0"), agent.WithBootstrap(boot))
	if err != nil {
		return err
	}
	agent.On(a, func(c agent.Context, p Ping) error {
		fmt.Println("PING", p.From, p.Seq, a.Node().Reach(c.SenderID()))
		return nil
	})
	w, err := task.NewWorker(a, task.WithMaxConcurrency(256))
	if err != nil {
		return err
	}
	w.Handle("noop", func(_ context.Context, j *task.Job) ([]byte, error) {
		if verbose {
			fmt.Println("RAN", j.Task.ID)
		}
		return nil, nil
	})
	if err := w.Start(ctx); err != nil {
		return err
	}
	defer w.Stop()
	fmt.Println("STARTED", a.ID())
	for stdin.Scan() {
		f := strings.Fields(stdin.Text())
		if len(f) == 1 && f[0] == "COUNT" { // after every RAN line printed so far
			fmt.Println("COUNT")
			continue
		}
		if len(f) == 1 && f[0] == "ADDRS" {
			s := a.Node().Stats()
			fmt.Println("ADDRS", strings.Join(a.Addrs(), ","), s.Reachability, s.RelayedConns)
			continue
		}
		if f[0] != "PING" || len(f) != 3 {
			continue
		}
		to, seq := f[1], f[2]
		n, _ := strconv.Atoi(seq)
		var id string
		for _, d := range a.ConnectedAgents() {
			if d.Name == to {
				id = d.ID
			}
		}
		if id == "" {
			fmt.Println("SENDERR", seq, "no agent named", to)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.Send(sctx, id, Ping{From: name, Seq: n})
		cancel()
		if err != nil {
			fmt.Println("SENDERR", seq, err)
			continue
		}
		pid, _ := peer.ParseID(id)
		fmt.Println("SENT", seq, a.Node().Reach(pid))
	}
	return nil
}

// proc is one agent process of the test.
type proc struct {
	log *netns.LineLog
	in  *os.File
	cmd *exec.Cmd
}

// kill ends the process at once (SIGKILL: its sockets close, peers see
// the connections go).
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

var procSeq atomic.Int32

func start(t testing.TB, n *netns.Net, h *netns.Host, role, boot, name string) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	log := netns.NewLineLog()
	cmd := exec.Command("ip", "netns", "exec", h.Name, os.Args[0], "-test.run=^$", h.IP+"|"+boot+"|"+name)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	procSeq.Add(1)
	t.Cleanup(func() {
		_ = w.Close()
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			t.Logf("%s %s output:\n%s", role, name, log.Text())
		}
	})
	return &proc{log: log, in: w, cmd: cmd}
}

func (p *proc) send(t testing.TB, line string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, line); err != nil {
		t.Fatal(err)
	}
}

var pingLine = regexp.MustCompile(`^PING (\S+) (\d+) (\S*)$`)

// sendPing has from send one Ping to the agent named to and returns the
// sender's account of it: "SENT seq reach" or "SENDERR seq why".
func sendPing(t *testing.T, from *proc, toName string, seq int) string {
	t.Helper()
	mark := len(from.log.Lines())
	from.send(t, fmt.Sprintf("PING %s %d", toName, seq))
	var line string
	from.log.Await(t, "the send's outcome", 20*time.Second, func(lines []string) bool {
		for _, l := range lines[mark:] {
			if strings.HasPrefix(l, fmt.Sprintf("SENT %d ", seq)) || strings.HasPrefix(l, fmt.Sprintf("SENDERR %d ", seq)) {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// ping has from send Pings to the agent named to until one arrives; it
// returns how the sender and the receiver were connected.
func ping(t *testing.T, from, to *proc, toName string, seq int, within time.Duration) (sent, got string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		line := sendPing(t, from, toName, seq)
		if strings.HasPrefix(line, "SENT") {
			sent = strings.Fields(line)[2]
			if to.log.Wait(2*time.Second, func(lines []string) bool {
				for _, l := range lines {
					if m := pingLine.FindStringSubmatch(l); m != nil && m[2] == strconv.Itoa(seq) {
						got = m[3]
						return true
					}
				}
				return false
			}) {
				return sent, got
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ping %d never arrived; last: %s", seq, line)
		}
		time.Sleep(250 * time.Millisecond) // a retry interval, not a wait: the path may be coming up
		seq += 1000                        // a new attempt, told apart from the last
	}
}

func TestAgentsBehindNATs(t *testing.T) {
	t.Parallel()
	n := netns.New(t, "iptables")
	pub := n.Bridge("pub")
	net := n.Subnet(0)
	bootH := n.OnBridge("boot", pub, net+".1")
	mgrH := n.OnBridge("mgr", pub, net+".2")
	_, w1H := n.BehindNAT("w1", pub, net+".11", n.Subnet(1))
	_, w2H := n.BehindNAT("w2", pub, net+".12", n.Subnet(2))

	key := t.TempDir() + "/boot.key" // the relay comes back as itself
	boot := start(t, n, bootH, "bootstrap", "", key)
	bootAddr := strings.Fields(boot.log.AwaitLine(t, "ADDR ", 30*time.Second))[1]
	mgr := start(t, n, mgrH, "manager", bootAddr, "manager")
	mgr.log.AwaitLine(t, "ADDR ", 30*time.Second)
	began := time.Now()
	w1 := start(t, n, w1H, "worker", bootAddr, "w1")
	w2 := start(t, n, w2H, "worker", bootAddr, "w2")
	mgr.send(t, "WORKERS 2")
	mgr.log.AwaitLine(t, "WORKERS 2 ", 30*time.Second)
	t.Logf("both NATed workers registered, found by workspace ID, %d ms after their processes started", time.Since(began).Milliseconds())
	// The manager is public: the workers dialed it directly, through their NATs.
	if r := mgr.log.AwaitLine(t, "REACH ", 10*time.Second); r != "REACH w1=direct w2=direct" {
		t.Fatalf("the manager's stats say %q", r)
	}

	// 500 tasks, each run exactly once.
	const tasks = 500
	mgr.send(t, fmt.Sprintf("RUN %d", tasks))
	done := strings.Fields(mgr.log.AwaitLine(t, "DONE ", 2*time.Minute))
	if done[1] != strconv.Itoa(tasks) {
		t.Fatalf("%s of %d tasks succeeded", done[1], tasks)
	}
	var ran, per map[string]int
	count := func() int {
		ran, per = map[string]int{}, map[string]int{}
		for name, w := range map[string]*proc{"w1": w1, "w2": w2} {
			for _, l := range w.log.Lines() {
				if id, ok := strings.CutPrefix(l, "RAN "); ok {
					ran[id]++
					per[name]++
				}
			}
		}
		return per["w1"] + per["w2"]
	}
	// The workers' output may trail the manager's: each prints COUNT after
	// every RAN line it printed before.
	for _, w := range []*proc{w1, w2} {
		w.send(t, "COUNT")
		w.log.AwaitLine(t, "COUNT", 30*time.Second)
	}
	count()
	var twice []string
	for id, c := range ran {
		if c > 1 {
			twice = append(twice, id)
		}
	}
	sort.Strings(twice)
	if len(ran) != tasks || len(twice) > 0 {
		t.Fatalf("%d distinct tasks ran (want %d), run more than once: %v", len(ran), tasks, twice)
	}
	t.Logf("%d tasks in %s ms, each run once (w1 %d, w2 %d)", tasks, done[2], per["w1"], per["w2"])

	// The two NATed workers reach each other directly (a Send, not
	// through the manager): over the relay, or a punched hole.
	pinged := time.Now()
	sent, got := ping(t, w1, w2, "w2", 1, time.Minute)
	t.Logf("first ping after %d ms", time.Since(pinged).Milliseconds())
	t.Logf("w1 -> w2 arrived; w1 sees w2 %s, w2 sees w1 %s", sent, got)
	if sent == string(peer.ReachNone) || got == string(peer.ReachNone) {
		t.Fatalf("no connection reported: sender %q receiver %q", sent, got)
	}
	back, _ := ping(t, w2, w1, "w1", 2, time.Minute)
	t.Logf("w2 -> w1 arrived (%s)", back)

	// Lose the relay (its machine dies: SIGKILL, so its connections
	// close). Hole-punched pairs keep talking; relayed ones fail while it
	// is gone and reconnect once it is back.
	boot.kill()
	if sent == string(peer.ReachRelayed) {
		if line := sendPing(t, w1, "w2", 3); !strings.HasPrefix(line, "SENDERR") {
			// The send was queued on a connection not yet known dead;
			// it must not arrive (no path).
			t.Logf("send with the relay down: %s", line)
		}
		start(t, n, bootH, "bootstrap", "", key).log.AwaitLine(t, "ADDR ", 30*time.Second)
		back := time.Now()
		s, g := ping(t, w1, w2, "w2", 4, 2*time.Minute)
		t.Logf("relay back: w1 -> w2 arrives again, %d ms after it listens (%s / %s)", time.Since(back).Milliseconds(), s, g)
	} else {
		s, g := ping(t, w1, w2, "w2", 3, time.Minute)
		t.Logf("relay gone: w1 -> w2 still arrives (%s / %s)", s, g)
	}
}

// BenchmarkRelayedWorker: the task manager and one worker, each behind its
// own NAT router, meet through the bootstrap node's relay (no hole can be
// punched: nothing here has a public address). b.N no-op tasks measure
// throughput over the relay; then 1,000 sequential round trips give the
// latency.
func BenchmarkRelayedWorker(b *testing.B) {
	n := netns.New(b, "iptables")
	pub := n.Bridge("pub")
	net := n.Subnet(0)
	bootH := n.OnBridge("boot", pub, net+".1")
	_, mgrH := n.BehindNAT("m", pub, net+".11", n.Subnet(1))
	_, wH := n.BehindNAT("w", pub, net+".12", n.Subnet(2))
	boot := start(b, n, bootH, "bootstrap", "", b.TempDir()+"/boot.key")
	bootAddr := strings.Fields(boot.log.AwaitLine(b, "ADDR ", 30*time.Second))[1]
	mgr := start(b, n, mgrH, "manager-nat", bootAddr, "manager")
	mgr.log.AwaitLine(b, "ADDR ", 30*time.Second)
	start(b, n, wH, "bench-worker", bootAddr, "w")
	mgr.send(b, "WORKERS 1")
	mgr.log.AwaitLine(b, "WORKERS 1 ", time.Minute)
	b.ResetTimer()
	mgr.send(b, fmt.Sprintf("BENCH %d 1000", b.N))
	f := strings.Fields(mgr.log.AwaitLine(b, "BENCH ", 10*time.Minute))
	b.StopTimer()
	ns, _ := strconv.ParseFloat(f[1], 64)
	p50, _ := strconv.ParseFloat(f[2], 64)
	p99, _ := strconv.ParseFloat(f[3], 64)
	b.ReportMetric(float64(b.N)/(ns/1e9), "tasks/s")
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
	b.Logf("the manager reaches the worker: %s", f[4])
	if f[4] != string(peer.ReachRelayed) {
		b.Fatalf("the worker is reached %s, not over the relay", f[4])
	}
}
