package task

import "errors"

// Task manager errors.
var (
	// ErrDuplicateTask reports a task ID the manager already holds (or a batch that repeats one).
	ErrDuplicateTask = errors.New("task: duplicate task id")
	// ErrUnknownTask reports a task ID the manager does not know (never submitted, forgotten or expired).
	ErrUnknownTask = errors.New("task: unknown task")
	// ErrUnknownProcessor reports a task type no worker runs, with WithProcessors set.
	ErrUnknownProcessor = errors.New("task: no such processor")
	// ErrNoEligibleWorker reports why Wait ended before a task that no connected worker can take.
	ErrNoEligibleWorker = errors.New("task: no eligible worker")
	// ErrTooManyLost reports a task whose attempts were lost (worker gone, unreachable, no ack) more than WithMaxLost times.
	ErrTooManyLost = errors.New("task: task lost with its worker too many times")
	// ErrUnresolvedDependencies reports a task with dependencies submitted without DependenciesMet.
	ErrUnresolvedDependencies = errors.New("task: task has dependencies; submit it through a playground or with DependenciesMet")
	// ErrTaskTimeout reports an attempt whose lease ran out.
	ErrTaskTimeout = errors.New("task: attempt timed out")
	// ErrCancelled reports a cancelled task.
	ErrCancelled = errors.New("task: task cancelled")
	// ErrWorkersMissing reports WaitForWorkers or WaitForWorkerNames ended before the workers came.
	ErrWorkersMissing = errors.New("task: workers missing")
	// ErrNotAdmin reports a manager made on an agent that is not an admin.
	ErrNotAdmin = errors.New("task: a manager's agent must be an admin (agent.AsAdmin)")
	// ErrTaskTooLarge reports a task whose assignment would not fit in one frame to a worker.
	ErrTaskTooLarge = errors.New("task: task too large to send to a worker")
	// ErrNotFinal reports Retry or Delete of a task that is not final.
	ErrNotFinal = errors.New("task: task not final")
	// ErrUnknownOp reports an admin request for an operation the manager
	// does not know (a newer client).
	ErrUnknownOp = errors.New("task: unknown admin operation")
	// ErrReplyTooLarge reports an admin answer too large for one message
	// to a remote operator (ask for a smaller page).
	ErrReplyTooLarge = errors.New("task: admin reply too large for one message")
	// ErrDuplicateUnique reports a submission whose Unique key another
	// task holds.
	ErrDuplicateUnique = errors.New("task: duplicate unique key")
	// ErrBusy reports a request the manager refused for now (it holds
	// too many remote waits); try again later.
	ErrBusy = errors.New("task: manager busy")
	// ErrJournal reports a change the journal could not commit.
	ErrJournal = errors.New("task: journal commit failed")
	// ErrRemote reports a remote producer's request that failed at the
	// manager for a reason without a sentinel of its own.
	ErrRemote = errors.New("task: manager refused the request")
	// ErrNoManager reports a Client that found no task manager in its
	// workspace before its context ended.
	ErrNoManager = errors.New("task: no task manager")
)

// Worker errors.
var (
	// ErrSkipRetry, wrapped in a processor's error, marks the failure as final:
	// the manager does not retry the task (like asynq's SkipRetry).
	ErrSkipRetry = errors.New("task: skip retry")
	// ErrCancelledByManager is the cause of a processor's context when the
	// manager cancels the attempt (its lease ran out, or the task was
	// cancelled).
	ErrCancelledByManager = errors.New("task: attempt cancelled by the task manager")
	// ErrStaleAssignment reports an assignment from a deposed leader (its
	// epoch is older than the one of the manager the worker follows), and
	// is the cause of a run a newer epoch's assignment of the same attempt
	// replaced.
	ErrStaleAssignment = errors.New("task: assignment from a deposed manager")
	// ErrManagerLost is the cause of a processor's context when the worker
	// loses its manager (the manager requeues the task elsewhere).
	ErrManagerLost = errors.New("task: task manager left")
	// ErrProcessorsRunning reports a Stop that left processors running:
	// they ignored their context's end for longer than the stop grace.
	ErrProcessorsRunning = errors.New("task: processors still running")
	// ErrNotAnInput reports Job.DecodeDependency of an ID that is not
	// among the job's dependencies.
	ErrNotAnInput = errors.New("task: not a dependency")
)
