package task_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// startPair starts a manager (with opts) and a worker running "echo" on
// agents of their own, and returns the manager and a stop function.
func startPair(ctx context.Context, ws string, aopts []agent.Option, opts ...task.ManagerOption) (*task.Manager, func()) {
	net := append([]agent.Option{agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace(ws)}, aopts...)
	admin, _ := agent.New("manager", append(net, agent.AsAdmin())...)
	m, err := task.NewManager(admin, opts...)
	if err != nil {
		panic(err)
	}
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	client, _ := agent.New("echo", append(net, agent.WithJoin(m.Addrs()[0]))...)
	w, _ := task.NewWorker(client)
	w.Handle("echo", func(_ context.Context, j *task.Job) ([]byte, error) { return j.Task.Input, nil })
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	if err := m.WaitForWorkers(ctx, 1); err != nil {
		panic(err)
	}
	return m, func() { _ = w.Stop(); _ = m.Stop() }
}

// A journal makes the manager durable: a manager started again on the
// same file knows every task and result of the one before.
func ExampleWithJournal() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, _ := os.MkdirTemp("", "journal-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "tasks.db")

	j, _ := task.OpenJournal(path, "example-journal")
	m, stop := startPair(ctx, "example-journal", nil, task.WithJournal(j))
	if _, err := m.Run(ctx, messages.Task{ID: "t1", Type: "echo", Input: []byte("kept")}); err != nil {
		panic(err)
	}
	stop()
	_ = j.Close()

	j, _ = task.OpenJournal(path, "example-journal") // a restart
	defer j.Close()
	admin, _ := agent.New("manager", agent.AsAdmin(), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-journal"))
	m2, _ := task.NewManager(admin, task.WithJournal(j))
	if err := m2.Start(ctx); err != nil {
		panic(err)
	}
	defer m2.Stop()
	info, _ := m2.Task(ctx, "t1")
	fmt.Println(info.Status, string(info.Result.Output))
	// Output: completed kept
}

// A handler whose failure retrying cannot fix wraps ErrSkipRetry: the task
// fails at once, whatever retries its policy allows.
func ExampleErrSkipRetry() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, stop := startPair(ctx, "example-skip", nil, task.WithDefaultPolicy(task.Policy{MaxRetries: 5}))
	defer stop()
	// A second worker type on the same manager: "parse" always fails for good.
	client, _ := agent.New("parser", agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-skip"), agent.WithJoin(m.Addrs()[0]))
	w, _ := task.NewWorker(client)
	w.Handle("parse", func(_ context.Context, j *task.Job) ([]byte, error) {
		return nil, fmt.Errorf("%w: %q is not a number", task.ErrSkipRetry, j.Task.Input)
	})
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop()
	res, err := m.Run(ctx, messages.Task{ID: "p", Type: "parse", Input: []byte("x")})
	if err != nil {
		panic(err)
	}
	info, _ := m.Task(ctx, "p")
	fmt.Println(res.Success, len(info.Attempts), res.ErrorMessage)
	// Output: false 1 task: skip retry: "x" is not a number
}

// Cancel stops a task: queued, it is dropped; running, its handler's
// context ends. Wait then reports it cancelled.
func ExampleManager_Cancel() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, stop := startPair(ctx, "example-cancel-task", nil)
	defer stop()
	// No worker runs "render": the task waits in the queue.
	_ = m.Submit(ctx, messages.Task{ID: "r", Type: "render"})
	if err := m.Cancel(ctx, "r"); err != nil {
		panic(err)
	}
	res, _ := m.Wait(ctx, "r")
	info, _ := m.Task(ctx, "r")
	fmt.Println(res.Success, info.Status)
	// Output: false cancelled
}

// With a retention, finished tasks are forgotten (in memory and in the
// journal) once they are older than it: a long-running manager does not
// grow without end.
func ExampleWithRetention() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, stop := startPair(ctx, "example-retention", nil, task.WithRetention(50*time.Millisecond))
	defer stop()
	if _, err := m.Run(ctx, messages.Task{ID: "old", Type: "echo"}); err != nil {
		panic(err)
	}
	_, err := m.Task(ctx, "old")
	fmt.Println("just finished:", err)
	for !errors.Is(err, task.ErrUnknownTask) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		_, err = m.Task(ctx, "old")
	}
	fmt.Println("later:", errors.Is(err, task.ErrUnknownTask))
	// Output:
	// just finished: <nil>
	// later: true
}

// A workspace secret admits only its holders: agents with it work
// together; one without it cannot even connect.
func Example_secret() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	secret := []agent.Option{agent.WithSecret("s3cret")} // read it from a file or the environment
	m, stop := startPair(ctx, "example-secret", secret)
	defer stop()
	res, _ := m.Run(ctx, messages.Task{ID: "t", Type: "echo", Input: []byte("members only")})
	fmt.Println(string(res.Output))

	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	outsider, _ := agent.New("outsider", agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-secret"),
		agent.WithSecret("guess"), agent.WithJoin(m.Addrs()[0]))
	err := outsider.Start(short)
	_ = outsider.Stop()
	fmt.Println("outsider joined:", err == nil)
	// Output:
	// members only
	// outsider joined: false
}
