package messages

// The codecs of the types in this file are generated (task_gen.go, by
// msgp from the msgpack tags: `go generate ./messages`).
//
//msgp:tag msgpack
//msgp:newtime
//msgp:shim time.Duration as:int64 using:int64/time.Duration
//
// The generated decoders preallocate what the input claims; they are safe
// on network input only behind messages.Unmarshal, whose structural check
// first bounds every claim by the bytes that are there.

import (
	"fmt"
	"slices"
	"time"
)

// Difficulty bounds for skill-rated tasks.
const (
	MinDifficulty = 1
	MaxDifficulty = 10
)

// Bounds on the lists a task message carries (their decoders refuse
// more, so a small message cannot make a receiver allocate much).
const (
	MaxDependencies = 4096 // a task's Dependencies
	MaxCapabilities = 1024 // a task's or a worker's Capabilities
	MaxChildren     = 4096 // a result's Children
)

// NoRetry as a Task's or handler's MaxRetries means "never retry"; 0 means
// "inherit the next level's value".
const NoRetry = -1

// Backoff is how the wait between retries grows.
type Backoff string

// Backoff strategies. The empty value inherits the next level's strategy.
const (
	BackoffFixed       Backoff = "fixed"
	BackoffExponential Backoff = "exponential"
)

// Task is a unit of work. The zero value of every optional field means
// "inherit": per-task values override the handler's, which override the
// manager's defaults.
type Task struct {
	// ID is unique within a manager.
	ID string `msgpack:"id"`
	// Name is a short human label.
	Name string `msgpack:"name,omitempty"`
	// Description says what the task does (optional: reports and the
	// dashboard show it).
	Description string `msgpack:"desc,omitempty"`
	// Difficulty is the skill the task needs, 1-10; 0 means unrated (no
	// skill routing).
	Difficulty int `msgpack:"difficulty,omitempty"`
	// Type names the processor (handler) that runs the task; required.
	Type string `msgpack:"type"`
	// Input is the processor's payload, opaque to the framework.
	Input []byte `msgpack:"input,omitempty,allownil"`
	// Dependencies are IDs of tasks that must complete successfully first.
	Dependencies []string `msgpack:"deps,omitempty,allownil,limit=4096"` // MaxDependencies
	// Priority: higher runs first among ready tasks.
	Priority int `msgpack:"prio,omitempty"`
	// Timeout bounds one attempt's run time (the lease); 0 inherits.
	Timeout time.Duration `msgpack:"timeout,omitempty"`
	// MaxRetries is the number of retries after the first attempt; 0
	// inherits, [NoRetry] disables retries.
	MaxRetries int `msgpack:"retries,omitempty"`
	// RetryInterval is the wait before the first retry; 0 inherits.
	RetryInterval time.Duration `msgpack:"retry_interval,omitempty"`
	// Backoff is how RetryInterval grows; "" inherits.
	Backoff Backoff `msgpack:"backoff,omitempty"`
	// Capabilities a worker must all have to run the task (e.g. "gpu").
	Capabilities []string `msgpack:"caps,omitempty,allownil,limit=1024"`
	// Parent is the ID of the task that spawned this one as a child.
	Parent string `msgpack:"parent,omitempty"`
}

// Kind implements [Message].
func (Task) Kind() string { return "ceylon.task" }

// Validate checks the task's own fields: a non-empty ID, type and
// description, difficulty 0 or 1-10, no negative durations or counts below
// [NoRetry], and no self or duplicate dependency. Uniqueness of the ID and
// the existence of dependencies are checked by whoever holds the other
// tasks.
func (t *Task) Validate() error {
	switch {
	case t.ID == "":
		return fmt.Errorf("task: %w", ErrEmptyID)
	case t.Type == "":
		return fmt.Errorf("task %q: %w", t.ID, ErrEmptyType)
	case t.Difficulty != 0 && (t.Difficulty < MinDifficulty || t.Difficulty > MaxDifficulty):
		return fmt.Errorf("task %q: %w: %d", t.ID, ErrDifficultyRange, t.Difficulty)
	case t.Timeout < 0 || t.RetryInterval < 0 || t.MaxRetries < NoRetry:
		return fmt.Errorf("task %q: %w: timeout, retry interval or retries", t.ID, ErrNegativeValue)
	}
	if len(t.Dependencies) > MaxDependencies || len(t.Capabilities) > MaxCapabilities {
		return fmt.Errorf("task %q: %w: over %d dependencies or %d capabilities", t.ID, ErrMalformed, MaxDependencies, MaxCapabilities)
	}
	switch t.Backoff {
	case "", BackoffFixed, BackoffExponential:
	default:
		return fmt.Errorf("task %q: %w: unknown backoff %q", t.ID, ErrMalformed, t.Backoff)
	}
	var seen map[string]struct{} // only for long lists; short ones compare pairwise
	if len(t.Dependencies) > 16 {
		seen = make(map[string]struct{}, len(t.Dependencies))
	}
	for i, d := range t.Dependencies {
		if d == t.ID {
			return fmt.Errorf("task %q: %w", t.ID, ErrSelfDependency)
		}
		if d == "" {
			return fmt.Errorf("task %q: dependency: %w", t.ID, ErrEmptyID)
		}
		dup := false
		if seen != nil {
			_, dup = seen[d]
			seen[d] = struct{}{}
		} else {
			dup = slices.Contains(t.Dependencies[:i], d)
		}
		if dup {
			return fmt.Errorf("task %q: %w: %q", t.ID, ErrDuplicateDependency, d)
		}
	}
	return nil
}

// TaskAssignment hands one attempt of a task to one worker.
type TaskAssignment struct {
	Task Task `msgpack:"task"`
	// Attempt numbers attempts from 1; a result must carry it back.
	Attempt int `msgpack:"attempt"`
	// AssignedAt is the manager's clock at assignment.
	AssignedAt time.Time `msgpack:"at"`
	// Timeout is the lease: the worker cancels its run after it, and the
	// manager counts the attempt failed. 0 means no limit.
	Timeout time.Duration `msgpack:"timeout,omitempty"`
	// Inputs holds the outputs of the task's dependencies, keyed by task ID.
	Inputs Inputs `msgpack:"inputs,omitempty,omitzero"`
	// Epoch is the assigning manager's leadership epoch when several
	// managers replicate the workspace's tasks (0 with one manager; the
	// Raft term, with the leader's rebuilds within it in the low 20 bits):
	// a worker refuses an assignment from an older epoch than the manager it
	// follows (fencing a deposed leader).
	Epoch uint64 `msgpack:"epoch,omitempty"`
	// Trace is the W3C traceparent of the manager's span of this attempt
	// ("" when the task is not traced): the worker's run continues it.
	Trace string `msgpack:"trace,omitempty"`
}

// Kind implements [Message].
func (TaskAssignment) Kind() string { return "ceylon.task.assignment" }

// Validate checks the assignment and its task.
func (a *TaskAssignment) Validate() error {
	if a.Attempt < 1 {
		return fmt.Errorf("assignment of %q: %w", a.Task.ID, ErrBadAttempt)
	}
	if a.Timeout < 0 {
		return fmt.Errorf("assignment of %q: %w: timeout", a.Task.ID, ErrNegativeValue)
	}
	return a.Task.Validate()
}

// TaskResult is a worker's report on one attempt.
type TaskResult struct {
	TaskID string `msgpack:"task"`
	// Attempt is the assignment's attempt number.
	Attempt int `msgpack:"attempt"`
	// Worker is the worker's name.
	Worker string `msgpack:"worker"`
	// Success is false when the processor failed or was cancelled.
	Success bool `msgpack:"ok"`
	// ExecutionTime is the processor's run time on the worker.
	ExecutionTime time.Duration `msgpack:"exec"`
	// ErrorMessage says why the attempt failed.
	ErrorMessage string `msgpack:"error,omitempty"`
	// Output is the processor's result payload.
	Output []byte `msgpack:"output,omitempty,allownil"`
	// Children are tasks the processor spawned (fan-out).
	Children []Task `msgpack:"children,omitempty,allownil,limit=4096"`
	// Final marks a failure that retrying cannot fix (the processor
	// returned an error wrapping the task package's ErrSkipRetry).
	Final bool `msgpack:"final,omitempty"`
	// Epoch is the epoch of the assignment this result answers (0 with one
	// manager).
	Epoch uint64 `msgpack:"epoch,omitempty"`
}

// Kind implements [Message].
func (TaskResult) Kind() string { return "ceylon.task.result" }

// Validate checks the result's identifying fields.
func (r *TaskResult) Validate() error {
	switch {
	case r.TaskID == "":
		return fmt.Errorf("result: %w", ErrEmptyID)
	case r.Attempt < 1:
		return fmt.Errorf("result of %q: %w", r.TaskID, ErrBadAttempt)
	case r.Worker == "":
		return fmt.Errorf("result of %q: %w", r.TaskID, ErrEmptyWorker)
	case r.ExecutionTime < 0:
		return fmt.Errorf("result of %q: %w: execution time", r.TaskID, ErrNegativeValue)
	}
	if len(r.Children) > MaxChildren {
		return fmt.Errorf("result of %q: %w: %d children, at most %d", r.TaskID, ErrMalformed, len(r.Children), MaxChildren)
	}
	for i := range r.Children {
		if err := r.Children[i].Validate(); err != nil {
			return fmt.Errorf("result of %q: child: %w", r.TaskID, err)
		}
	}
	return nil
}
