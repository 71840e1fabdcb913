// Package testutil holds helpers the packages' tests share.
package testutil

import "go.uber.org/goleak"

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
