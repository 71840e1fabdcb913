package agent_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
)

// A message that reaches a stopped agent's actor starts protoactor's
// dead-letter throttle, a goroutine that waits a second: a synctest bubble
// must not end under it (the bubble would panic with "blocked goroutines
// remain", as a task test did under load). testutil.SettleActors waits it
// out; without it this test panics.
func TestSettleActorsEndsABubbleAfterADeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		testutil.SettleActors(t)
		net := memnet.New()
		a, err := agent.New("x", agent.AsAdmin(), agent.WithNetwork(net.Factory()))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
		agent.SendAfterStop(a)
	})
}
