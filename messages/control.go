package messages

// The codecs of the types in this file are generated (control_gen.go).
//
//msgp:tag msgpack
//msgp:shim time.Duration as:int64 using:int64/time.Duration
//
// The generated decoders preallocate what the input claims; they are safe
// on network input only behind messages.Unmarshal, whose structural check
// first bounds every claim by the bytes that are there.

import (
	"fmt"
	"time"
)

// WorkerInfo introduces a worker to the task manager and updates it when the
// worker's offer changes.
type WorkerInfo struct {
	Name string `msgpack:"name"`
	// Skill is 1-10; 0 means unrated (treated as skill 0 by matching).
	Skill int `msgpack:"skill,omitempty"`
	// Capabilities the worker has (e.g. "gpu", "high-memory").
	Capabilities []string `msgpack:"caps,omitempty,allownil,limit=1024"`
	// Types are the task types (processors) the worker runs, with the
	// handler's defaults for each.
	Types []TypeInfo `msgpack:"types,allownil,limit=1024"`
	// MaxConcurrency is how many tasks the worker runs at once (>= 1).
	MaxConcurrency int `msgpack:"max"`
}

// Kind implements [Message].
func (WorkerInfo) Kind() string { return "ceylon.worker.info" }

// Validate checks the worker's offer.
func (w *WorkerInfo) Validate() error {
	switch {
	case w.Name == "":
		return fmt.Errorf("worker info: %w", ErrEmptyWorker)
	case w.Skill != 0 && (w.Skill < MinDifficulty || w.Skill > MaxDifficulty):
		return fmt.Errorf("worker %q: skill: %w: %d", w.Name, ErrDifficultyRange, w.Skill)
	case w.MaxConcurrency < 1:
		return fmt.Errorf("worker %q: %w: max concurrency %d", w.Name, ErrNegativeValue, w.MaxConcurrency)
	}
	for _, t := range w.Types {
		if t.Name == "" {
			return fmt.Errorf("worker %q: %w", w.Name, ErrEmptyType)
		}
		if t.Timeout < 0 || t.RetryInterval < 0 || t.MaxRetryInterval < 0 || t.MaxRetries < NoRetry {
			return fmt.Errorf("worker %q: type %q: %w", w.Name, t.Name, ErrNegativeValue)
		}
	}
	return nil
}

// TypeInfo is one task type a worker runs and its handler's defaults; zero
// fields inherit the manager's defaults, and a task's own non-zero fields
// override these.
type TypeInfo struct {
	Name          string        `msgpack:"name"`
	Timeout       time.Duration `msgpack:"timeout,omitempty"`
	MaxRetries    int           `msgpack:"retries,omitempty"`
	RetryInterval time.Duration `msgpack:"retry_interval,omitempty"`
	Backoff       Backoff       `msgpack:"backoff,omitempty"`
	// MaxRetryInterval caps the wait between retries; 0 inherits.
	MaxRetryInterval time.Duration `msgpack:"max_retry_interval,omitempty"`
	Priority         int           `msgpack:"prio,omitempty"`
}

// TaskAck confirms that a worker accepted an assignment. A result for the
// same attempt also counts as its ack.
type TaskAck struct {
	TaskID  string `msgpack:"task"`
	Attempt int    `msgpack:"attempt"`
}

// Kind implements [Message].
func (TaskAck) Kind() string { return "ceylon.task.ack" }

// TaskCancel asks a worker to stop an attempt.
type TaskCancel struct {
	TaskID  string `msgpack:"task"`
	Attempt int    `msgpack:"attempt"`
	Reason  string `msgpack:"reason,omitempty"`
}

// Kind implements [Message].
func (TaskCancel) Kind() string { return "ceylon.task.cancel" }

// Heartbeat tells the manager a worker is alive, how busy it is, and
// which attempts it holds (running or queued), so the manager can
// reconcile its view: attempts the worker does not hold are given back to
// the queue, and attempts the manager no longer wants are cancelled again.
type Heartbeat struct {
	InFlight int `msgpack:"inflight"`
	// Running lists the attempts the worker holds; nil when it holds too
	// many to list (the manager then does not reconcile).
	Running []AttemptRef `msgpack:"running,omitempty,allownil,limit=4096"`
	// Listed says Running is complete (even when empty).
	Listed bool `msgpack:"listed,omitempty"`
}

// AttemptRef names one attempt of a task.
type AttemptRef struct {
	TaskID  string `msgpack:"task"`
	Attempt int    `msgpack:"attempt"`
}

// Kind implements [Message].
func (Heartbeat) Kind() string { return "ceylon.heartbeat" }

// Welcome asks a worker to introduce itself (send its [WorkerInfo]): the
// manager sends it to a worker that joins, and to one whose heartbeats it
// hears without knowing it (after the manager saw it leave, or restarted).
// Among several managers that replicate the workspace's tasks, the one
// elected leader sends it to every worker with its epoch (the Raft term,
// with its rebuilds within the term in the low 20 bits): a worker follows
// the manager with the highest epoch it has heard.
type Welcome struct {
	Epoch uint64 `msgpack:"epoch,omitempty"`
}

// Kind implements [Message].
func (Welcome) Kind() string { return "ceylon.welcome" }

// MaxProgressMessage bounds a progress report's message, in bytes.
const MaxProgressMessage = 256

// TaskProgress is a worker's report on how far a running attempt has got.
type TaskProgress struct {
	TaskID  string `msgpack:"task"`
	Attempt int    `msgpack:"attempt"`
	// Fraction is done over total, 0 to 1.
	Fraction float64 `msgpack:"fraction"`
	// Message says what it is doing (at most MaxProgressMessage bytes).
	Message string `msgpack:"msg,omitempty"`
}

// Kind implements [Message].
func (TaskProgress) Kind() string { return "ceylon.task.progress" }

// Validate checks the report's fields.
func (p *TaskProgress) Validate() error {
	switch {
	case p.TaskID == "":
		return fmt.Errorf("progress: %w", ErrEmptyID)
	case p.Attempt < 1:
		return fmt.Errorf("progress of %q: %w", p.TaskID, ErrBadAttempt)
	case !(p.Fraction >= 0 && p.Fraction <= 1):
		return fmt.Errorf("progress of %q: %w: fraction %v not in [0, 1]", p.TaskID, ErrMalformed, p.Fraction)
	case len(p.Message) > MaxProgressMessage:
		return fmt.Errorf("progress of %q: %w: message of %d bytes", p.TaskID, ErrMalformed, len(p.Message))
	}
	return nil
}

// Shutdown asks agents to stop.
type Shutdown struct {
	Reason string `msgpack:"reason,omitempty"`
}

// Kind implements [Message].
func (Shutdown) Kind() string { return "ceylon.shutdown" }

func registerBuiltins(r *Registry) {
	MustRegister[Task](r)
	MustRegister[TaskAssignment](r)
	MustRegister[TaskResult](r)
	MustRegister[WorkerInfo](r)
	MustRegister[TaskAck](r)
	MustRegister[TaskCancel](r)
	MustRegister[Heartbeat](r)
	MustRegister[Welcome](r)
	MustRegister[Shutdown](r)
	MustRegister[TaskProgress](r)
}
