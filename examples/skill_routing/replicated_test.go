package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines collects a process's output and lets the test wait for a line.
type lines struct {
	mu   sync.Mutex
	all  []string
	more chan struct{}
}

func collect(t *testing.T, cmd *exec.Cmd) *lines {
	t.Helper()
	return collectInto(t, cmd, &lines{more: make(chan struct{})}, "")
}

// collectInto adds cmd's output to l, each line after prefix.
func collectInto(t *testing.T, cmd *exec.Cmd, l *lines, prefix string) *lines {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, prefix+sc.Text())
			close(l.more)
			l.more = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s:\n%s", strings.Join(cmd.Args, " "), l.text())
		}
	})
	return l
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// await waits for a line matching re and returns its submatches.
func (l *lines) await(t *testing.T, re *regexp.Regexp, within time.Duration) []string {
	t.Helper()
	deadline := time.After(within)
	for {
		l.mu.Lock()
		for _, s := range l.all {
			if m := re.FindStringSubmatch(s); m != nil {
				l.mu.Unlock()
				return m
			}
		}
		more := l.more
		l.mu.Unlock()
		select {
		case <-more:
		case <-deadline:
			t.Fatalf("no line matching %s within %v", re, within)
		}
	}
}

// Three replicated admins (-replicate), a worker and a producer that
// -join all three: the leading admin is killed while the producer's tasks
// run, another takes the lead, and the producer gets every result.
func TestReplicatedAdmins(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := build(t)
	dir := t.TempDir()
	common := []string{"-workspace", "replicated", "-secret", "s3cret", "-scale", "2ms", "-listen", "/ip4/127.0.0.1/tcp/0"}
	var ids []string
	for i := range 3 {
		out, err := exec.CommandContext(ctx, bin, "-role", "id", "-key", filepath.Join(dir, fmt.Sprintf("k%d", i))).Output()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, strings.TrimSpace(string(out)))
	}
	all := &lines{more: make(chan struct{})} // the three admins' output, each line after "a<i>: "
	var cmds []*exec.Cmd
	var addrs []string
	for i := range 3 {
		args := append([]string{"-role", "admin", "-key", filepath.Join(dir, fmt.Sprintf("k%d", i)),
			"-replicate", filepath.Join(dir, fmt.Sprintf("a%d", i)), "-replicas", strings.Join(ids, ",")}, common...)
		if len(addrs) > 0 {
			args = append(args, "-join", strings.Join(addrs, ","))
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		collectInto(t, cmd, all, fmt.Sprintf("a%d: ", i))
		addrs = append(addrs, all.await(t, regexp.MustCompile(fmt.Sprintf(`^a%d: .*-join (\S+)`, i)), time.Minute)[1])
		cmds = append(cmds, cmd)
	}
	m := all.await(t, regexp.MustCompile(`^a(\d): leading the task managers`), time.Minute)
	leader := int(m[1][0] - '0')
	join := strings.Join(addrs, ",")
	collect(t, exec.CommandContext(ctx, bin, append([]string{"-role", "worker", "-join", join, "-name", "W", "-skill", "5", "-concurrency", "4"}, common...)...))
	prod := collect(t, exec.CommandContext(ctx, bin, append([]string{"-role", "producer", "-join", join, "-name", "P", "-tasks", "300"}, common...)...))
	prod.await(t, regexp.MustCompile(` ok `), time.Minute)
	if err := cmds[leader].Process.Kill(); err != nil {
		t.Fatal(err)
	}
	prod.await(t, regexp.MustCompile(`producer P: 300 done, 0 failed`), 2*time.Minute)
	all.await(t, regexp.MustCompile(fmt.Sprintf(`^a[^%d]: leading the task managers`, leader)), time.Minute)
}

// A worker told to join an address where nothing listens says, while it
// retries, that it is retrying and what may be wrong; the -timeout then
// ends it, naming the flag.
func TestWrongJoinSaysRetrying(t *testing.T) {
	t.Parallel()
	bin := build(t)
	out, err := exec.Command(bin, "-role", "worker", "-timeout", "5s", "-listen", "/ip4/127.0.0.1/tcp/0",
		"-join", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEsFBb52sYiZaZyvagaTh7pM4yohfwMAKuhcaEyFLispv").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "still trying to reach /ip4/127.0.0.1/tcp/1/") ||
		!strings.Contains(string(out), "is the admin running") || strings.Contains(string(out), "secret") ||
		!strings.Contains(string(out), "-timeout 5s") {
		t.Fatalf("%v\n%s", err, out)
	}
}
