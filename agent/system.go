package agent

import (
	"log/slog"
	"sync"

	"github.com/asynkron/protoactor-go/actor"
)

// actorSystem is the process-wide actor system every agent's actor runs
// in (an implementation detail: no protoactor type is part of the API). Its
// own start-up log is silenced.
var actorSystem = sync.OnceValue(func() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
})
