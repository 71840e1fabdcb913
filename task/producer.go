package task

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
)

// The manager's side of remote producers (see [Client]): it answers
// submit, wait, status and cancel requests from any member of the
// workspace. The handlers run in the manager's actor, like the rest of
// its state; a submit is answered once the accepted tasks are durable, a
// wait once the task is final.

// defaultMaxRemoteWaits bounds the waits the manager holds for remote
// producers at once (each costs a few hundred bytes until its task is
// final); past it a wait is refused with [ErrBusy].
const defaultMaxRemoteWaits = 16384

// remoteWait is one remote producer's wait for a task.
type remoteWait struct{ ctx agent.Context }

func (m *Manager) handleProducers(a *agent.Agent) {
	agent.On(a, m.onSubmitRequest)
	agent.On(a, m.onWaitRequest)
	agent.On(a, m.onStatusRequest)
	agent.On(a, m.onCancelRequest)
}

// standbyOutcome is the refusal of a standby manager, nil when leading.
func (m *Manager) standbyOutcome(id string) *messages.Outcome {
	if m.leading {
		return nil
	}
	o := outcome(id, m.notLeader())
	if l := m.leaderHint(); l != m.agent.ID() {
		o.Leader = l
	}
	return &o
}

// outcomeOf is outcome, with the leader's ID when err is ErrNotLeader.
func (m *Manager) outcomeOf(id string, err error) messages.Outcome {
	o := outcome(id, err)
	if o.Code == messages.CodeNotLeader {
		if l := m.leaderHint(); l != m.agent.ID() {
			o.Leader = l
		}
	}
	return o
}

func (m *Manager) onSubmitRequest(ctx agent.Context, req messages.SubmitRequest) error {
	if o := m.standbyOutcome(""); o != nil {
		return ctx.Reply(messages.SubmitReply{Refused: *o})
	}
	if err := req.Validate(); err != nil {
		return ctx.Reply(messages.SubmitReply{Refused: outcome("", err)})
	}
	out := make([]messages.Outcome, len(req.Tasks))
	for i, t := range req.Tasks {
		out[i].ID = t.ID
		if err := m.authorize(ctx.SenderID(), t.Type, RoleProducer); err != nil {
			out[i] = outcome(t.ID, err)
			continue
		}
		if old := m.tasks[t.ID]; old != nil && reflect.DeepEqual(old.task, t) {
			continue // a repeat (the producer lost our reply): accepted already
		}
		s := Submission{Task: t}
		if len(req.Traces) > 0 {
			s.Trace = req.Traces[i]
		}
		if err := m.accept([]Submission{s}); err != nil {
			out[i] = outcome(t.ID, err)
		}
	}
	m.remoteSubmits += uint64(len(req.Tasks))
	// Everything accepted above (and any repeat's first submission) is
	// durable once the next commit is.
	m.afterCommit(func(err error) {
		if err != nil {
			for i := range out {
				if out[i].Code == "" {
					out[i] = m.outcomeOf(out[i].ID, err)
				}
			}
		}
		_ = ctx.Reply(messages.SubmitReply{Outcomes: out})
	})
	return nil
}

func (m *Manager) onWaitRequest(ctx agent.Context, req messages.WaitRequest) error {
	if o := m.standbyOutcome(req.ID); o != nil {
		return ctx.Reply(messages.WaitReply{Outcome: *o})
	}
	if err := m.authorize(ctx.SenderID(), "", RoleProducer, RoleViewer); err != nil { // before saying whether it exists
		return ctx.Reply(messages.WaitReply{Outcome: outcome(req.ID, err)})
	}
	t := m.tasks[req.ID]
	var waitErr error
	if t != nil {
		waitErr = m.readable(ctx, t)
	}
	switch {
	case t == nil:
		return ctx.Reply(messages.WaitReply{Outcome: outcome(req.ID, fmt.Errorf("%w: %q", ErrUnknownTask, req.ID))})
	case waitErr != nil:
		return ctx.Reply(messages.WaitReply{Outcome: outcome(req.ID, waitErr)})
	case t.settled:
		return ctx.Reply(messages.WaitReply{Result: *t.result})
	case m.remoteWaits >= m.cfg.maxRemoteWaits:
		return ctx.Reply(messages.WaitReply{Outcome: outcome(req.ID, fmt.Errorf("%w: %d remote waits held", ErrBusy, m.remoteWaits))})
	}
	t.remote = append(t.remote, remoteWait{ctx})
	m.remoteWaits++
	return nil
}

// answerRemoteWaits replies to the remote waits for t, now final.
func (m *Manager) answerRemoteWaits(t *taskState) {
	for _, w := range t.remote {
		_ = w.ctx.Reply(messages.WaitReply{Result: *t.result})
	}
	m.remoteWaits -= len(t.remote)
	t.remote = nil
}

func (m *Manager) onStatusRequest(ctx agent.Context, req messages.StatusRequest) error {
	if o := m.standbyOutcome(req.ID); o != nil {
		return ctx.Reply(messages.StatusReply{Outcome: *o})
	}
	if err := m.authorize(ctx.SenderID(), "", RoleProducer, RoleViewer); err != nil {
		return ctx.Reply(messages.StatusReply{Outcome: outcome(req.ID, err)})
	}
	t := m.tasks[req.ID]
	if t == nil {
		return ctx.Reply(messages.StatusReply{Outcome: outcome(req.ID, fmt.Errorf("%w: %q", ErrUnknownTask, req.ID))})
	}
	if err := m.readable(ctx, t); err != nil {
		return ctx.Reply(messages.StatusReply{Outcome: outcome(req.ID, err)})
	}
	rep := messages.StatusReply{Status: t.status.String(), Attempt: t.attempt, Progress: t.progress, ProgressMessage: t.progressMessage}
	if t.worker != nil {
		rep.Worker = t.worker.info.Name
	}
	if t.settled {
		r := *t.result
		rep.Result = &r
		rep.Worker = r.Worker
	}
	return ctx.Reply(rep)
}

func (m *Manager) onCancelRequest(ctx agent.Context, req messages.CancelRequest) error {
	if o := m.standbyOutcome(req.ID); o != nil {
		return ctx.Reply(messages.CancelReply{Outcome: *o})
	}
	if err := m.authorize(ctx.SenderID(), "", RoleOperator, RoleProducer); err != nil {
		return ctx.Reply(messages.CancelReply{Outcome: outcome(req.ID, err)})
	}
	t := m.tasks[req.ID]
	if t == nil {
		return ctx.Reply(messages.CancelReply{Outcome: outcome(req.ID, fmt.Errorf("%w: %q", ErrUnknownTask, req.ID))})
	}
	if err := m.authorize(ctx.SenderID(), t.task.Type, RoleProducer, RoleOperator); err != nil {
		return ctx.Reply(messages.CancelReply{Outcome: outcome(req.ID, err)})
	}
	m.cancel(t, "cancelled by "+ctx.Sender().String())
	m.afterCommit(func(err error) {
		var o messages.Outcome
		if err != nil {
			o = m.outcomeOf(req.ID, err)
		}
		_ = ctx.Reply(messages.CancelReply{Outcome: o})
	})
	return nil
}

// codes pairs the errors remote producers get back with their wire codes.
var codes = []struct {
	err  error
	code string
}{
	{ErrNotLeader, messages.CodeNotLeader}, // before ErrJournal: a lost lead fails a commit
	{ErrDuplicateTask, messages.CodeDuplicate},
	{ErrDuplicateUnique, messages.CodeDuplicateUnique},
	{ErrUnknownTask, messages.CodeUnknownTask},
	{ErrUnknownProcessor, messages.CodeUnknownProcessor},
	{ErrTaskTooLarge, messages.CodeTooLarge},
	{ErrUnresolvedDependencies, messages.CodeDependencies},
	{ErrBusy, messages.CodeBusy},
	{ErrBadFilter, messages.CodeBadFilter},
	{ErrGrantExpired, "grant_expired"},
	{ErrGrantRevoked, "grant_revoked"},
	{ErrUntrustedIssuer, "untrusted_issuer"},
	{ErrBadGrant, "bad_grant"},
	{ErrUnauthorized, messages.CodeUnauthorized},
	{ErrNotFinal, messages.CodeNotFinal},
	{ErrUnknownOp, messages.CodeUnknownOp},
	{ErrReplyTooLarge, messages.CodeTooLong},
	{agent.ErrStopped, messages.CodeStopped},
	{ErrJournal, messages.CodeJournal},
	{messages.ErrEmptyID, "invalid.empty_id"},
	{messages.ErrEmptyType, "invalid.empty_type"},
	{messages.ErrEmptyDescription, "invalid.empty_description"},
	{messages.ErrDifficultyRange, "invalid.difficulty"},
	{messages.ErrNegativeValue, "invalid.negative"},
	{messages.ErrSelfDependency, "invalid.self_dependency"},
	{messages.ErrDuplicateDependency, "invalid.duplicate_dependency"},
	{messages.ErrMalformed, messages.CodeInvalid},
}

// outcome is err's wire form.
func outcome(id string, err error) messages.Outcome {
	if err == nil {
		return messages.Outcome{ID: id}
	}
	code := messages.CodeOther
	for _, c := range codes {
		if errors.Is(err, c.err) {
			code = c.code
			break
		}
	}
	return messages.Outcome{ID: id, Code: code, Message: err.Error()}
}

// outcomeErr is the error an outcome carries, wrapping the sentinel its
// code names (nil when it carries none).
func outcomeErr(o messages.Outcome) error {
	if o.Code == "" {
		return nil
	}
	for _, c := range codes {
		if c.code == o.Code {
			return fmt.Errorf("%w (the manager said: %s)", c.err, o.Message)
		}
	}
	return fmt.Errorf("%w: %s: %s", ErrRemote, o.Code, o.Message)
}

// ErrorCode is err's wire code (one of messages' Code* constants, "" for
// nil): what the admin API's HTTP form and the remote replies carry, so
// the other side can give back the named error ([ErrorFromCode]).
func ErrorCode(err error) string { return outcome("", err).Code }

// ErrorFromCode is the error a code and message from [ErrorCode] stand
// for: it wraps the sentinel the code names (errors.Is works), nil for
// no code.
func ErrorFromCode(code, message string) error {
	return outcomeErr(messages.Outcome{Code: code, Message: message})
}

// readable is nil if the sender may read t: a producer of its type, a
// viewer or an operator (anyone, under the open policy).
func (m *Manager) readable(ctx agent.Context, t *taskState) error {
	return m.authorize(ctx.SenderID(), t.task.Type, RoleProducer, RoleViewer)
}
