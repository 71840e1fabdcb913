package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
)

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "pipeline")
	if err != nil {
		return "", err
	}
	return testutil.CommandLink(dir, "pipeline")
})

func build(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestMain(m *testing.M) {
	testutil.RunAsCommand("pipeline", main)
	races := testutil.CatchChildRaces()
	code := races.Check(m.Run())
	if bin, err := buildOnce(); err == nil {
		_ = os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func TestPipelineRuns(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	out, err := exec.CommandContext(ctx, bin, "-chunks", "16", "-size", "10000", "-work", "1ms").CombinedOutput()
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{
		"pipeline: 1 preparation -> 16 processing -> 1 aggregation",
		"tasks 18/18 (100%)",
		"result: sum of squares 1..10000 = 333383335000 (expected 333383335000)",
		"tasks: 18 submitted, 18 succeeded, 0 failed",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// A producer in a process of its own submits the pipeline to a playground
// that serves producers (-serve) and gets the right result.
func TestProducerProcess(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	pg := exec.CommandContext(ctx, bin, "-serve", "-workspace", "producers", "-work", "1ms")
	out, err := pg.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Process.Kill(); _ = pg.Wait() })
	var addr string
	sc := bufio.NewScanner(out)
	for addr == "" && sc.Scan() {
		if m := regexp.MustCompile(`-join (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if addr == "" {
		t.Fatal("the playground printed no address")
	}
	res, err := exec.CommandContext(ctx, bin, "-role", "producer", "-workspace", "producers", "-join", addr, "-name", "p1",
		"-chunks", "8", "-size", "1000").CombinedOutput()
	if err != nil || !strings.Contains(string(res), "producer p1: result: sum of squares 1..1000 = 333833500 (expected 333833500)") {
		t.Fatalf("producer: %v\n%s", err, res)
	}
}

// lines is a process's output, line by line, with a way to await one.
type lines struct {
	mu   sync.Mutex
	all  []string
	more chan struct{}
}

func follow(t *testing.T, cmd *exec.Cmd) *lines {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	l := &lines{more: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			close(l.more)
			l.more = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	return l
}

// await returns the first submatch of the first line matching re, waiting
// for it until ctx ends (then it fails the test, with the output).
func (l *lines) await(ctx context.Context, t *testing.T, re string) string {
	t.Helper()
	m, ok := l.match(ctx, re)
	if !ok {
		t.Fatalf("no line matching %q:\n%s", re, l.String())
	}
	return m
}

// match is await without the test: false if ctx ended first.
func (l *lines) match(ctx context.Context, re string) (string, bool) {
	rx := regexp.MustCompile(re)
	for seen := 0; ; {
		l.mu.Lock()
		for ; seen < len(l.all); seen++ {
			if m := rx.FindStringSubmatch(l.all[seen]); m != nil {
				l.mu.Unlock()
				return m[len(m)-1], true
			}
		}
		more := l.more
		l.mu.Unlock()
		select {
		case <-more:
		case <-ctx.Done():
			return "", false
		}
	}
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// Three replicated playground processes; a producer submits the pipeline;
// the leading playground is SIGKILLed while the DAG runs; another takes
// over from the replicated journal and the producer gets the right result.
func TestReplicatedPlaygroundsSurviveTheLeadersLoss(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := build(t)
	dir := t.TempDir()
	const secret = "pipeline-replicas"
	ws := "replicated-pipeline"
	var ids []string
	for i := range 3 {
		out, err := exec.CommandContext(ctx, bin, "-role", "id", "-key", filepath.Join(dir, fmt.Sprint("k", i))).Output()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimSpace(string(out)))
	}
	var pgs []*lines
	var cmds []*exec.Cmd
	var addrs []string
	for i := range 3 {
		args := []string{"-workspace", ws, "-secret", secret, "-key", filepath.Join(dir, fmt.Sprint("k", i)),
			"-replicate", filepath.Join(dir, fmt.Sprint("d", i)), "-replicas", strings.Join(ids, ","), "-workers", "0"}
		if len(addrs) > 0 {
			args = append(args, "-join", strings.Join(addrs, ","))
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		l := follow(t, cmd)
		addrs = append(addrs, l.await(ctx, t, `-join (\S+)`))
		pgs, cmds = append(pgs, l), append(cmds, cmd)
	}
	lead := -1
	leading := make(chan int, 3)
	for i, l := range pgs {
		go func() {
			if _, ok := l.match(ctx, `leading the playgrounds \(term (\d+)\)`); ok {
				leading <- i
			}
		}()
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, l := range pgs {
				t.Logf("playground %d:\n%s", i, l)
			}
		}
	})
	select {
	case lead = <-leading:
	case <-ctx.Done():
		t.Fatal("no playground leads")
	}
	join := strings.Join(addrs, ",")
	w := follow(t, exec.CommandContext(ctx, bin, "-role", "worker", "-workspace", ws, "-secret", secret, "-join", join, "-name", "w", "-work", "100ms"))
	w.await(ctx, t, `worker w joined`)
	p := follow(t, exec.CommandContext(ctx, bin, "-role", "producer", "-workspace", ws, "-secret", secret, "-join", join, "-name", "p",
		"-chunks", "24", "-size", "10000"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("worker:\n%s\nproducer:\n%s", w, p)
		}
	})
	p.await(ctx, t, `producer p: pipeline (submitted)`)
	if err := cmds[lead].Process.Kill(); err != nil { // SIGKILL, the DAG running
		t.Fatal(err)
	}
	select {
	case next := <-leading:
		if next == lead {
			t.Fatal("the killed playground leads again")
		}
	case <-ctx.Done():
		t.Fatal("no playground took over")
	}
	p.await(ctx, t, `producer p: result: sum of squares 1\.\.10000 = 333383335000 \(expected (333383335000)\)`)
}
