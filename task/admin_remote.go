package task

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
)

// The admin API inside the workspace: the manager answers AdminRequests
// from any member (in its actor, like the rest of its state), and Client
// implements Operator with them. Arguments and results travel as the
// views' JSON (see messages.AdminRequest).

func (m *Manager) onAdminRequest(ctx agent.Context, req messages.AdminRequest) error {
	if err := req.Validate(); err != nil {
		return ctx.Reply(messages.AdminReply{Outcome: outcome("", err)})
	}
	role := RoleViewer
	switch req.Op {
	case messages.AdminCancel, messages.AdminRetry, messages.AdminDelete, messages.AdminPause, messages.AdminResume, messages.AdminRevoke:
		role = RoleOperator
	}
	if err := m.authorize(ctx.SenderID(), "", role); err != nil {
		return ctx.Reply(messages.AdminReply{Outcome: outcome("", err)})
	}
	if req.Op != messages.AdminStats { // a standby's own stats say where it stands
		if o := m.standbyOutcome(""); o != nil {
			return ctx.Reply(messages.AdminReply{Outcome: *o})
		}
	}
	reply := func(v any, err error) {
		rep := messages.AdminReply{}
		if err == nil && v != nil {
			rep.Body, err = json.Marshal(v)
		}
		if max := m.agent.MaxMessageSize(); err == nil && max > 0 && len(rep.Body) > max-adminReplySlack {
			err = fmt.Errorf("%w: %d bytes, a message carries %d (ask for fewer: a smaller limit)", ErrReplyTooLarge, len(rep.Body), max)
		}
		if err != nil {
			rep = messages.AdminReply{Outcome: m.outcomeOf("", err)}
		}
		if err := ctx.Reply(rep); err != nil {
			m.agent.Logger().Warn("admin reply not sent", "op", req.Op, "to", ctx.Sender().Name, "err", err)
		}
	}
	// durable replies once act's change is durable.
	durable := func(act func() error) {
		if err := act(); err != nil {
			reply(nil, err)
			return
		}
		m.afterCommit(func(err error) { reply(nil, err) })
	}
	var target messages.AdminTarget
	switch req.Op {
	case messages.AdminTask, messages.AdminCancel, messages.AdminRetry, messages.AdminDelete,
		messages.AdminSeries, messages.AdminPause, messages.AdminResume, messages.AdminRevoke:
		if err := decodeArg(req.Body, &target); err != nil {
			reply(nil, err)
			return nil
		}
	}
	switch req.Op {
	case messages.AdminStats:
		reply(m.stats(), nil)
	case messages.AdminWorkers:
		reply(m.workerViews(), nil)
	case messages.AdminTasks:
		var f TaskFilter
		if err := decodeArg(req.Body, &f); err != nil {
			reply(nil, err)
			return nil
		}
		reply(m.listTasks(f))
	case messages.AdminTask:
		if t := m.tasks[target.ID]; t != nil {
			reply(t.detail(), nil)
		} else {
			reply(nil, fmt.Errorf("%w: %q", ErrUnknownTask, target.ID))
		}
	case messages.AdminCancel:
		durable(func() error { return m.cancelTask(target.ID, "cancelled by "+ctx.Sender().String()) })
	case messages.AdminRetry:
		durable(func() error { return m.retry(target.ID) })
	case messages.AdminDelete:
		durable(func() error { return m.delete(target.ID) })
	case messages.AdminPause, messages.AdminResume:
		durable(func() error { return m.pause(target.Type, req.Op == messages.AdminPause) })
	case messages.AdminRevoke:
		durable(func() error { return m.revokeGrant(target.ID) })
	case messages.AdminSeries:
		var since time.Time
		if target.Since != "" {
			var err error
			if since, err = time.Parse(time.RFC3339Nano, target.Since); err != nil {
				reply(nil, fmt.Errorf("%w: since %q", ErrBadFilter, target.Since))
				return nil
			}
		}
		reply(m.seriesSince(since), nil)
	case messages.AdminEvents:
		var q EventQuery
		if err := decodeArg(req.Body, &q); err != nil {
			reply(nil, err)
			return nil
		}
		q, err := q.check()
		if err != nil {
			reply(nil, err)
			return nil
		}
		m.tail(ctx, q, reply)
	default:
		reply(nil, fmt.Errorf("%w: %q", ErrUnknownOp, req.Op))
	}
	return nil
}

// adminReplySlack is room in a message for the reply's own framing.
const adminReplySlack = 4 << 10

// decodeArg decodes an admin request's JSON argument (an empty one leaves
// v as it is).
func decodeArg(body []byte, v any) error {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFilter, err)
	}
	return nil
}

// tail answers an events request now if there are events (or it does
// not wait), or parks it until the next event or its wait ends.
func (m *Manager) tail(ctx agent.Context, q EventQuery, reply func(any, error)) {
	p := m.feed.read(q)
	switch {
	case len(p.Events) > 0 || q.Wait == 0:
		reply(p, nil)
		return
	case len(m.feed.parked) >= maxParkedTails:
		reply(nil, fmt.Errorf("%w: %d event readers wait already", ErrBusy, maxParkedTails))
		return
	}
	q.After, q.Feed = p.Next, p.Feed
	until := time.Now().Add(q.Wait)
	m.feed.parked = append(m.feed.parked, parkedTail{ctx: ctx, q: q, until: until})
	if m.feed.due.IsZero() || until.Before(m.feed.due) {
		m.feed.due = until
	}
}

// expireTails answers the parked events requests whose wait is over
// (the sweep calls it each tick). Only called in the actor.
func (m *Manager) expireTails(now time.Time) {
	if len(m.feed.parked) > 0 && !now.Before(m.feed.due) {
		m.answerTails()
	}
}

// answerTails answers the parked events requests that have events now,
// or whose wait is over. Only called in the actor.
func (m *Manager) answerTails() {
	m.feed.posted = false
	now := time.Now()
	kept := m.feed.parked[:0]
	m.feed.due = time.Time{}
	for _, pt := range m.feed.parked {
		p := m.feed.read(pt.q)
		if len(p.Events) == 0 && now.Before(pt.until) {
			pt.q.After = p.Next
			kept = append(kept, pt)
			if m.feed.due.IsZero() || pt.until.Before(m.feed.due) {
				m.feed.due = pt.until
			}
			continue
		}
		body, err := json.Marshal(p)
		rep := messages.AdminReply{Body: body}
		if err != nil {
			rep = messages.AdminReply{Outcome: outcome("", err)}
		}
		_ = pt.ctx.Reply(rep)
	}
	clear(m.feed.parked[len(kept):])
	m.feed.parked = kept
}

// Operator's side of Client: each call is one AdminRequest to the
// manager (following the leader among replicated managers).

var _ Operator = (*Client)(nil)

// adminCaller sends an admin request and returns the reply: a Client
// to the manager it follows, a standby manager to its leader.
type adminCaller func(ctx context.Context, req messages.AdminRequest) (messages.Message, error)

// call sends op with arg (JSON) and decodes the result into out.
func (send adminCaller) call(ctx context.Context, op string, arg, out any) error {
	req := messages.AdminRequest{Op: op}
	if arg != nil {
		b, err := json.Marshal(arg)
		if err != nil {
			return err
		}
		req.Body = b
	}
	rep, err := send(ctx, req)
	if err != nil {
		return fmt.Errorf("task: %s: %w", op, err)
	}
	r, ok := rep.(messages.AdminReply)
	if !ok {
		return fmt.Errorf("task: %s: %w: reply of kind %s", op, ErrRemote, rep.Kind())
	}
	if err := outcomeErr(r.Outcome); err != nil {
		return fmt.Errorf("task: %s: %w", op, err)
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return fmt.Errorf("task: %s: %w: %w", op, ErrRemote, err)
		}
	}
	return nil
}

// remoteOps is the admin API over admin requests.
type remoteOps struct{ send adminCaller }

func (o remoteOps) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	return s, o.send.call(ctx, messages.AdminStats, nil, &s)
}

func (o remoteOps) ListTasks(ctx context.Context, f TaskFilter) (TaskPage, error) {
	var p TaskPage
	return p, o.send.call(ctx, messages.AdminTasks, f, &p)
}

func (o remoteOps) TaskDetail(ctx context.Context, id string) (TaskDetail, error) {
	var d TaskDetail
	return d, o.send.call(ctx, messages.AdminTask, messages.AdminTarget{ID: id}, &d)
}

func (o remoteOps) Cancel(ctx context.Context, id string) error {
	return o.send.call(ctx, messages.AdminCancel, messages.AdminTarget{ID: id}, nil)
}

func (o remoteOps) Retry(ctx context.Context, id string) error {
	return o.send.call(ctx, messages.AdminRetry, messages.AdminTarget{ID: id}, nil)
}

func (o remoteOps) Delete(ctx context.Context, id string) error {
	return o.send.call(ctx, messages.AdminDelete, messages.AdminTarget{ID: id}, nil)
}

func (o remoteOps) Workers(ctx context.Context) ([]WorkerView, error) {
	var ws []WorkerView
	return ws, o.send.call(ctx, messages.AdminWorkers, nil, &ws)
}

func (o remoteOps) Series(ctx context.Context, since time.Time) ([]Sample, error) {
	var t messages.AdminTarget
	if !since.IsZero() {
		t.Since = since.Format(time.RFC3339Nano)
	}
	var out []Sample
	return out, o.send.call(ctx, messages.AdminSeries, t, &out)
}

func (o remoteOps) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	var p EventPage
	return p, o.send.call(ctx, messages.AdminEvents, q, &p)
}

func (o remoteOps) Pause(ctx context.Context, typ string) error {
	return o.send.call(ctx, messages.AdminPause, messages.AdminTarget{Type: typ}, nil)
}

func (o remoteOps) Resume(ctx context.Context, typ string) error {
	return o.send.call(ctx, messages.AdminResume, messages.AdminTarget{Type: typ}, nil)
}

func (o remoteOps) Revoke(ctx context.Context, id string) error {
	return o.send.call(ctx, messages.AdminRevoke, messages.AdminTarget{ID: id}, nil)
}

func (c *Client) ops() remoteOps {
	return remoteOps{send: func(ctx context.Context, req messages.AdminRequest) (messages.Message, error) {
		return c.request(ctx, req)
	}}
}

// Stats is the manager's snapshot.
func (c *Client) Stats(ctx context.Context) (Stats, error) { return c.ops().Stats(ctx) }

// ListTasks lists the manager's tasks that match f (see
// [Manager.ListTasks]).
func (c *Client) ListTasks(ctx context.Context, f TaskFilter) (TaskPage, error) {
	return c.ops().ListTasks(ctx, f)
}

// TaskDetail is everything the manager knows of task id.
func (c *Client) TaskDetail(ctx context.Context, id string) (TaskDetail, error) {
	return c.ops().TaskDetail(ctx, id)
}

// Retry runs a failed or cancelled task again (see [Manager.Retry]).
func (c *Client) Retry(ctx context.Context, id string) error { return c.ops().Retry(ctx, id) }

// Delete forgets a final task (see [Manager.Delete]).
func (c *Client) Delete(ctx context.Context, id string) error { return c.ops().Delete(ctx, id) }

// Workers lists the workers the manager has known.
func (c *Client) Workers(ctx context.Context) ([]WorkerView, error) { return c.ops().Workers(ctx) }

// Series returns the manager's samples taken at or after since.
func (c *Client) Series(ctx context.Context, since time.Time) ([]Sample, error) {
	return c.ops().Series(ctx, since)
}

// Events reads the manager's event feed (see [Manager.Events]).
func (c *Client) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	return c.ops().Events(ctx, q)
}

// Pause stops the assignment of tasks of type typ (see [Manager.Pause]).
func (c *Client) Pause(ctx context.Context, typ string) error { return c.ops().Pause(ctx, typ) }

// Resume undoes Pause.
func (c *Client) Resume(ctx context.Context, typ string) error { return c.ops().Resume(ctx, typ) }

// Revoke takes a grant back (see [Manager.Revoke]); it needs the
// operator role.
func (c *Client) Revoke(ctx context.Context, id string) error { return c.ops().Revoke(ctx, id) }
