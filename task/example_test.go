package task_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// A manager and a worker, each on an agent of its own: the worker runs
// tasks of type "double"; Run submits one and waits for its result.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")
	ws := agent.WithWorkspace("example-tasks")

	admin, _ := agent.New("manager", agent.AsAdmin(), listen, ws)
	m, _ := task.NewManager(admin)
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()

	client, _ := agent.New("doubler", listen, ws, agent.WithJoin(m.Addrs()[0]))
	w, _ := task.NewWorker(client, task.WithSkill(5), task.WithMaxConcurrency(4))
	w.HandleWith("double", func(ctx context.Context, job *task.Job) ([]byte, error) {
		return append(job.Task.Input, job.Task.Input...), nil
	}, task.HandlerOptions{Policy: task.Policy{Timeout: 10 * time.Second, MaxRetries: 2}})
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop()
	if err := m.WaitForWorkers(ctx, 1); err != nil {
		panic(err)
	}

	res, err := m.Run(ctx, messages.Task{ID: "t1", Type: "double", Description: "double the input", Input: []byte("ab")})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s by %s, success %v\n", res.Output, res.Worker, res.Success)
	// Output: abab by doubler, success true
}

// A task whose type no worker runs waits; Wait with a deadline says why.
func ExampleManager_Wait() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, _ := agent.New("manager", agent.AsAdmin(), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-wait"))
	m, _ := task.NewManager(admin)
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()
	_ = m.Submit(ctx, messages.Task{ID: "g", Type: "train", Description: "needs a gpu", Capabilities: []string{"gpu"}})

	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	_, err := m.Wait(short, "g")
	fmt.Println(errors.Is(err, task.ErrNoEligibleWorker))
	// Output: true
}

// Resize is a typed task's input; its Kind is the task type.
type Resize struct {
	Path  string `msgpack:"path"`
	Width int    `msgpack:"width"`
}

func (Resize) Kind() string { return "example.resize" }

// A typed handler: the input arrives decoded, the output leaves encoded.
func ExampleHandle() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")
	ws := agent.WithWorkspace("example-typed")
	admin, _ := agent.New("manager", agent.AsAdmin(), listen, ws)
	m, _ := task.NewManager(admin)
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()
	client, _ := agent.New("resizer", listen, ws, agent.WithJoin(m.Addrs()[0]))
	w, _ := task.NewWorker(client)
	task.Handle(w, func(_ context.Context, j *task.TypedJob[Resize]) (string, error) {
		return fmt.Sprintf("%s at %dpx", j.Args.Path, j.Args.Width), nil
	})
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop()
	_ = m.WaitForWorkers(ctx, 1)

	t, _ := task.NewTask("r1", Resize{Path: "cat.png", Width: 64})
	res, _ := m.Run(ctx, t)
	out, _ := task.Output[string](res)
	fmt.Println(out)
	// Output: cat.png at 64px
}

// A producer on an agent of its own (another process, another machine)
// submits tasks to the workspace's task manager and waits for their
// results, with no port of the manager's opened for it.
func ExampleClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")
	ws := agent.WithWorkspace("example-producer")

	admin, _ := agent.New("manager", agent.AsAdmin(), listen, ws)
	m, _ := task.NewManager(admin)
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()
	wa, _ := agent.New("upper", listen, ws, agent.WithJoin(m.Addrs()[0]))
	w, _ := task.NewWorker(wa)
	w.Handle("upper", func(_ context.Context, job *task.Job) ([]byte, error) {
		return []byte(strings.ToUpper(string(job.Task.Input))), nil
	})
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop()

	pa, _ := agent.New("producer", listen, ws, agent.WithJoin(m.Addrs()[0]))
	c, _ := task.NewClient(pa)
	if err := pa.Start(ctx); err != nil {
		panic(err)
	}
	defer pa.Stop()
	if err := c.Submit(ctx, messages.Task{ID: "p1", Type: "upper", Description: "shout", Input: []byte("hello")}); err != nil {
		panic(err)
	}
	res, err := c.Wait(ctx, "p1")
	if err != nil {
		panic(err)
	}
	err = c.Submit(ctx, messages.Task{ID: "p1", Type: "upper", Description: "another task, same ID"})
	fmt.Printf("%s by %s; again: %v\n", res.Output, res.Worker, errors.Is(err, task.ErrDuplicateTask))
	// Output: HELLO by upper; again: true
}
