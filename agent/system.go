package agent

import (
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// DefaultSystem is the process-wide actor system that agents share unless
// given another with [WithActorSystem]. Its own start-up log is silenced.
var DefaultSystem = sync.OnceValue(func() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
})
