package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// netSeq tells apart the networks of one test process.
var netSeq atomic.Int32

// netHost is one namespace on the test bridge.
type netHost struct {
	name string // namespace
	veth string // the bridge-side end, in the root namespace
	ip   string
}

// testNet builds namespaces joined by veth pairs to a bridge, and removes
// them (and everything running in them) when the test ends, failed or not.
type testNet struct {
	t      *testing.T
	bridge string
	hosts  map[string]netHost
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newTestNet(t *testing.T, names ...string) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("skipping: ip is not available (install iproute2): %v", err)
	}
	// Root without CAP_NET_ADMIN (a locked-down container) lists
	// namespaces but cannot make one: try.
	probe := fmt.Sprintf("cyprobe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create a network namespace here (no CAP_NET_ADMIN?): %v %s", err, out)
	}
	_ = exec.Command("ip", "netns", "del", probe).Run()
	id := (os.Getpid()*7 + int(netSeq.Add(1))) % 100000 // tests of one process run side by side
	n := &testNet{t: t, bridge: fmt.Sprintf("cyb%d", id), hosts: map[string]netHost{}}
	subnet := fmt.Sprintf("10.%d.%d", 100+id%100, id/100%250)
	t.Cleanup(n.destroy)
	run(t, "ip", "link", "add", n.bridge, "type", "bridge")
	run(t, "ip", "link", "set", n.bridge, "up")
	for i, name := range names {
		h := netHost{name: fmt.Sprintf("cy%d%s", id, name), veth: fmt.Sprintf("cyv%d%s", id, name), ip: fmt.Sprintf("%s.%d", subnet, i+1)}
		inside := fmt.Sprintf("cyi%d%s", id, name)
		n.hosts[name] = h
		run(t, "ip", "netns", "add", h.name)
		run(t, "ip", "link", "add", h.veth, "type", "veth", "peer", "name", inside)
		run(t, "ip", "link", "set", inside, "netns", h.name)
		run(t, "ip", "link", "set", h.veth, "master", n.bridge)
		run(t, "ip", "link", "set", h.veth, "up")
		run(t, "ip", "netns", "exec", h.name, "ip", "addr", "add", h.ip+"/24", "dev", inside)
		run(t, "ip", "netns", "exec", h.name, "ip", "link", "set", inside, "up")
		run(t, "ip", "netns", "exec", h.name, "ip", "link", "set", "lo", "up")
	}
	return n
}

func (n *testNet) destroy() {
	for _, h := range n.hosts {
		// Whatever still runs in the namespace dies with the test.
		if out, err := exec.Command("ip", "netns", "pids", h.name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				_ = exec.Command("kill", "-9", pid).Run()
			}
		}
		_ = exec.Command("ip", "netns", "del", h.name).Run()
		_ = exec.Command("ip", "link", "del", h.veth).Run()
	}
	_ = exec.Command("ip", "link", "del", n.bridge).Run()
}

// start runs a command inside a host's namespace.
func (n *testNet) start(host string, stdout *lineLog, args ...string) *exec.Cmd {
	n.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.hosts[host].name}, args...)...)
	cmd.Stdout, cmd.Stderr = stdout, stdout
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// lineLog collects a process's output lines and lets a test wait for one.
type lineLog struct {
	mu      sync.Mutex
	lines   []string
	partial string
	changed chan struct{}
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sc := bufio.NewScanner(strings.NewReader(l.partial + string(p)))
	l.partial = ""
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if len(p) > 0 && p[len(p)-1] != '\n' && len(got) > 0 {
		l.partial = got[len(got)-1]
		got = got[:len(got)-1]
	}
	l.lines = append(l.lines, got...)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

func (l *lineLog) await(t *testing.T, what string, within time.Duration, ok func(lines []string) bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		l.mu.Lock()
		done, ch := ok(l.lines), l.changed
		l.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (l *lineLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

var okLine = regexp.MustCompile(`^result  task (\d+)\s+ok `)

func countOK(lines []string) int {
	n := 0
	for _, l := range lines {
		if okLine.MatchString(l) {
			n++
		}
	}
	return n
}

// An admin and three workers, each a separate OS process in its own
// network namespace: while 500 tasks run, one worker is killed with
// SIGKILL and another loses its link for six seconds. Every task must
// succeed exactly once, and the admin's report must agree.
func TestFaultsAcrossNamespaces(t *testing.T) {
	t.Parallel()
	net := newTestNet(t, "adm", "w1", "w2", "w3")
	bin := build(t)
	const tasks = 500
	common := []string{"-workspace", "faults", "-scale", "15ms", "-secret", "netns-test"}

	adminLog := newLineLog()
	admin := net.start("adm", adminLog, append([]string{bin, "-role", "admin", "-workers", "3", "-tasks", fmt.Sprint(tasks),
		"-listen", fmt.Sprintf("/ip4/%s/tcp/7000", net.hosts["adm"].ip), "-timeout", "4m"}, common...)...)
	var addr string
	adminLog.await(t, "the admin's address", 30*time.Second, func(lines []string) bool {
		for _, l := range lines {
			if m := regexp.MustCompile(`-join (\S+)`).FindStringSubmatch(l); m != nil {
				addr = m[1]
				return true
			}
		}
		return false
	})
	workers := map[string]*exec.Cmd{}
	logs := map[string]*lineLog{}
	for _, w := range []string{"w1", "w2", "w3"} {
		logs[w] = newLineLog()
		workers[w] = net.start(w, logs[w], append([]string{bin, "-role", "worker", "-join", addr, "-name", w, "-skill", "5",
			"-concurrency", "2", "-listen", fmt.Sprintf("/ip4/%s/tcp/0", net.hosts[w].ip), "-timeout", "4m"}, common...)...)
	}

	adminLog.await(t, "60 results", 2*time.Minute, func(lines []string) bool { return countOK(lines) >= 60 })
	if err := workers["w1"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	adminLog.await(t, "120 results", 2*time.Minute, func(lines []string) bool { return countOK(lines) >= 120 })
	run(t, "ip", "link", "set", net.hosts["w2"].veth, "down")
	time.Sleep(6 * time.Second) // the outage itself
	run(t, "ip", "link", "set", net.hosts["w2"].veth, "up")

	if err := waitExit(admin, 4*time.Minute); err != nil {
		t.Fatalf("admin: %v\n%s", err, adminLog.text())
	}

	out := adminLog.text()
	if i := strings.Index(out, "== final report"); i >= 0 {
		t.Logf("admin's report:\n%s", out[i:])
	}
	t.Logf("requeue lines: %d, retry lines: %d", strings.Count(out, "requeue task"), strings.Count(out, "retry   task"))
	perTask := map[string]int{}
	for _, l := range strings.Split(out, "\n") {
		if m := okLine.FindStringSubmatch(l); m != nil {
			perTask[m[1]]++
		}
	}
	for i := 1; i <= tasks; i++ {
		if n := perTask[fmt.Sprint(i)]; n != 1 {
			t.Errorf("task %d succeeded %d times", i, n)
		}
	}
	if want := fmt.Sprintf("tasks: %d submitted, %d succeeded, 0 failed", tasks, tasks); !strings.Contains(out, want) {
		t.Errorf("report does not say %q:\n%s", want, out)
	}
	if m := regexp.MustCompile(`(\d+) requeued`).FindStringSubmatch(out); m == nil || m[1] == "0" {
		t.Errorf("nothing was requeued, so the killed worker held no tasks:\n%s", out)
	}
	for _, w := range []string{"w2", "w3"} {
		if err := waitExit(workers[w], 30*time.Second); err != nil {
			t.Errorf("worker %s after the shutdown: %v\n%s", w, err, logs[w].text())
		}
	}
}

// waitExit waits for cmd to exit, for at most within.
func waitExit(cmd *exec.Cmd, within time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		return fmt.Errorf("still running after %v", within)
	}
}

// Workers started with -mdns and no address find the admin on the LAN (two
// namespaces on one bridge), and the scenario runs to the end.
func TestMDNSDiscoveryAcrossNamespaces(t *testing.T) {
	t.Parallel()
	net := newTestNet(t, "madm", "mw1")
	bin := build(t)
	common := []string{"-workspace", "mdns", "-scale", "1ms", "-timeout", "2m"}
	adminLog := newLineLog()
	admin := net.start("madm", adminLog, append([]string{bin, "-role", "admin", "-workers", "1", "-tasks", "20", "-mdns",
		"-listen", fmt.Sprintf("/ip4/%s/tcp/7000", net.hosts["madm"].ip)}, common...)...)
	net.start("mw1", newLineLog(), append([]string{bin, "-role", "worker", "-mdns", "-name", "finder", "-skill", "5",
		"-listen", fmt.Sprintf("/ip4/%s/tcp/0", net.hosts["mw1"].ip)}, common...)...)
	if err := waitExit(admin, 90*time.Second); err != nil {
		t.Fatalf("admin: %v\n%s", err, adminLog.text())
	}
	if out := adminLog.text(); !strings.Contains(out, "connected: finder (worker)") || !strings.Contains(out, "tasks: 20 submitted, 20 succeeded") {
		t.Fatalf("output:\n%s", out)
	}
}
