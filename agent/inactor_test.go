package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
)

// The hooks roles are built with run their functions in the actor, one at
// a time with the handlers (the race detector checks the unlocked
// counter), and stop with the agent.
func TestActorHooks(t *testing.T) {
	t.Parallel()
	a, err := New("hooks", loopback, WithWorkspace("ws-"+t.Name()), AsAdmin())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Post(func() {}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Post before Start: %v", err)
	}
	if _, err := Call(context.Background(), a, func() (int, error) { return 1, nil }); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Call before Start: %v", err)
	}
	var n int // owned by the actor
	On(a, func(Context, note) error { n++; return nil })
	if err := a.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t)
	read := func() int {
		v, err := Call(ctx, a, func() (int, error) { return n, nil })
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	for range 100 {
		if err := a.Post(func() { n++ }); err != nil {
			t.Fatal(err)
		}
		if err := a.Send(ctx, a.ID(), note{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(); got != 200 {
		t.Fatalf("after 100 posts and 100 messages: %d", got)
	}

	fired := make(chan struct{})
	a.After(10*time.Millisecond, func() { n += 1000; close(fired) })
	<-fired
	stopped := a.After(time.Hour, func() { n += 1 << 20 })
	if !stopped() {
		t.Fatal("an hour-long timer could not be stopped")
	}

	ticks := make(chan int, 100)
	stop := a.Every(5*time.Millisecond, func() { n++; ticks <- n })
	for range 3 {
		<-ticks
	}
	stop()
	before := read()
	time.Sleep(30 * time.Millisecond) // six periods: no tick may follow stop
	if after := read(); after != before {
		t.Fatalf("ticks after stop: %d then %d", before, after)
	}

	deferred, err := CallDeferred(ctx, a, func(reply func(string, error)) {
		go reply("later", nil) // answered from outside the actor
	})
	if err != nil || deferred != "later" {
		t.Fatalf("CallDeferred: %q %v", deferred, err)
	}

	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Context().Done():
	default:
		t.Fatal("the agent's context outlived Stop")
	}
	if err := a.Post(func() {}); !errors.Is(err, ErrStopped) {
		t.Fatalf("Post after Stop: %v", err)
	}
	if _, err := Call(ctx, a, func() (int, error) { return 1, nil }); !errors.Is(err, ErrStopped) {
		t.Fatalf("Call after Stop: %v", err)
	}
}
