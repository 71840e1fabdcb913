package playground

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

// Remote producers: any member of the workspace adds tasks with
// dependencies to the playground and waits for their results
// ([Client]), over direct streams to the playground's manager. A batch
// is accepted whole or not at all, and answered once durable (with a
// journal); a wait is answered once the task is final. Under a strict
// manager (task.WithGrantsRequired) each task needs a producer grant for
// its type, and a wait a producer or viewer grant.

// maxRemoteCalls bounds the remote submits and waits the playground holds
// at once, maxRemoteCallsPerPeer those of one peer; past them a call is
// refused with task.ErrBusy.
const (
	maxRemoteCalls        = 16384
	maxRemoteCallsPerPeer = 1024
)

// The playground's errors on the wire, besides the task manager's codes.
var remoteCodes = []struct {
	err  error
	code string
}{
	{ErrDependencyFailed, "dependency_failed"},
	{ErrChildFailed, "child_failed"},
	{ErrTaskFailed, "task_failed"},
	{ErrUnknownDependency, "unknown_dependency"},
	{ErrCycle, "cycle"},
	{ErrNotStarted, "not_started"},
	{ErrCancelled, "cancelled"},
}

func remoteOutcome(id string, err error) messages.Outcome {
	if err == nil {
		return messages.Outcome{ID: id}
	}
	for _, c := range remoteCodes {
		if errors.Is(err, c.err) {
			return messages.Outcome{ID: id, Code: c.code, Message: err.Error()}
		}
	}
	return messages.Outcome{ID: id, Code: task.ErrorCode(err), Message: err.Error()}
}

// outcome is remoteOutcome with the leading manager's ID when err is
// task.ErrNotLeader, for the client to follow.
func (p *Playground) outcome(id string, err error) messages.Outcome {
	o := remoteOutcome(id, err)
	if o.Code == messages.CodeNotLeader {
		if st, rerr := p.mgr.Replica(); rerr == nil && st.Leader != p.mgr.Agent().ID() {
			o.Leader = st.Leader
		}
	}
	return o
}

func remoteErr(o messages.Outcome) error {
	if o.Code == "" {
		return nil
	}
	for _, c := range remoteCodes {
		if c.code == o.Code {
			return fmt.Errorf("%w (the playground said: %s)", c.err, o.Message)
		}
	}
	return task.ErrorFromCode(o.Code, o.Message)
}

// errStandby is a standby's refusal of a remote call.
var errStandby = fmt.Errorf("%w: a standby playground", task.ErrNotLeader)

// serveRemote registers the handlers on the manager's agent a.
func (p *Playground) serveRemote(a *agent.Agent) {
	p.remoteBy = map[peer.ID]int{}
	agent.On(a, p.onGraphSubmit)
	agent.On(a, p.onGraphWait)
}

// reply answers ctx from the actor (the work ran on its own goroutine),
// and frees the call's place.
func (p *Playground) reply(ctx agent.Context, rep messages.Message) {
	from := ctx.SenderID()
	_ = p.mgr.Agent().Post(func() {
		p.release(from)
		_ = ctx.Reply(rep)
	})
}

// slot takes a place among the remote calls held, or says the playground
// (or this peer's share of it) is busy. Only called in the actor.
func (p *Playground) slot(from peer.ID) error {
	switch {
	case p.remoteN >= maxRemoteCalls:
		return fmt.Errorf("%w: %d remote calls held", task.ErrBusy, maxRemoteCalls)
	case p.remoteBy[from] >= maxRemoteCallsPerPeer:
		return fmt.Errorf("%w: %d remote calls held for this peer", task.ErrBusy, maxRemoteCallsPerPeer)
	}
	p.remoteN++
	p.remoteBy[from]++
	return nil
}

// release gives a call's place back. Only called in the actor.
func (p *Playground) release(from peer.ID) {
	p.remoteN--
	if p.remoteBy[from]--; p.remoteBy[from] <= 0 {
		delete(p.remoteBy, from)
	}
}

// onGraphSubmit runs in the manager's actor: it checks the request and
// the sender's grants there, then adds the batch on a goroutine of its
// own (AddTasks goes through the actor).
func (p *Playground) onGraphSubmit(ctx agent.Context, req messages.GraphSubmit) error {
	refuse := func(err error) error {
		return ctx.Reply(messages.GraphSubmitted{Outcome: p.outcome("", err)})
	}
	if err := req.Validate(); err != nil {
		return refuse(err)
	}
	if p.standby { // the client follows the leader outcome names
		return refuse(errStandby)
	}
	for _, t := range req.Tasks {
		if err := p.mgr.Authorize(ctx, t.Type, task.RoleProducer); err != nil {
			return refuse(err)
		}
		// A dependency's output reaches the task's handler: the producer
		// must be allowed to read it.
		for _, d := range t.Dependencies {
			if n := p.nodes[d]; n != nil {
				if err := p.mgr.Authorize(ctx, n.task.Type, task.RoleProducer, task.RoleViewer); err != nil {
					return refuse(err)
				}
			}
		}
	}
	if err := p.slot(ctx.SenderID()); err != nil {
		return refuse(err)
	}
	go func() {
		cctx, cancel := context.WithTimeout(p.mgr.Agent().Context(), handoverTimeout)
		defer cancel()
		ids, err := p.addTasks(cctx, req.Tasks, true)
		// IDs with an error: added, but not confirmed durable in time.
		p.reply(ctx, messages.GraphSubmitted{IDs: ids, Outcome: p.outcome("", err)})
	}()
	return nil
}

// onGraphWait answers once the task is final, from a goroutine of its own.
func (p *Playground) onGraphWait(ctx agent.Context, req messages.GraphWait) error {
	if p.standby {
		return ctx.Reply(messages.GraphResult{Outcome: p.outcome(req.ID, errStandby)})
	}
	typ := "" // an unknown task: any producer or viewer may hear it is unknown
	if n := p.nodes[req.ID]; n != nil {
		typ = n.task.Type
	}
	if err := p.mgr.Authorize(ctx, typ, task.RoleProducer, task.RoleViewer); err != nil {
		return ctx.Reply(messages.GraphResult{Outcome: p.outcome(req.ID, err)})
	}
	if err := p.slot(ctx.SenderID()); err != nil {
		return ctx.Reply(messages.GraphResult{Outcome: p.outcome(req.ID, err)})
	}
	go func() {
		r, err := p.Wait(p.mgr.Agent().Context(), req.ID)
		p.reply(ctx, messages.GraphResult{Result: r, Outcome: p.outcome(req.ID, err)})
	}()
	return nil
}

// Client adds tasks with dependencies to a playground from another agent
// of the workspace (another process, another machine), and waits for
// their results. Build it on your agent before the agent starts; it finds
// the playground's manager as task.Client does (the admin it joined
// through, or the first it meets), and with task.WithClientGrants its
// grants reach a strict manager.
type Client struct {
	a  *agent.Agent
	tc *task.Client
}

// NewClient makes a a producer for its workspace's playground. a must not
// have started yet.
func NewClient(a *agent.Agent, opts ...task.ClientOption) (*Client, error) {
	tc, err := task.NewClient(a, opts...)
	if err != nil {
		return nil, err
	}
	for _, err := range []error{agent.RegisterKind[messages.GraphSubmitted](a), agent.RegisterKind[messages.GraphResult](a)} {
		if err != nil {
			return nil, err
		}
	}
	return &Client{a: a, tc: tc}, nil
}

// Tasks is the task layer's client on the same agent: a task's state,
// Cancel, and the admin API.
func (c *Client) Tasks() *task.Client { return c.tc }

// AddTasks adds a batch of tasks, as [Playground.AddTasks] does (whole or
// not at all; at most messages.MaxSubmitBatch in one batch), and returns
// their IDs once the playground holds them durably. Tasks without an ID
// get a random one here, so that the batch can be sent again after a
// lost reply or to a new leader: a batch whose every task the playground
// holds already, as given, is answered as added (another task under a
// taken ID is still ErrDuplicateTask).
func (c *Client) AddTasks(ctx context.Context, tasks ...Task) ([]string, error) {
	if slices.ContainsFunc(tasks, func(t Task) bool { return t.ID == "" }) {
		tasks = slices.Clone(tasks)
		for i := range tasks {
			if tasks[i].ID == "" {
				tasks[i].ID = "task-r" + rand.Text()
			}
		}
	}
	rep, err := c.tc.Request(ctx, messages.GraphSubmit{Tasks: tasks})
	if err != nil {
		return nil, fmt.Errorf("playground: add tasks: %w", err)
	}
	r, ok := rep.(messages.GraphSubmitted)
	if !ok {
		return nil, fmt.Errorf("playground: add tasks: %w: reply of kind %s", task.ErrRemote, rep.Kind())
	}
	if err := remoteErr(r.Outcome); err != nil {
		// With IDs: the batch was added, not confirmed durable in time.
		return r.IDs, fmt.Errorf("playground: add tasks: %w", err)
	}
	return r.IDs, nil
}

// Wait waits for a task's result, with the error [Playground.Wait] gives
// ([ErrDependencyFailed], [ErrTaskFailed], …; errors.Is works).
func (c *Client) Wait(ctx context.Context, id string) (Result, error) {
	rep, err := c.tc.Request(ctx, messages.GraphWait{ID: id})
	if err != nil {
		return Result{}, fmt.Errorf("playground: wait for %q: %w", id, err)
	}
	r, ok := rep.(messages.GraphResult)
	if !ok {
		return Result{}, fmt.Errorf("playground: wait for %q: %w: reply of kind %s", id, task.ErrRemote, rep.Kind())
	}
	return r.Result, remoteErr(r.Outcome)
}

// AddAndExecuteTask adds one task and waits for its result.
func (c *Client) AddAndExecuteTask(ctx context.Context, t Task) (Result, error) {
	ids, err := c.AddTasks(ctx, t)
	if err != nil {
		return Result{}, err
	}
	if len(ids) != 1 {
		return Result{}, fmt.Errorf("playground: add task: %w: %d IDs for 1 task", task.ErrRemote, len(ids))
	}
	return c.Wait(ctx, ids[0])
}
