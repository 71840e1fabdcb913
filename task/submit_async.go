package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
)

// SubmitFuture is the pending answer to [Manager.SubmitAsync]: it
// resolves once the task is accepted (durable, with a journal) or refused.
type SubmitFuture struct {
	id   string
	done chan struct{}
	err  error
}

// TaskID is the submitted task's ID.
func (f *SubmitFuture) TaskID() string { return f.id }

// Done is closed once the submission is answered.
func (f *SubmitFuture) Done() <-chan struct{} { return f.done }

// Err is the answer: nil once the task is accepted, the reason it was
// refused, or agent.ErrStopped. Call it after Done is closed (it returns
// nil before).
func (f *SubmitFuture) Err() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// Wait waits for the answer, or for ctx.
func (f *SubmitFuture) Wait(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// defaultMaxPendingSubmits bounds unanswered SubmitAsync calls.
const defaultMaxPendingSubmits = 4096

// WithMaxPendingSubmits bounds the submissions [Manager.SubmitAsync] has
// in flight, not answered yet (default 4,096): past it, SubmitAsync waits,
// so a producer faster than the manager is held back rather than queueing
// without end.
func WithMaxPendingSubmits(n int) ManagerOption {
	return func(c *managerConfig) error {
		if n < 1 {
			return errors.New("task: max pending submits must be at least 1")
		}
		c.maxPending = n
		return nil
	}
}

// SubmitAsync is [Manager.Submit] without waiting for the answer: it
// hands the task to the manager and returns a future at once, so one
// goroutine can pipeline submissions and the journal commits many in one
// write. The promise is the same: the future resolves without error only
// once the task is accepted (and durable, with a journal). Submissions
// from one goroutine are accepted in the order they were made. ctx bounds
// only the wait for room ([WithMaxPendingSubmits]).
func (m *Manager) SubmitAsync(ctx context.Context, task messages.Task, opts ...SubmitOption) (*SubmitFuture, error) {
	s := Submission{Task: task}
	for _, o := range opts {
		o(&s)
	}
	select {
	case m.pending <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("task: submit %q: waiting for room: %w", task.ID, ctx.Err())
	case <-m.agent.Done():
		return nil, agent.ErrStopped
	}
	f := &SubmitFuture{id: task.ID, done: make(chan struct{})}
	resolve := func(err error) {
		f.err = err
		close(f.done)
		<-m.pending
	}
	if err := m.agent.Post(func() {
		if err := m.accept([]Submission{s}); err != nil {
			resolve(err)
			return
		}
		m.afterCommit(resolve)
	}); err != nil {
		resolve(err)
	}
	return f, nil
}
