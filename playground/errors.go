package playground

import (
	"errors"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/task"
)

var (
	// ErrDependencyFailed is why a task did not run: a task it depends on
	// (directly or transitively) failed or was cancelled.
	ErrDependencyFailed = errors.New("playground: dependency failed")
	// ErrChildFailed is why a parent task failed: one of its child tasks
	// failed.
	ErrChildFailed = errors.New("playground: child task failed")
	// ErrTaskFailed wraps the error message of a task whose processor
	// failed (after its retries).
	ErrTaskFailed = errors.New("playground: task failed")
	// ErrCancelled reports a cancelled task (the task manager's own
	// sentinel, so errors.Is works across the layers).
	ErrCancelled = task.ErrCancelled
	// ErrUnknownDependency rejects a task that depends on an ID that is
	// neither in its batch nor already added.
	ErrUnknownDependency = errors.New("playground: unknown dependency")
	// ErrCycle rejects a batch whose dependencies form a cycle.
	ErrCycle = errors.New("playground: dependency cycle")
	// ErrDuplicateTask rejects an ID already in use (the task manager's
	// sentinel).
	ErrDuplicateTask = task.ErrDuplicateTask
	// ErrUnknownTask reports an ID the playground does not know (the task
	// manager's sentinel).
	ErrUnknownTask = task.ErrUnknownTask
	// ErrNotFinished reports a result asked for before the task is final.
	ErrNotFinished = errors.New("playground: task not finished")
	// ErrNotStarted reports a call before Start (the agent's sentinel).
	ErrNotStarted = agent.ErrNotStarted
	// ErrStopped reports a call after Stop, or a wait that Stop ended (the
	// agent's sentinel).
	ErrStopped = agent.ErrStopped
	// ErrInvalidWorker rejects a worker without name, processor or handler.
	ErrInvalidWorker = errors.New("playground: invalid worker")
)
