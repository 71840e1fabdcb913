package messages

// Operators: any member of a workspace reads and steers the task manager
// with an AdminRequest (agent.Request; task.Client does it), answered by
// an AdminReply. The request names an operation (one of the Admin*
// constants) and carries its argument; the reply carries the result or a
// refusal as an Outcome. Arguments and results are the task package's
// operator views in their JSON form: the same documents the monitor's
// HTTP API serves, so a script reading `ceylon … --json` sees one schema
// whichever way it reached the manager. Admin traffic is small and rare
// next to tasks; the codecs of the two envelopes below are generated
// (admin_gen.go).
//
//msgp:tag msgpack
//msgp:ignore AdminTarget

import "fmt"

// Operations of an AdminRequest.
const (
	AdminStats   = "stats"   // no argument; a task.Stats
	AdminTasks   = "tasks"   // a task.TaskFilter; a task.TaskPage
	AdminTask    = "task"    // an AdminTarget; a task.TaskDetail
	AdminCancel  = "cancel"  // an AdminTarget; nothing
	AdminRetry   = "retry"   // an AdminTarget; nothing
	AdminDelete  = "delete"  // an AdminTarget; nothing
	AdminWorkers = "workers" // no argument; []task.WorkerView
	AdminSeries  = "series"  // an AdminTarget (Since); []task.Sample
	AdminEvents  = "events"  // a task.EventQuery; a task.EventPage
	AdminPause   = "pause"   // an AdminTarget (Type); nothing
	AdminResume  = "resume"  // an AdminTarget (Type); nothing
	AdminRevoke  = "revoke"  // an AdminTarget (ID: the grant's); nothing
)

// MaxAdminBody bounds an AdminRequest's argument.
const MaxAdminBody = 64 << 10

// Error codes of admin replies, besides the producers' ones.
const (
	CodeBadFilter = "bad_filter"      // a malformed filter, query or argument
	CodeNotFinal  = "not_final"       // the task is not final (retry, delete)
	CodeUnknownOp = "unknown_op"      // an operation this manager does not know
	CodeTooLong   = "reply_too_large" // the answer does not fit one message: ask for less
)

// AdminRequest asks the task manager to do or tell something.
type AdminRequest struct {
	Op string `msgpack:"op"`
	// Body is the operation's argument, JSON (empty when it takes none).
	Body []byte `msgpack:"body,omitempty,allownil"`
}

// Kind implements Message.
func (AdminRequest) Kind() string { return "ceylon.admin.request" }

// Validate checks the operation's name and the argument's size.
func (r AdminRequest) Validate() error {
	if r.Op == "" || len(r.Op) > 64 {
		return fmt.Errorf("admin request: %w: operation %q", ErrMalformed, r.Op)
	}
	if len(r.Body) > MaxAdminBody {
		return fmt.Errorf("admin request: %w: argument of %d bytes (at most %d)", ErrMalformed, len(r.Body), MaxAdminBody)
	}
	return nil
}

// AdminReply answers an AdminRequest.
type AdminReply struct {
	// Body is the result, JSON (empty when the operation has none, or
	// was refused).
	Body    []byte  `msgpack:"body,omitempty,allownil"`
	Outcome Outcome `msgpack:"outcome,omitempty"`
}

// Kind implements Message.
func (AdminReply) Kind() string { return "ceylon.admin.reply" }

// AdminTarget is the argument of the operations on one task (ID), one
// task type (Type) or a time range (Since).
type AdminTarget struct {
	ID    string `json:"id,omitempty"`
	Type  string `json:"type,omitempty"`
	Since string `json:"since,omitempty"` // RFC 3339
}
