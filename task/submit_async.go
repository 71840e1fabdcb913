package task

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
)

// SubmitFuture is the pending answer to [Manager.SubmitAsync]: it
// resolves once the task is accepted (durable, with a journal) or refused.
type SubmitFuture struct {
	id   string
	done chan struct{}
	once sync.Once
	err  error
	// The submission on its way into the manager's actor (one object per
	// SubmitAsync, not one per closure).
	m   *Manager
	sub Submission
}

// resolve answers f once; later answers are ignored.
func (f *SubmitFuture) resolve(err error) bool {
	first := false
	f.once.Do(func() {
		f.err = err
		close(f.done)
		first = true
	})
	return first
}

// TaskID is the submitted task's ID.
func (f *SubmitFuture) TaskID() string { return f.id }

// Done is closed once the submission is answered.
func (f *SubmitFuture) Done() <-chan struct{} { return f.done }

// Err is the answer: nil once the task is accepted, the reason it was
// refused, or agent.ErrStopped (the manager stopped first: the task may or
// may not have been accepted; with a journal, a restarted manager knows). Call it after Done is closed (it returns
// nil before).
func (f *SubmitFuture) Err() error {
	select {
	case <-f.done:
		return f.err
	default:
		return nil
	}
}

// Wait waits for the answer, or for ctx. A future still open when the
// manager stops is answered agent.ErrStopped.
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
	// The submission is built in its future (one allocation for both).
	f := &SubmitFuture{id: task.ID, m: m, sub: Submission{Task: task}}
	for _, o := range opts {
		o(&f.sub)
	}
	if f.sub.Trace == "" {
		f.sub.Trace = traceparentOf(ctx)
	}
	select {
	case m.pending <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("task: submit %q: waiting for room: %w", task.ID, ctx.Err())
	case <-m.agent.Done():
		return nil, agent.ErrStopped
	}
	f.done = make(chan struct{})
	m.futuresMu.Lock()
	m.futures[f] = struct{}{}
	m.futuresMu.Unlock()
	if err := m.agent.Post(f.accept); err != nil {
		f.settle(err)
	}
	return f, nil
}

// accept hands the submission to the manager, in its actor.
func (f *SubmitFuture) accept() {
	m, s := f.m, f.sub
	f.sub = Submission{} // the future outlives the submission: let its task go
	switch err := m.accept([]Submission{s}); {
	case err != nil:
		f.settle(err)
	case m.cfg.journal == nil:
		f.settle(nil)
	default:
		m.afterCommit(f.settle)
	}
}

// settle resolves f once and gives its place back.
func (f *SubmitFuture) settle(err error) {
	if f.resolve(err) {
		m := f.m
		m.futuresMu.Lock()
		delete(m.futures, f)
		m.futuresMu.Unlock()
		<-m.pending
	}
}
