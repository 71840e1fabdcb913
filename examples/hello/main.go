// Command hello is the smallest workspace: an admin and two clients in one
// process introduce themselves, greet each other directly and by broadcast,
// and stop.
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/agent"
)

// Greeting is the one message type of this example.
type Greeting struct {
	Text string `msgpack:"text"`
}

// Kind implements messages.Message.
func (Greeting) Kind() string { return "hello.greeting" }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hello:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")

	var wg sync.WaitGroup
	wg.Add(4) // two clients greet the admin, the admin greets both
	admin, err := agent.New("admin", agent.AsAdmin(), agent.WithRole("host"), listen, agent.WithWorkspace("hello"))
	if err != nil {
		return err
	}
	agent.On(admin, func(ctx agent.Context, g Greeting) error {
		fmt.Printf("admin got %q from %s (%s)\n", g.Text, ctx.Sender().Name, ctx.Sender().Role)
		wg.Done()
		return ctx.Reply(Greeting{Text: "welcome, " + ctx.Sender().Name})
	})
	if err := admin.Start(ctx); err != nil {
		return err
	}
	defer admin.Stop()
	fmt.Println("admin listening on", admin.Addrs()[0])

	for _, name := range []string{"alice", "bob"} {
		c, err := agent.New(name, agent.WithRole("guest"), listen, agent.WithWorkspace("hello"), agent.WithJoin(admin.Addrs()[0]))
		if err != nil {
			return err
		}
		agent.On(c, func(ctx agent.Context, g Greeting) error {
			fmt.Printf("%s got %q from %s\n", name, g.Text, ctx.Sender().Name)
			wg.Done()
			return nil
		})
		if err := c.Start(ctx); err != nil {
			return err
		}
		defer c.Stop()
		if err := c.Send(ctx, admin.ID(), Greeting{Text: "hi from " + name}); err != nil {
			return err
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for _, d := range admin.ConnectedAgents() {
		fmt.Printf("connected: %s role=%s\n", d.Name, d.Role)
	}
	return nil
}
