package playground

import "errors"

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
	// ErrCancelled reports a cancelled task.
	ErrCancelled = errors.New("playground: task cancelled")
	// ErrUnknownDependency rejects a task that depends on an ID that is
	// neither in its batch nor already added.
	ErrUnknownDependency = errors.New("playground: unknown dependency")
	// ErrCycle rejects a batch whose dependencies form a cycle.
	ErrCycle = errors.New("playground: dependency cycle")
	// ErrDuplicateTask rejects an ID already in use.
	ErrDuplicateTask = errors.New("playground: duplicate task id")
	// ErrUnknownTask reports an ID the playground does not know.
	ErrUnknownTask = errors.New("playground: unknown task")
	// ErrNotFinished reports a result asked for before the task is final.
	ErrNotFinished = errors.New("playground: task not finished")
	// ErrNotStarted reports a call before Start or after Stop.
	ErrNotStarted = errors.New("playground: not running")
	// ErrInvalidWorker rejects a worker without name, processor or handler.
	ErrInvalidWorker = errors.New("playground: invalid worker")
)
