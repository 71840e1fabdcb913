package agent_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/agent"
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

// Pipelined requests: StartRequest returns once each request is sent, so
// one goroutine keeps many in flight; they arrive in the order sent, and
// each answer is waited for on its own.
func ExampleAgent_StartRequest() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")

	admin, _ := agent.New("admin", agent.AsAdmin(), listen, agent.WithWorkspace("example-pipelined"))
	next := 0
	agent.On(admin, func(ctx agent.Context, p Ping) error {
		next++ // the handler runs in the admin's actor: one message at a time, in order
		return ctx.Reply(Ping{N: next*100 + p.N})
	})
	if err := admin.Start(ctx); err != nil {
		panic(err)
	}
	defer admin.Stop()

	client, _ := agent.New("client", listen, agent.WithWorkspace("example-pipelined"), agent.WithJoin(admin.Addrs()[0]))
	_ = agent.RegisterKind[Ping](client)
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Stop()

	var pending []*agent.PendingReply
	for i := range 3 {
		p, err := client.StartRequest(ctx, admin.ID(), Ping{N: i})
		if err != nil {
			panic(err)
		}
		pending = append(pending, p)
	}
	for _, p := range pending {
		reply, err := p.Wait(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println(reply.(Ping).N)
	}
	// Output:
	// 100
	// 201
	// 302
}
