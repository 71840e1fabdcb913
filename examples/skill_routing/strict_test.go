package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

// With -strict the admin serves other agents only in the roles their
// grants give them: the worker with a grant runs every task, the one
// without is told it is refused, the producer with a grant submits, the
// one without is refused with a named error.
func TestStrictRoles(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, dir := build(t), t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	idOf := func(name string) peer.ID {
		k, err := peer.LoadOrCreateIdentity(file(name + ".key"))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	adminKey, err := peer.LoadOrCreateIdentity(file("admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []task.Grant{
		{ID: "w1", Subject: idOf("w1"), Roles: []task.Role{task.RoleWorker}, Types: []string{"skill"}, Expires: time.Now().Add(time.Hour)},
		{ID: "p", Subject: idOf("p"), Roles: []task.Role{task.RoleProducer}, Expires: time.Now().Add(time.Hour)},
	} {
		b, err := task.IssueGrant(adminKey, g)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file(g.ID+".grant"), []byte(task.EncodeGrant(b)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"-workspace", "strict", "-scale", "1ms", "-listen", "/ip4/127.0.0.1/tcp/0"}
	admin := exec.CommandContext(ctx, bin, append([]string{"-role", "admin", "-serve", "-strict", "-key", file("admin.key")}, common...)...)
	adminOut, err := admin.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Process.Kill(); _ = admin.Wait() })
	var addr string
	sc := bufio.NewScanner(adminOut)
	for addr == "" && sc.Scan() {
		if m := regexp.MustCompile(`-join (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	worker := func(name string, extra ...string) (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.CommandContext(ctx, bin, append(append([]string{"-role", "worker", "-join", addr, "-name", name, "-skill", "9", "-key", file(name + ".key")}, extra...), common...)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd, bufio.NewScanner(out)
	}
	awaitLine := func(sc *bufio.Scanner, what string) string {
		t.Helper()
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, what) {
				go func() {
					for sc.Scan() {
					}
				}()
				return line
			}
		}
		t.Fatalf("no line with %q", what)
		return ""
	}
	_, w1 := worker("w1", "-grant", file("w1.grant"))
	awaitLine(w1, "worker w1: registered for skill")
	_, w2 := worker("w2")
	if line := awaitLine(w2, "worker w2: registration refused"); !strings.Contains(line, "unauthorized") {
		t.Fatalf("w2: %s", line)
	}
	producer := func(name string, extra ...string) (string, error) {
		out, err := exec.CommandContext(ctx, bin, append(append([]string{"-role", "producer", "-join", addr, "-name", name, "-tasks", "10", "-key", file(name + ".key")}, extra...), common...)...).CombinedOutput()
		return string(out), err
	}
	out, err := producer("p", "-grant", file("p.grant"))
	if err != nil || !strings.Contains(out, "producer p: 10 done, 0 failed") || strings.Count(out, "by w1") != 10 {
		t.Fatalf("the producer with a grant: %v\n%s", err, out)
	}
	out, err = producer("nogrant")
	if err == nil || !strings.Contains(out, "unauthorized") {
		t.Fatalf("the producer without a grant: %v\n%s", err, out)
	}
}
