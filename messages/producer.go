package messages

// Remote producers: any member of a workspace submits, waits for, looks
// up and cancels tasks by asking the task manager (agent.Request on these
// kinds; task.Client does it). Each request is answered by its reply
// kind; an error travels as a code (one of the Code* constants) and a
// message, so the client gives back the manager's named error.
//
// The codecs of the types in this file are generated (producer_gen.go).
//
//msgp:tag msgpack
//msgp:shim time.Duration as:int64 using:int64/time.Duration

import "fmt"

// MaxSubmitBatch bounds the tasks of one SubmitRequest.
const MaxSubmitBatch = 1024

// MaxTraceparent bounds a W3C traceparent on the wire (55 bytes in
// version 00).
const MaxTraceparent = 256

// Error codes of the replies to remote producers.
const (
	CodeDuplicate        = "duplicate"         // another task holds the ID (with other content)
	CodeDuplicateUnique  = "duplicate_unique"  // another task holds the Unique key
	CodeUnknownTask      = "unknown_task"      // the manager does not know the ID
	CodeUnknownProcessor = "unknown_processor" // no worker runs the type (WithProcessors)
	CodeTooLarge         = "too_large"         // the task would not fit in a frame to a worker
	CodeInvalid          = "invalid"           // malformed task ("invalid.<what>" names the check)
	CodeDependencies     = "dependencies"      // the task has dependencies (submit through a playground)
	CodeBusy             = "busy"              // the manager holds too many remote waits
	CodeStopped          = "stopped"           // the manager is stopping
	CodeJournal          = "journal"           // the journal could not commit it
	CodeNotLeader        = "not_leader"        // a standby manager: ask the leader (Outcome.Leader, if known)
	CodeOther            = "other"
)

// SubmitRequest asks the task manager to accept tasks; the reply is a
// SubmitReply, sent once the accepted tasks are durable (journaled, when
// the manager keeps a journal). Submitting a task again with the same ID
// and content is not an error: a client that lost a reply may repeat.
type SubmitRequest struct {
	Tasks []Task `msgpack:"tasks,limit=1024"` // MaxSubmitBatch
	// Traces, when set, holds the W3C traceparent of each task's submit
	// span, in order ("" for an untraced task).
	Traces []string `msgpack:"traces,omitempty,allownil,limit=1024"`
}

// Kind implements Message.
func (SubmitRequest) Kind() string { return "ceylon.producer.submit" }

// Validate checks the batch's size and every task.
func (r SubmitRequest) Validate() error {
	if len(r.Tasks) == 0 || len(r.Tasks) > MaxSubmitBatch {
		return fmt.Errorf("submit request: %w: %d tasks (1 to %d)", ErrMalformed, len(r.Tasks), MaxSubmitBatch)
	}
	if len(r.Traces) != 0 && len(r.Traces) != len(r.Tasks) {
		return fmt.Errorf("submit request: %w: %d traces for %d tasks", ErrMalformed, len(r.Traces), len(r.Tasks))
	}
	for _, tp := range r.Traces {
		if len(tp) > MaxTraceparent {
			return fmt.Errorf("submit request: %w: a traceparent of %d bytes (at most %d)", ErrMalformed, len(tp), MaxTraceparent)
		}
	}
	for i := range r.Tasks {
		if err := r.Tasks[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Outcome is what became of one task or request: accepted (no code) or
// refused (a code and a message).
type Outcome struct {
	ID      string `msgpack:"id,omitempty"`
	Code    string `msgpack:"code,omitempty"`
	Message string `msgpack:"msg,omitempty"`
	// Leader is the leading manager's peer ID, with CodeNotLeader, when
	// the standby that answered knows it.
	Leader string `msgpack:"leader,omitempty"`
}

// SubmitReply answers a SubmitRequest, one outcome per task, in order.
type SubmitReply struct {
	Outcomes []Outcome `msgpack:"outcomes,limit=1024"` // MaxSubmitBatch
	// Refused, when set, refuses the whole request (malformed, stopping).
	Refused Outcome `msgpack:"refused,omitempty"`
}

// Kind implements Message.
func (SubmitReply) Kind() string { return "ceylon.producer.submitted" }

// WaitRequest asks for a task's result; the reply (a WaitReply) comes once
// the task is final.
type WaitRequest struct {
	ID string `msgpack:"id"`
}

// Kind implements Message.
func (WaitRequest) Kind() string { return "ceylon.producer.wait" }

// WaitReply carries a final task's result, or why there is none.
type WaitReply struct {
	Result  TaskResult `msgpack:"result"`
	Outcome Outcome    `msgpack:"outcome,omitempty"`
}

// Kind implements Message.
func (WaitReply) Kind() string { return "ceylon.producer.result" }

// StatusRequest asks for a task's state now.
type StatusRequest struct {
	ID string `msgpack:"id"`
}

// Kind implements Message.
func (StatusRequest) Kind() string { return "ceylon.producer.status" }

// StatusReply is a task's state as the manager knows it.
type StatusReply struct {
	Status          string      `msgpack:"status,omitempty"` // a task.Status's name
	Attempt         int         `msgpack:"attempt,omitempty"`
	Worker          string      `msgpack:"worker,omitempty"`
	Progress        float64     `msgpack:"progress,omitempty"`
	ProgressMessage string      `msgpack:"progress_msg,omitempty"`
	Result          *TaskResult `msgpack:"result,omitempty"`
	Outcome         Outcome     `msgpack:"outcome,omitempty"`
}

// Kind implements Message.
func (StatusReply) Kind() string { return "ceylon.producer.state" }

// CancelRequest asks the manager to cancel a task.
type CancelRequest struct {
	ID string `msgpack:"id"`
}

// Kind implements Message.
func (CancelRequest) Kind() string { return "ceylon.producer.cancel" }

// CancelReply answers a CancelRequest.
type CancelReply struct {
	Outcome Outcome `msgpack:"outcome,omitempty"`
}

// Kind implements Message.
func (CancelReply) Kind() string { return "ceylon.producer.cancelled" }
