package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/netns"
)

// startProc runs the example as a separate process, logging its output.
func startProc(t *testing.T, log *netns.LineLog, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// The admin is killed (SIGKILL) in the middle of 300 tasks and started
// again on the same journal, key and address. The workers reconnect by
// themselves, and every task ends with exactly one success.
func TestAdminKilledAndRestartedOnItsJournal(t *testing.T) {
	t.Parallel()
	bin := build(t)
	dir := t.TempDir()
	const tasks = 300
	// The first run binds a port of its choosing; the restart binds the
	// same one (the workers redial that address), which the killed
	// process has just released.
	adminArgs := func(port string) []string {
		return []string{bin, "-role", "admin", "-workers", "3", "-tasks", fmt.Sprint(tasks), "-scale", "10ms",
			"-listen", "/ip4/127.0.0.1/tcp/" + port, "-workspace", "crash",
			"-key", filepath.Join(dir, "admin.key"), "-journal", filepath.Join(dir, "tasks.db"), "-timeout", "3m"}
	}

	run1 := netns.NewLineLog()
	admin := startProc(t, run1, adminArgs("0")...)
	var addr string
	run1.Await(t, "the admin's address", 30*time.Second, func(lines []string) bool {
		for _, l := range lines {
			if m := regexp.MustCompile(`-join (\S+)`).FindStringSubmatch(l); m != nil {
				addr = m[1]
				return true
			}
		}
		return false
	})
	var workers []*exec.Cmd
	for i := range 3 {
		workers = append(workers, startProc(t, netns.NewLineLog(), bin, "-role", "worker", "-join", addr, "-name", fmt.Sprint("w", i),
			"-skill", "5", "-concurrency", "2", "-workspace", "crash", "-listen", "/ip4/127.0.0.1/tcp/0", "-timeout", "3m"))
	}
	run1.Await(t, "80 results", 2*time.Minute, func(lines []string) bool { return countOK(lines) >= 80 })
	if err := admin.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = admin.Wait()

	port := regexp.MustCompile(`/tcp/(\d+)/`).FindStringSubmatch(addr)
	if port == nil {
		t.Fatalf("no port in %q", addr)
	}
	run2 := netns.NewLineLog()
	admin2 := startProc(t, run2, adminArgs(port[1])...)
	if err := waitExit(admin2, 3*time.Minute); err != nil {
		t.Fatalf("restarted admin: %v\n%s", err, run2.Text())
	}

	out1, out2 := run1.Text(), run2.Text()
	if !strings.Contains(out2, "resumed ") {
		t.Errorf("the restarted admin did not resume:\n%s", out2)
	}
	seen := map[string]int{}
	for _, l := range strings.Split(out1+"\n"+out2, "\n") {
		if m := okLine.FindStringSubmatch(l); m != nil {
			seen[m[1]]++
		}
	}
	for id, n := range seen {
		if n > 1 {
			t.Errorf("task %s succeeded %d times", id, n)
		}
	}
	// The journal holds one record per task, so 300 successes among 300
	// tasks is one success each.
	if want := fmt.Sprintf("tasks: %d submitted, %d succeeded, 0 failed", tasks, tasks); !strings.Contains(out2, want) {
		t.Errorf("final report does not say %q:\n%s", want, out2)
	}
	for i, w := range workers {
		if err := waitExit(w, 30*time.Second); err != nil {
			t.Errorf("worker %d after the shutdown: %v", i, err)
		}
	}
	t.Logf("run 1 printed %d results before the kill; run 2 printed %d", countOK(strings.Split(out1, "\n")), countOK(strings.Split(out2, "\n")))
}

// A journal that is not one fails the admin at start, with a clear error.
func TestAdminRefusesACorruptJournal(t *testing.T) {
	t.Parallel()
	bin := build(t)
	path := filepath.Join(t.TempDir(), "broken.db")
	if err := exec.Command("sh", "-c", "head -c 65536 /dev/urandom > "+path).Run(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-role", "admin", "-listen", "/ip4/127.0.0.1/tcp/0", "-journal", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "journal corrupt") {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
}
