package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

var bin string // the ceylon command: this test binary under the command's name

func TestMain(m *testing.M) {
	testutil.RunAsCommand("ceylon", main)
	dir, err := os.MkdirTemp("", "ceylon-cli")
	if err != nil {
		panic(err)
	}
	if bin, err = testutil.CommandLink(dir, "ceylon"); err != nil {
		panic(err)
	}
	races := testutil.CatchChildRaces()
	code := races.Check(m.Run())
	_ = os.RemoveAll(dir)
	os.Exit(testutil.CheckLeaks(code))
}

// workspace starts a manager (with a monitor) and one worker of one slot
// running "ok", "fail" and "block" (held until the test ends).
func workspace(t *testing.T, ws string) (*task.Manager, *monitor.Server) {
	t.Helper()
	ctx := testutil.Context(t)
	loop := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")
	admin, err := agent.New("task_manager", agent.AsAdmin(), loop, agent.WithWorkspace(ws))
	if err != nil {
		t.Fatal(err)
	}
	m, err := task.NewManager(admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	a, err := agent.New("W", loop, agent.WithWorkspace(ws), agent.WithJoin(m.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	w, err := task.NewWorker(a)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	w.Handle("ok", func(context.Context, *task.Job) ([]byte, error) { return nil, nil })
	w.Handle("fail", func(context.Context, *task.Job) ([]byte, error) { return nil, errors.New("disk on fire") })
	w.Handle("block", func(ctx context.Context, j *task.Job) ([]byte, error) {
		j.Progress(0.25, "a quarter")
		select {
		case <-ctx.Done():
		case <-release:
		}
		return nil, nil
	})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(release); _ = w.Stop() })
	if err := m.WaitForWorkers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	srv, err := monitor.Start("127.0.0.1:0", m, monitor.WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return m, srv
}

// ceylon runs the command and returns its output and exit code.
func ceylon(t *testing.T, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testutil.Context(t), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "CEYLON_URL=", "CEYLON_JOIN=", "CEYLON_HTTP_TOKEN=", "CEYLON_SECRET=", "CEYLON_WORKSPACE=")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	}
	t.Fatalf("ceylon %v: %v\n%s", args, err, out.String())
	return "", 0
}

func mustRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, code := ceylon(t, args...)
	if code != want {
		t.Fatalf("ceylon %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// The command against a manager, over HTTP and from inside the workspace:
// what it prints, its JSON, its exit codes.
func TestCommand(t *testing.T) {
	t.Parallel()
	ws := "cli-" + t.Name()
	m, srv := workspace(t, ws)
	ctx := testutil.Context(t)
	for i := range 3 {
		if _, err := m.Run(ctx, messages.Task{ID: fmt.Sprint("ok", i), Type: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Run(ctx, messages.Task{ID: "bad", Type: "fail", MaxRetries: messages.NoRetry}); err != nil {
		t.Fatal(err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "hold", Type: "block"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "hold running with its progress", func() bool {
		d, err := m.TaskDetail(ctx, "hold")
		return err == nil && d.Progress > 0
	})
	if err := m.Submit(ctx, messages.Task{ID: "waiting", Type: "ok"}); err != nil {
		t.Fatal(err)
	}
	http := []string{"--url", srv.Addr(), "--token", "tok"}
	p2p := []string{"--join", m.Addrs()[0], "--workspace", ws}

	for _, via := range [][]string{http, p2p} {
		out := mustRun(t, 0, append(via, "status")...)
		for _, want := range []string{"single manager", "6 submitted", "1 failed", "1 connected", "hold on W,  25% a quarter"} {
			if !strings.Contains(out, want) {
				t.Fatalf("status %v lacks %q:\n%s", via, want, out)
			}
		}
		var page task.TaskPage
		if err := json.Unmarshal([]byte(mustRun(t, 0, append(via, "--json", "tasks", "ls", "--status", "failed")...)), &page); err != nil ||
			page.Total != 1 || page.Tasks[0].ID != "bad" {
			t.Fatalf("tasks ls --status failed: %+v %v", page, err)
		}
		out = mustRun(t, 0, append(via, "tasks", "ls", "--type", "ok", "--limit", "2")...)
		if !strings.Contains(out, "2 of 4 matching; next page: --cursor") || !strings.Contains(out, "waiting") {
			t.Fatalf("tasks ls --limit 2:\n%s", out)
		}
		out = mustRun(t, 0, append(via, "task", "show", "bad")...)
		if !strings.Contains(out, "disk on fire") || !strings.Contains(out, "ATTEMPT") {
			t.Fatalf("task show:\n%s", out)
		}
		if out := mustRun(t, 0, append(via, "task", "show", "hold")...); !strings.Contains(out, "25% a quarter") {
			t.Fatalf("task show of a running task lacks its progress:\n%s", out)
		}
		var workers []task.WorkerView
		if err := json.Unmarshal([]byte(mustRun(t, 0, append(via, "--json", "workers")...)), &workers); err != nil ||
			len(workers) != 1 || workers[0].Name != "W" || !workers[0].Connected {
			t.Fatalf("workers: %+v %v", workers, err)
		}
		mustRun(t, 3, append(via, "task", "show", "nope")...)
		mustRun(t, 4, append(via, "task", "retry", "ok0")...)
		mustRun(t, 4, append(via, "tasks", "ls", "--status", "bogus")...)
		mustRun(t, 2, append(via, "task", "show")...)
	}
	// Actions, one way each.
	mustRun(t, 0, append(http, "task", "cancel", "waiting")...)
	if info, err := m.Task(ctx, "waiting"); err != nil || info.Status != task.StatusCancelled {
		t.Fatalf("cancelled by the command: %+v %v", info, err)
	}
	if err := m.Cancel(ctx, "hold"); err != nil { // frees the worker's slot
		t.Fatal(err)
	}
	mustRun(t, 0, append(p2p, "task", "retry", "bad")...)
	if _, err := m.Wait(ctx, "bad"); err != nil {
		t.Fatal(err)
	}
	if d, err := m.TaskDetail(ctx, "bad"); err != nil || len(d.Attempts) != 2 {
		t.Fatalf("retried by the command: %+v %v", d, err)
	}
	mustRun(t, 0, append(p2p, "task", "delete", "ok0")...)
	if _, err := m.Task(ctx, "ok0"); !errors.Is(err, task.ErrUnknownTask) {
		t.Fatalf("deleted by the command: %v", err)
	}
	mustRun(t, 0, append(http, "pause", "ok")...)
	if ps, _ := m.Paused(ctx); len(ps) != 1 {
		t.Fatalf("paused: %v", ps)
	}
	mustRun(t, 0, append(p2p, "resume", "ok")...)

	// Refusals and unreachable managers.
	mustRun(t, 4, "--url", srv.Addr(), "--token", "wrong", "status")
	mustRun(t, 5, "--url", "127.0.0.1:1", "--timeout", "3s", "status")
	mustRun(t, 2, "status")
	mustRun(t, 2, "--url", srv.Addr(), "--join", m.Addrs()[0], "status")
}

// tail prints events as they come, one JSON line each with --json.
func TestTail(t *testing.T) {
	t.Parallel()
	ws := "cli-" + t.Name()
	m, srv := workspace(t, ws)
	ctx := testutil.Context(t)
	for _, via := range [][]string{{"--url", srv.Addr(), "--token", "tok"}, {"--join", m.Addrs()[0], "--workspace", ws}} {
		id := "t-" + via[0][2:]
		cmd := exec.CommandContext(ctx, bin, append(via, "--json", "tail", "--task", id)...)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The task goes once tail says it follows the events.
		sc := bufio.NewScanner(stderr)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "following the events after #") {
			t.Fatalf("tail began with %q", sc.Text())
		}
		go func() {
			for sc.Scan() {
				t.Log("tail:", sc.Text())
			}
		}()
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		if _, err := m.Run(ctx, messages.Task{ID: id, Type: "ok"}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for l := range lines {
			var e task.EventRecord
			if err := json.Unmarshal([]byte(l), &e); err != nil || e.TaskID != id {
				t.Fatalf("line %q: %+v %v", l, e, err)
			}
			if got = append(got, e.Type); e.Type == "completed" {
				break
			}
		}
		// Interrupted, it ends normally.
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		for range lines {
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("tail: %v (printed %v)", err, got)
		}
		if len(got) < 3 || got[0] != "submitted" || got[1] != "assigned" {
			t.Fatalf("tail printed %v", got)
		}
	}
}

// With nothing but the workspace ID and an entry point, the command finds
// the manager by the DHT.
func TestCommandFindsTheManagerByWorkspaceID(t *testing.T) {
	t.Parallel()
	ws, secret := "cli-"+t.Name(), "by-id"
	boot, err := peer.NewBootstrap(context.Background(), peer.WithWorkspace(ws), peer.WithSecret(secret),
		peer.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = boot.Close() })
	ctx := testutil.Context(t)
	admin, err := agent.New("task_manager", agent.AsAdmin(), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace(ws),
		agent.WithSecret(secret), agent.WithBootstrap(boot.Addrs()[0].String()))
	if err != nil {
		t.Fatal(err)
	}
	m, err := task.NewManager(admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	if err := m.Submit(ctx, messages.Task{ID: "x", Type: "nobody"}, task.ProcessIn(time.Hour)); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, 0, "--bootstrap", boot.Addrs()[0].String(), "--workspace", ws, "--secret", secret, "--json", "tasks", "ls")
	var page task.TaskPage
	if err := json.Unmarshal([]byte(out), &page); err != nil || page.Total != 1 || page.Tasks[0].Status != "scheduled" {
		t.Fatalf("tasks ls by workspace ID: %+v %v\n%s", page, err, out)
	}
	mustRun(t, 5, "--bootstrap", boot.Addrs()[0].String(), "--workspace", ws, "--secret", "wrong", "--timeout", "3s", "status")
}

// Grants from the command: issued offline with an operator key the
// manager trusts, shown, presented with --grant, revoked.
func TestGrantCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opKey, cliKey := filepath.Join(dir, "op.key"), filepath.Join(dir, "cli.key")
	opID := strings.TrimSpace(mustRun(t, 0, "id", "--key", opKey))
	cliID := strings.TrimSpace(mustRun(t, 0, "id", "--key", cliKey))
	issuer, err := peer.ParseID(opID)
	if err != nil {
		t.Fatal(err)
	}
	ws := "cli-" + t.Name()
	ctx := testutil.Context(t)
	admin, err := agent.New("task_manager", agent.AsAdmin(), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace(ws))
	if err != nil {
		t.Fatal(err)
	}
	m, err := task.NewManager(admin, task.WithGrantsRequired(issuer))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop() })
	if err := m.Submit(ctx, messages.Task{ID: "q", Type: "nobody"}); err != nil {
		t.Fatal(err)
	}
	viewer, operator := filepath.Join(dir, "v.grant"), filepath.Join(dir, "o.grant")
	mustRun(t, 0, "grant", "issue", "--key", opKey, "--peer", cliID, "--role", "viewer", "--id", "v1", "--out", viewer)
	mustRun(t, 0, "grant", "issue", "--key", opKey, "--peer", cliID, "--role", "operator", "--id", "o1", "--ttl", "1h", "--out", operator)
	if out := mustRun(t, 0, "grant", "show", viewer); !strings.Contains(out, "issuer   "+opID) || !strings.Contains(out, "[viewer]") {
		t.Fatalf("grant show:\n%s", out)
	}
	p2p := []string{"--join", m.Addrs()[0], "--workspace", ws, "--key", cliKey}
	mustRun(t, 4, append(p2p, "tasks", "ls")...) // no grant
	if out := mustRun(t, 0, append(p2p, "--grant", viewer, "tasks", "ls")...); !strings.Contains(out, "1 of 1 matching") {
		t.Fatalf("a viewer's list:\n%s", out)
	}
	mustRun(t, 4, append(p2p, "--grant", viewer, "task", "cancel", "q")...)
	mustRun(t, 0, append(p2p, "--grant", operator, "task", "cancel", "q")...)
	mustRun(t, 0, append(p2p, "--grant", operator, "grant", "revoke", "v1")...)
	mustRun(t, 4, append(p2p, "--grant", viewer, "tasks", "ls")...)
	mustRun(t, 2, "grant", "issue", "--key", opKey, "--peer", cliID, "--role", "king")
}
