package agent_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
)

// Ping is an application message; its Kind is its stable wire name.
type Ping struct {
	N int `msgpack:"n"`
}

func (Ping) Kind() string { return "example.ping" }

// An admin and a client: the client sends a direct message, the admin's
// handler answers it, and the client's Request waits for that answer.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")

	admin, _ := agent.New("admin", agent.AsAdmin(), listen, agent.WithWorkspace("example-agent"))
	agent.On(admin, func(ctx agent.Context, p Ping) error {
		fmt.Printf("admin got ping %d from %s\n", p.N, ctx.Sender().Name)
		return ctx.Reply(Ping{N: p.N + 1})
	})
	if err := admin.Start(ctx); err != nil {
		panic(err)
	}
	defer admin.Stop()

	client, _ := agent.New("client", listen, agent.WithWorkspace("example-agent"), agent.WithJoin(admin.Addrs()[0]))
	_ = agent.RegisterKind[Ping](client) // to decode the reply
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Stop()

	reply, err := client.Request(ctx, admin.ID(), Ping{N: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println("client got", reply.(Ping).N)
	// Output:
	// admin got ping 1 from client
	// client got 2
}

// A TaskManager and a worker: the worker runs tasks of type "double";
// Run submits one and waits for its result.
func ExampleTaskManager() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")
	ws := agent.WithWorkspace("example-tasks")

	m, _ := agent.NewTaskManager(agent.WithManagerAgent(listen, ws))
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()

	w, _ := agent.NewWorker("doubler", agent.WithSkill(5), agent.WithMaxConcurrency(4),
		agent.WithWorkerAgent(listen, ws, agent.WithJoin(m.Addrs()[0])))
	w.HandleWith("double", func(ctx context.Context, job *agent.Job) ([]byte, error) {
		return append(job.Task.Input, job.Task.Input...), nil
	}, agent.HandlerOptions{Timeout: 10 * time.Second, MaxRetries: 2})
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
func ExampleTaskManager_Wait() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, _ := agent.NewTaskManager(agent.WithManagerAgent(agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-wait")))
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()
	_ = m.Submit(ctx, messages.Task{ID: "g", Type: "train", Description: "needs a gpu", Capabilities: []string{"gpu"}})

	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	_, err := m.Wait(short, "g")
	fmt.Println(errors.Is(err, agent.ErrNoEligibleWorker))
	// Output: true
}
