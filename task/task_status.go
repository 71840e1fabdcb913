package task

//msgp:tag msgpack
//msgp:newtime
//msgp:ignore Status Info Event EventType

import (
	"errors"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/tinylib/msgp/msgp"
)

// Status is where a task is in its life.
type Status int

// Task states. Completed, Failed and Cancelled are final.
const (
	StatusPending   Status = iota // accepted, waiting for a worker
	StatusWaiting                 // waiting on dependencies (playground)
	StatusAssigned                // sent to a worker, not yet acknowledged
	StatusRunning                 // acknowledged by its worker
	StatusRetrying                // an attempt failed; waiting to retry
	StatusScheduled               // waiting for the time it may run (ProcessAt, ProcessIn)
	StatusCompleted               // succeeded
	StatusFailed                  // failed for good
	StatusCancelled               // cancelled before it finished
)

// statusNames are what journals store: a status is stored by its name, so
// adding one (as "scheduled" was) renumbers nothing on disk.
var statusNames = [...]string{"pending", "waiting", "assigned", "running", "retrying", "scheduled", "completed", "failed", "cancelled"}

// String implements fmt.Stringer.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// ParseStatus is the Status named name (as String gives it).
func ParseStatus(name string) (Status, error) {
	for i, n := range statusNames {
		if n == name {
			return Status(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrUnknownStatus, name)
}

// ErrUnknownStatus reports a status name this version does not know.
var ErrUnknownStatus = errors.New("task: unknown status")

// MarshalMsg implements msgp.Marshaler: a status is stored by its name,
// so inserting a status never renumbers what a journal holds.
func (s Status) MarshalMsg(b []byte) ([]byte, error) {
	return msgp.AppendString(b, s.String()), nil
}

// UnmarshalMsg implements msgp.Unmarshaler.
func (s *Status) UnmarshalMsg(b []byte) ([]byte, error) {
	name, rest, err := msgp.ReadStringZC(b)
	if err != nil {
		return b, err
	}
	st, err := ParseStatus(string(name))
	if err != nil {
		return b, err
	}
	*s = st
	return rest, nil
}

// Msgsize implements msgp.Sizer.
func (s Status) Msgsize() int { return msgp.StringPrefixSize + len(s.String()) }

// Final reports whether the task will not change any more.
func (s Status) Final() bool { return s >= StatusCompleted }

// AttemptInfo records one attempt of a task.
type AttemptInfo struct {
	Attempt    int       `msgpack:"attempt"`
	Worker     string    `msgpack:"worker"`
	WorkerID   string    `msgpack:"worker_id,omitempty"` // the worker's peer ID (who may take the attempt over)
	AssignedAt time.Time `msgpack:"assigned"`
	EndedAt    time.Time `msgpack:"ended,omitempty"`
	// Outcome is "ok", the error text, "timeout", "lost" or "" while running.
	Outcome string `msgpack:"outcome,omitempty"`
	// Epoch is the leadership epoch the attempt was assigned in, among
	// replicated managers (0 otherwise): only results of that epoch count
	// for it.
	Epoch uint64 `msgpack:"epoch,omitempty"`
}

// Info is a snapshot of a task's state.
type Info struct {
	Task        messages.Task
	Status      Status
	Attempt     int    // current (or last) attempt number
	Worker      string // worker of the current (or last) attempt
	SubmittedAt time.Time
	// NotBefore is when a task submitted with ProcessAt or ProcessIn may
	// run (zero: at once).
	NotBefore time.Time
	// Progress and ProgressMessage are the running attempt's last report
	// (Job.Progress).
	Progress        float64
	ProgressMessage string
	FinishedAt      time.Time
	Attempts        []AttemptInfo
	// Result is set once the task is final.
	Result *messages.TaskResult
}

// Event tells an observer what happened to a task. Observers run in
// the manager's actor: they must be quick and must not call the manager's
// blocking methods.
type Event struct {
	Type    EventType
	TaskID  string
	Attempt int
	Worker  string
	// Result is set for EventCompleted, EventFailed and EventCancelled.
	Result *messages.TaskResult
	// Err says why an attempt failed, for EventRetrying and EventFailed.
	Err string
	// Delay is the wait before the retry, for EventRetrying.
	Delay time.Duration
	// Attempts is the task's attempt history, on final events (read only).
	Attempts []AttemptInfo
	// Progress and ProgressMessage are the report, for EventProgress.
	Progress        float64
	ProgressMessage string
}

// EventType names a task event.
type EventType int

// Task event types.
const (
	EventSubmitted EventType = iota
	EventAssigned
	EventAcked
	EventRetrying
	EventRequeued // the worker was lost; the task goes back to the queue
	EventCompleted
	EventFailed
	EventCancelled
	EventProgress // a running attempt reported how far it has got
)

var eventNames = [...]string{"submitted", "assigned", "acked", "retrying", "requeued", "completed", "failed", "cancelled", "progress"}

// String implements fmt.Stringer.
func (e EventType) String() string {
	if int(e) < len(eventNames) {
		return eventNames[e]
	}
	return "unknown"
}
