// Package testutil holds helpers the packages' tests share.
package testutil

import (
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// LeakOptions are the goleak options every package uses: they ignore the
// goroutines of the process-wide protoactor ActorSystem (its dead-letter
// throttle runs for a second after a message reaches a stopped actor),
// which outlives any one agent by design.
func LeakOptions() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.func1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"),
		goleak.IgnoreAnyFunction("github.com/asynkron/protoactor-go/actor.NewThrottle.func4.1"),
	}
}

// CheckLeaks ends a TestMain that has cleaning up of its own to do after
// m.Run and before goleak looks (goleak.VerifyTestMain looks right after
// m.Run): given m.Run's exit code, it returns 1 when the tests passed but
// goroutines are left over (it prints them), else the code.
func CheckLeaks(code int) int {
	if code != 0 {
		return code
	}
	if err := goleak.Find(LeakOptions()...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// SettleActors, called first in a testing/synctest bubble that starts
// agents, lets the bubble end without a deadlock: a message that finds
// its actor stopped (a late timer of an agent being stopped) starts
// protoactor's dead-letter throttle, a goroutine that waits a second
// before it ends, and a bubble must not end while one of its goroutines
// waits. The cleanup it registers runs after every other one and waits
// that out in the bubble's virtual time, which costs nothing.
func SettleActors(t testing.TB) {
	t.Cleanup(func() { time.Sleep(2 * time.Second) })
}
