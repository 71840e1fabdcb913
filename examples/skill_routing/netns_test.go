package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/netns"
)

// lan puts one namespace per name on a bridge (a LAN); every namespace,
// and whatever runs in it, goes when the test ends.
func lan(t *testing.T, names ...string) (*netns.Net, map[string]*netns.Host) {
	t.Helper()
	n := netns.New(t)
	br := n.Bridge("lan")
	hosts := map[string]*netns.Host{}
	for i, name := range names {
		hosts[name] = n.OnBridge(name, br, fmt.Sprintf("%s.%d", n.Subnet(0), i+1))
	}
	return n, hosts
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
	net, hosts := lan(t, "adm", "w1", "w2", "w3")
	bin := build(t)
	const tasks = 500
	common := []string{"-workspace", "faults", "-scale", "15ms", "-secret", "netns-test"}

	adminLog := netns.NewLineLog()
	admin := net.Start(hosts["adm"], adminLog, append([]string{bin, "-role", "admin", "-workers", "3", "-tasks", fmt.Sprint(tasks),
		"-listen", fmt.Sprintf("/ip4/%s/tcp/7000", hosts["adm"].IP), "-timeout", "4m"}, common...)...)
	var addr string
	adminLog.Await(t, "the admin's address", 30*time.Second, func(lines []string) bool {
		for _, l := range lines {
			if m := regexp.MustCompile(`-join (\S+)`).FindStringSubmatch(l); m != nil {
				addr = m[1]
				return true
			}
		}
		return false
	})
	workers := map[string]*exec.Cmd{}
	logs := map[string]*netns.LineLog{}
	for _, w := range []string{"w1", "w2", "w3"} {
		logs[w] = netns.NewLineLog()
		workers[w] = net.Start(hosts[w], logs[w], append([]string{bin, "-role", "worker", "-join", addr, "-name", w, "-skill", "5",
			"-concurrency", "2", "-listen", fmt.Sprintf("/ip4/%s/tcp/0", hosts[w].IP), "-timeout", "4m"}, common...)...)
	}

	adminLog.Await(t, "60 results", 2*time.Minute, func(lines []string) bool { return countOK(lines) >= 60 })
	if err := workers["w1"].Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	adminLog.Await(t, "120 results", 2*time.Minute, func(lines []string) bool { return countOK(lines) >= 120 })
	net.Cut(hosts["w2"], false)
	time.Sleep(6 * time.Second) // the outage itself
	net.Cut(hosts["w2"], true)

	if err := waitExit(admin, 4*time.Minute); err != nil {
		t.Fatalf("admin: %v\n%s", err, adminLog.Text())
	}

	out := adminLog.Text()
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
			t.Errorf("worker %s after the shutdown: %v\n%s", w, err, logs[w].Text())
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
	net, hosts := lan(t, "madm", "mw1")
	bin := build(t)
	common := []string{"-workspace", "mdns", "-scale", "1ms", "-timeout", "2m"}
	adminLog := netns.NewLineLog()
	admin := net.Start(hosts["madm"], adminLog, append([]string{bin, "-role", "admin", "-workers", "1", "-tasks", "20", "-mdns",
		"-listen", fmt.Sprintf("/ip4/%s/tcp/7000", hosts["madm"].IP)}, common...)...)
	net.Start(hosts["mw1"], netns.NewLineLog(), append([]string{bin, "-role", "worker", "-mdns", "-name", "finder", "-skill", "5",
		"-listen", fmt.Sprintf("/ip4/%s/tcp/0", hosts["mw1"].IP)}, common...)...)
	if err := waitExit(admin, 90*time.Second); err != nil {
		t.Fatalf("admin: %v\n%s", err, adminLog.Text())
	}
	if out := adminLog.Text(); !strings.Contains(out, "connected: finder (worker)") || !strings.Contains(out, "tasks: 20 submitted, 20 succeeded") {
		t.Fatalf("output:\n%s", out)
	}
}
