package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
)

// build returns the example's command: this test binary under the
// example's name (see testutil.RunAsCommand), made once for all the
// package's tests.
func build(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "skill_routing")
	if err != nil {
		return "", err
	}
	binDir = dir
	return testutil.CommandLink(dir, "skill_routing")
})

// binDir holds the example's command; TestMain removes it.
var binDir string

func TestMain(m *testing.M) {
	testutil.RunAsCommand("skill_routing", main)
	races := testutil.CatchChildRaces()
	code := races.Check(m.Run())
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func checkReport(t *testing.T, out string) {
	t.Helper()
	for _, want := range []string{
		"connected: Junior (worker)", "connected: Senior (worker)",
		"assign  task 1", "result  task 3   ok",
		"running task 3    12% step 1 of 8 (Senior)", // progress, as the worker reports it
		"FAILED", // difficulty 10 is too hard for everyone
		"tasks: 13 submitted, 12 succeeded, 1 failed",
		"shutting down workers",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestAllInOneProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, build(t), "-scale", "2ms").CombinedOutput()
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	checkReport(t, string(out))
}

// The same program as four OS processes: an admin and three workers that
// join it with the address it prints.
func TestSeparateProcesses(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	admin := exec.CommandContext(ctx, bin, "-role", "admin", "-listen", "/ip4/127.0.0.1/tcp/0", "-scale", "2ms", "-workspace", "procs")
	stdout, err := admin.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	admin.Stderr = os.Stderr
	if err := admin.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	joinRe := regexp.MustCompile(`-join (\S+)`)
	var addr string
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if m := joinRe.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	if addr == "" {
		t.Fatalf("admin printed no address:\n%s", out.String())
	}
	var workers []*exec.Cmd
	for _, w := range [][2]string{{"Junior", "3"}, {"Intermediate", "6"}, {"Senior", "9"}} {
		cmd := exec.CommandContext(ctx, bin, "-role", "worker", "-join", addr, "-name", w[0], "-skill", w[1],
			"-scale", "2ms", "-workspace", "procs", "-listen", "/ip4/127.0.0.1/tcp/0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, cmd)
	}
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
	}
	if err := admin.Wait(); err != nil {
		t.Fatalf("admin: %v\n%s", err, out.String())
	}
	for _, w := range workers {
		if err := w.Wait(); err != nil {
			t.Errorf("worker %v: %v", w.Args, err)
		}
	}
	checkReport(t, out.String())
}

// Workers given only the workspace ID, its secret and a bootstrap address
// (a -role bootstrap node) find the admin, which bootstraps from the same
// node, and the scenario runs to the end.
func TestWorkersFindTheAdminByWorkspaceID(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	common := []string{"-workspace", "by-id", "-secret", "found", "-scale", "2ms", "-listen", "/ip4/127.0.0.1/tcp/0"}
	boot := exec.CommandContext(ctx, bin, append([]string{"-role", "bootstrap"}, common...)...)
	bootOut, err := boot.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := boot.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = boot.Process.Kill(); _ = boot.Wait() })
	var entry string
	for sc := bufio.NewScanner(bootOut); entry == "" && sc.Scan(); {
		if m := regexp.MustCompile(`-bootstrap (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			entry = m[1]
		}
	}
	if entry == "" {
		t.Fatal("the bootstrap node printed no address")
	}
	admin := exec.CommandContext(ctx, bin, append([]string{"-role", "admin", "-bootstrap", entry}, common...)...)
	var out strings.Builder
	admin.Stdout, admin.Stderr = &out, os.Stderr
	if err := admin.Start(); err != nil {
		t.Fatal(err)
	}
	var workers []*exec.Cmd
	for _, w := range [][2]string{{"Junior", "3"}, {"Intermediate", "6"}, {"Senior", "9"}} {
		cmd := exec.CommandContext(ctx, bin, append([]string{"-role", "worker", "-bootstrap", entry, "-name", w[0], "-skill", w[1]}, common...)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		workers = append(workers, cmd)
	}
	if err := admin.Wait(); err != nil {
		t.Fatalf("admin: %v\n%s", err, out.String())
	}
	for _, w := range workers {
		if err := w.Wait(); err != nil {
			t.Errorf("worker %v: %v", w.Args, err)
		}
	}
	checkReport(t, out.String())
}

// A producer in a process of its own submits tasks to an admin that runs
// none of its own (-serve); the worker runs them, the producer sees every
// result, and the admin's report counts them once it is interrupted.
func TestProducerProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	common := []string{"-workspace", "producers", "-scale", "1ms", "-listen", "/ip4/127.0.0.1/tcp/0"}
	admin := exec.CommandContext(ctx, bin, append([]string{"-role", "admin", "-serve", "-workers", "1"}, common...)...)
	adminOut, err := admin.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(); err != nil {
		t.Fatal(err)
	}
	var report strings.Builder
	var addr string
	sc := bufio.NewScanner(adminOut)
	for addr == "" && sc.Scan() {
		report.WriteString(sc.Text() + "\n")
		if m := regexp.MustCompile(`-join (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	reportDone := make(chan struct{})
	go func() {
		for sc.Scan() {
			report.WriteString(sc.Text() + "\n")
		}
		close(reportDone)
	}()
	worker := exec.CommandContext(ctx, bin, append([]string{"-role", "worker", "-join", addr, "-name", "W", "-skill", "5"}, common...)...)
	var workerOut strings.Builder
	worker.Stdout, worker.Stderr = &workerOut, &workerOut
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, bin, append([]string{"-role", "producer", "-join", addr, "-name", "P", "-tasks", "30"}, common...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "producer P: 30 done, 0 failed") || strings.Count(string(out), " ok ") != 30 {
		t.Fatalf("producer: %v\n%s", err, out)
	}
	// Ctrl-C on the worker is a clean stop: exit 0, and it says so.
	if err := worker.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := worker.Wait(); err != nil || !strings.Contains(workerOut.String(), "stopped (interrupted)") {
		t.Fatalf("worker after Ctrl-C: %v\n%s", err, workerOut.String())
	}
	if err := admin.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	<-reportDone
	if err := admin.Wait(); err != nil {
		t.Fatalf("admin: %v\n%s", err, report.String())
	}
	if !strings.Contains(report.String(), "tasks: 30 submitted, 30 succeeded") {
		t.Fatalf("admin's report:\n%s", report.String())
	}
}
