package messages

import "fmt"

// WorkerInfo introduces a worker to the task manager and updates it when the
// worker's offer changes.
type WorkerInfo struct {
	Name string `msgpack:"name"`
	// Skill is 1-10; 0 means unrated (takes only unrated tasks... and any
	// task when no rated worker exists; see the manager's matching rules).
	Skill int `msgpack:"skill,omitempty"`
	// Capabilities the worker has (e.g. "gpu", "high-memory").
	Capabilities []string `msgpack:"caps,omitempty"`
	// Types are the task types (processors) the worker runs.
	Types []string `msgpack:"types"`
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
	return nil
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

// Heartbeat tells the manager a worker is alive and how busy it is.
type Heartbeat struct {
	InFlight int `msgpack:"inflight"`
}

// Kind implements [Message].
func (Heartbeat) Kind() string { return "ceylon.heartbeat" }

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
	MustRegister[Shutdown](r)
}
