package peer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/peer"
)

// printer is a Handler that prints what it hears.
type printer struct {
	peer.NopHandler
	got chan string
}

func (p printer) HandleDirect(_ context.Context, _ peer.ID, data []byte) { p.got <- string(data) }

// Two nodes of one workspace: one connects to the other's address and
// sends it a frame over their direct stream.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := []peer.Option{peer.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), peer.WithWorkspace("example")}

	h := printer{got: make(chan string, 1)}
	a, err := peer.New(ctx, append(opts, peer.WithHandler(h))...)
	if err != nil {
		panic(err)
	}
	defer a.Close()
	b, err := peer.New(ctx, opts...)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	id, err := b.Connect(ctx, a.Addrs()[0].String()) // returns once both said hello
	if err != nil {
		panic(err)
	}
	if err := b.Send(ctx, id, []byte("hello, a")); err != nil {
		panic(err)
	}
	fmt.Println(<-h.got)
	// Output: hello, a
}
