package hatest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/netns"
	"github.com/ceylon-go/ceylon/peer"
)

// proc is one process of the test.
type proc struct {
	name string
	log  *netns.LineLog
	in   *os.File
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
}

// kill ends the process at once (SIGKILL).
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (p *proc) send(t testing.TB, line string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.in, line); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
}

// ask sends a command and returns the first line starting with reply that
// comes after it.
func (p *proc) ask(t testing.TB, cmd, reply string, within time.Duration) string {
	t.Helper()
	mark := len(p.log.Lines())
	p.send(t, cmd)
	var line string
	p.log.Await(t, p.name+": "+reply, within, func(lines []string) bool {
		for _, l := range lines[mark:] {
			if strings.HasPrefix(l, reply) {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// start runs this binary in role inside h (nil: in the test's own
// network namespace).
func start(t testing.TB, n *netns.Net, h *netns.Host, name, role string, args ...string) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	log := netns.NewLineLog()
	cmd := exec.Command(os.Args[0], "-test.run=^$", strings.Join(args, "|"))
	if h != nil { // else on this host's loopback
		cmd = exec.Command("ip", "netns", "exec", h.Name, os.Args[0], "-test.run=^$", strings.Join(args, "|"))
	}
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	if _, ok := t.(*testing.T); ok {
		cmd.Env = append(cmd.Env, "CEYLON_HA_SMALL_SNAPSHOTS=1")
	}
	errs := netns.NewLineLog() // the agents' logs, apart: lines of two pipes would mix
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, log, errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
	p := &proc{name: name, log: log, in: w, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = w.Close()
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s\nlog:\n%s", name, role, log.Text(), errs.Text())
		}
	})
	return p
}

// cluster is the test's network and manager processes.
type cluster struct {
	t    *testing.T
	net  *netns.Net
	dir  string
	mh   []*netns.Host
	ids  []peer.ID
	mgrs []*proc
}

func (c *cluster) addr(i int) string {
	return fmt.Sprintf("/ip4/%s/tcp/7000/p2p/%s", c.mh[i].IP, c.ids[i])
}

func (c *cluster) addrs(skip ...int) []string {
	var out []string
	for i := range c.mh {
		if !contains(skip, i) {
			out = append(out, c.addr(i))
		}
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// startManager starts manager i, joining those listed; bootstrap gives it
// the group's first configuration.
func (c *cluster) startManager(i int, bootstrap bool, joins []string) *proc {
	var ids []string
	if bootstrap {
		for _, id := range c.ids {
			ids = append(ids, id.String())
		}
	}
	p := start(c.t, c.net, c.mh[i], fmt.Sprintf("manager-%d", i), "manager",
		"/ip4/"+c.mh[i].IP+"/tcp/7000", c.dir, strconv.Itoa(i), strings.Join(ids, ","), strings.Join(joins, ","))
	p.log.AwaitLine(c.t, "ADDR", 60*time.Second)
	c.mgrs[i] = p
	return p
}

// leadingSince waits for a manager other than those in not to print that
// it leads, at a time after since, and returns it and when.
func (c *cluster) leadingSince(since int64, within time.Duration, not ...int) (int, int64) {
	c.t.Helper()
	return awaitLeading(c.t, c.mgrs, since, within, not...)
}

func awaitLeading(t testing.TB, mgrs []*proc, since int64, within time.Duration, not ...int) (int, int64) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for i, p := range mgrs {
			if p == nil || contains(not, i) {
				continue
			}
			for _, l := range p.log.Lines() {
				f := strings.Fields(l)
				if len(f) == 3 && f[0] == "LEADING" {
					if ts, _ := strconv.ParseInt(f[2], 10, 64); ts > since {
						return i, ts
					}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no manager took the lead within %v", within)
		}
		// Wait for any manager's next line.
		changed := make(chan struct{}, len(mgrs))
		for i, p := range mgrs {
			if p == nil || contains(not, i) {
				continue
			}
			go func() {
				n := len(p.log.Lines())
				if p.log.Wait(time.Until(deadline), func(lines []string) bool { return len(lines) > n }) {
					changed <- struct{}{}
				}
			}()
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
		}
	}
}

// lastState is a manager's last LEADING or STANDBY line's first word.
func lastState(p *proc) string { return lastStateOf(p.log.Lines()) }

func lastStateOf(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) == 3 && (f[0] == "LEADING" || f[0] == "STANDBY") {
			return f[0]
		}
	}
	return ""
}

// firstRunAfter waits for w's first task finished after ts and returns
// when it finished.
func firstRunAfter(t *testing.T, w *proc, ts int64, within time.Duration) int64 {
	t.Helper()
	var at int64
	w.log.Await(t, w.name+" running tasks again", within, func(lines []string) bool {
		for _, l := range lines {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "RAN" {
				if v, _ := strconv.ParseInt(f[2], 10, 64); v > ts {
					at = v
					return true
				}
			}
		}
		return false
	})
	return at
}

// partition cuts (or, with heal, restores) manager i from the managers
// listed, both ways, leaving its other links alone.
func (c *cluster) partition(i int, from []int, heal bool) {
	op := "-A"
	if heal {
		op = "-D"
	}
	for _, j := range from {
		c.net.Exec(c.mh[i], "iptables", op, "INPUT", "-s", c.mh[j].IP, "-j", "DROP")
		c.net.Exec(c.mh[i], "iptables", op, "OUTPUT", "-d", c.mh[j].IP, "-j", "DROP")
	}
}

// Three manager processes replicate the workspace's tasks; four worker
// processes and a producer process (a task.Client) know all three. While
// 2,000 tasks run: the leader is SIGKILLed at 30 % (another leads within
// 2 s, every worker runs tasks again within 1 s of that); the killed one
// comes back; the new leader is cut off from the other managers at 60 %
// (it stops leading, the majority goes on) and healed (it follows); a
// follower loses its files and catches up from a snapshot; a manager
// without the secret cannot take part. No task is lost, none succeeds
// twice as the producer, the leader and the workers count.
func TestReplicatedManagersSurviveKillPartitionAndWipe(t *testing.T) {
	n := netns.New(t, "iptables")
	br := n.Bridge("ha")
	sub := n.Subnet(0)
	c := &cluster{t: t, net: n, dir: t.TempDir(), mgrs: make([]*proc, 3)}
	for i := range 3 {
		c.mh = append(c.mh, n.OnBridge(fmt.Sprintf("m%d", i), br, fmt.Sprintf("%s.%d", sub, 10+i)))
		k, err := peer.LoadOrCreateIdentity(filepath.Join(c.dir, fmt.Sprintf("m%d.key", i)))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		c.ids = append(c.ids, id)
	}
	began := time.Now().UnixNano()
	c.startManager(0, true, nil)
	c.startManager(1, true, c.addrs(1, 2))
	c.startManager(2, true, c.addrs(2))
	first, _ := c.leadingSince(began, 60*time.Second)

	var workers []*proc
	for i := range 4 {
		h := n.OnBridge(fmt.Sprintf("w%d", i), br, fmt.Sprintf("%s.%d", sub, 20+i))
		w := start(t, n, h, fmt.Sprintf("w%d", i), "worker", "/ip4/"+h.IP+"/tcp/0", fmt.Sprintf("w%d", i),
			strings.Join(c.addrs(), ","), "4", "40")
		w.log.AwaitLine(t, "STARTED", 60*time.Second)
		workers = append(workers, w)
	}
	c.mgrs[first].ask(t, "WORKERS 4", "WORKERS 4", 60*time.Second)
	ph := n.OnBridge("p", br, sub+".30")
	prod := start(t, n, ph, "producer", "producer", "/ip4/"+ph.IP+"/tcp/0", strings.Join(c.addrs(), ","))
	prod.log.AwaitLine(t, "STARTED", 60*time.Second)
	const total = 2000
	prod.send(t, fmt.Sprintf("RUN %d", total))

	// SIGKILL the leader at 30 %.
	prod.log.AwaitLine(t, "PROGRESS 600", 120*time.Second)
	c.mgrs[first].kill()
	killed := time.Now().UnixNano()
	second, led := c.leadingSince(killed, 30*time.Second, first)
	failover := time.Duration(led - killed)
	t.Logf("killed manager-%d at 30 %%: manager-%d leads %v later", first, second, failover.Round(time.Millisecond))
	if failover > 2*time.Second {
		t.Errorf("a new leader took %v, want at most 2s", failover)
	}
	for _, w := range workers {
		if d := time.Duration(firstRunAfter(t, w, led, 30*time.Second) - led); d > time.Second {
			t.Errorf("%s ran its first task %v after the new leader took over, want at most 1s", w.name, d)
		}
	}
	// It comes back, a follower.
	c.startManager(first, true, c.addrs(first))

	// Cut the leader off from the other managers at 60 %; its workers
	// still reach it.
	prod.log.AwaitLine(t, "PROGRESS 1200", 120*time.Second)
	others := []int{}
	for i := range 3 {
		if i != second {
			others = append(others, i)
		}
	}
	c.partition(second, others, false)
	cut := time.Now().UnixNano()
	third, led3 := c.leadingSince(cut, 30*time.Second, second)
	t.Logf("cut manager-%d off at 60 %%: manager-%d leads %v later", second, third, time.Duration(led3-cut).Round(time.Millisecond))
	c.mgrs[second].log.Await(t, "the cut-off leader to stand down", 30*time.Second, func(lines []string) bool {
		return lastStateOf(lines) == "STANDBY"
	})
	c.partition(second, others, true)

	res := prod.log.AwaitLine(t, "RESULT", 300*time.Second)
	if res != fmt.Sprintf("RESULT %d 0 0", total) {
		t.Fatalf("producer: %q, want %d succeeded, 0 failed, 0 wrong", res, total)
	}
	// The leader now (the third, unless the healed one disturbed it).
	lead, _ := c.leadingSince(cut, 30*time.Second, second)
	for i, p := range c.mgrs {
		if i != second && lastState(p) == "LEADING" {
			lead = i
		}
	}
	if st := c.mgrs[lead].ask(t, "STATS", "STATS", 30*time.Second); st != fmt.Sprintf("STATS %d %d 0", total, total) {
		t.Fatalf("leader manager-%d: %q, want %d tasks, %d succeeded, 0 with two successful attempts", lead, st, total, total)
	}
	if s := lastState(c.mgrs[second]); s != "STANDBY" {
		t.Errorf("the healed manager-%d is %s, want a follower", second, s)
	}
	// From the workers' side: every task ran; count those that ran twice.
	runs := map[string]int{}
	for _, w := range workers {
		w.ask(t, "FLUSH", "FLUSHED", 30*time.Second)
		for _, l := range w.log.Lines() {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "RAN" {
				runs[f[1]]++
			}
		}
	}
	twice := 0
	for _, k := range runs {
		if k > 1 {
			twice++
		}
	}
	t.Logf("workers ran %d distinct tasks, %d of them twice", len(runs), twice)
	shown := 0
	for id, k := range runs {
		if k > 1 && shown < 3 {
			shown++
			t.Logf("ran twice: %s", c.mgrs[lead].ask(t, "TASK "+id, "TASK", 10*time.Second))
		}
	}
	if len(runs) != total {
		t.Fatalf("workers ran %d distinct tasks, want %d", len(runs), total)
	}

	// A follower loses its files and comes back empty: it catches up
	// from a snapshot.
	f := (lead + 1) % 3
	c.mgrs[f].kill()
	for _, p := range []string{fmt.Sprintf("journal-%d.db", f), fmt.Sprintf("raft-%d", f)} {
		if err := os.RemoveAll(filepath.Join(c.dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	back := c.startManager(f, false, c.addrs(f))
	if l := back.ask(t, fmt.Sprintf("JOURNALWAIT %d", total), "JOURNAL", 90*time.Second); l != fmt.Sprintf("JOURNAL %d <nil>", total) {
		t.Fatalf("the wiped follower's journal: %q, want %d tasks", l, total)
	}
	if snaps, _ := filepath.Glob(filepath.Join(c.dir, fmt.Sprintf("raft-%d", f), "snapshots", "*")); len(snaps) == 0 {
		t.Errorf("the wiped follower caught up without a snapshot")
	}

	// A manager without the secret cannot connect, so it cannot join.
	xh := n.OnBridge("x", br, sub+".40")
	x := start(t, n, xh, "intruder", "manager-wrong-secret", "/ip4/"+xh.IP+"/tcp/7000", c.dir, "9", "", c.addr(lead))
	x.log.AwaitLine(t, "ERROR", 60*time.Second)
	<-x.done // the whole error (dial errors take several lines) is out
	if out := x.log.Text(); !strings.Contains(out, "secret on both sides?") {
		t.Errorf("the intruder failed with %q, want a word on the secret", out)
	}
	if peers := c.mgrs[lead].ask(t, "PEERS", "PEERS", 10*time.Second); strings.Count(peers, ":") != 6 || strings.Contains(peers, "<nil>") == false {
		t.Errorf("the group after the intruder: %q, want the three managers", peers)
	}
}
