package task

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ceylon-go/ceylon/agent"
)

// Failed lists the tasks that failed for good or were cancelled and are
// still kept (the dead letters: see WithRetention), oldest first.
func (m *Manager) Failed(ctx context.Context) ([]Info, error) {
	return agent.Call(ctx, m.agent, func() ([]Info, error) {
		var ts []*taskState
		for _, t := range m.tasks {
			if t.settled && (t.status == StatusFailed || t.status == StatusCancelled) {
				ts = append(ts, t)
			}
		}
		slices.SortFunc(ts, func(a, b *taskState) int { return a.finishedAt.Compare(b.finishedAt) })
		out := make([]Info, len(ts))
		for i, t := range ts {
			out[i] = t.info()
		}
		return out, nil
	})
}

// Retry runs a failed or cancelled task again, as a new attempt with its
// retries renewed (its attempt history kept); it counts as a new
// submission. It is journaled and returns once that is durable.
func (m *Manager) Retry(ctx context.Context, id string) error {
	return m.durably(ctx, func() error { return m.retry(id) })
}

// Delete forgets a final task, in memory and in the journal; its ID is
// free again. It returns once that is durable.
func (m *Manager) Delete(ctx context.Context, id string) error {
	return m.durably(ctx, func() error { return m.delete(id) })
}

// durably runs act in the actor and returns its error, or, when it
// changed something, once that is durable.
func (m *Manager) durably(ctx context.Context, act func() error) error {
	_, err := agent.CallDeferred(ctx, m.agent, func(reply func(struct{}, error)) {
		if err := act(); err != nil {
			reply(struct{}{}, err)
			return
		}
		m.afterCommit(func(err error) { reply(struct{}{}, err) })
	})
	return err
}

// final returns the final task id, or why it cannot be acted on as one.
func (m *Manager) final(id string, failedOnly bool) (*taskState, error) {
	t := m.tasks[id]
	switch {
	case !m.leading:
		return nil, m.notLeader()
	case t == nil:
		return nil, fmt.Errorf("%w: %q", ErrUnknownTask, id)
	case !t.settled || failedOnly && t.status != StatusFailed && t.status != StatusCancelled:
		return nil, fmt.Errorf("%w: %q is %v", ErrNotFinal, id, t.status)
	}
	return t, nil
}

// retry requeues a failed or cancelled task. Only called in the actor.
func (m *Manager) retry(id string) error {
	t, err := m.final(id, true)
	if err != nil {
		return err
	}
	m.unkeep(t)
	t.status, t.settled, t.result, t.done = StatusPending, false, nil, nil
	t.retries, t.lost, t.finishedAt, t.submittedAt = 0, 0, time.Time{}, time.Now()
	m.totals.submitted.Add(1)
	m.journalTask(t)
	m.ready.push(t)
	m.emit(Event{Type: EventSubmitted, TaskID: id})
	m.markDirty()
	return nil
}

// delete forgets a final task. Only called in the actor.
func (m *Manager) delete(id string) error {
	t, err := m.final(id, false)
	if err != nil {
		return err
	}
	m.unkeep(t)
	delete(m.tasks, id)
	m.recordGone(t)
	if m.cfg.journal != nil {
		m.jdelete = append(m.jdelete, journalDelete{id: id, seq: t.seq})
		m.queueFlush()
	}
	return nil
}
