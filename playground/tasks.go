package playground

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ceylon-go/ceylon/task"
)

// handoverTimeout bounds handing ready tasks to the manager from a
// caller's goroutine.
const handoverTimeout = 30 * time.Second

// TaskOption adjusts [Playground.AddAndExecuteTask].
type TaskOption func(*taskOptions)

type taskOptions struct{ noWait bool }

// NoWait makes AddAndExecuteTask return as soon as the task is added; its
// result is kept, for [Playground.Wait] or [Playground.Result] later.
func NoWait() TaskOption { return func(o *taskOptions) { o.noWait = true } }

// AddAndExecuteTask adds one task and, unless [NoWait] is given, waits for
// it. The error is nil only for a task that succeeded; otherwise it wraps
// [ErrTaskFailed] (the result's ErrorMessage says why),
// [ErrDependencyFailed], [ErrChildFailed] or [ErrCancelled], and the
// result is still returned. With NoWait, the result holds only the task's
// ID.
func (p *Playground) AddAndExecuteTask(ctx context.Context, task Task, opts ...TaskOption) (Result, error) {
	var o taskOptions
	for _, opt := range opts {
		opt(&o)
	}
	ids, err := p.AddTasks(ctx, task)
	if err != nil {
		return Result{}, err
	}
	if o.noWait {
		return Result{TaskID: ids[0]}, nil
	}
	return p.Wait(ctx, ids[0])
}

// AddTasks adds a batch of tasks (a whole DAG, or more of one: tasks may
// depend on tasks added before) and returns their IDs, filled in where
// empty. It rejects the whole batch, adding nothing, if a task is invalid,
// an ID is taken, a dependency is unknown, or the dependencies form a
// cycle. Tasks whose dependencies are done start at once; it does not wait
// for any to finish.
func (p *Playground) AddTasks(ctx context.Context, tasks ...Task) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return nil, ErrNotStarted
	}
	prepared, err := p.prepare(tasks, nil)
	if err == nil {
		err = p.journalNodes(prepared, nil) // durable before it is acted on
	}
	if err != nil {
		p.mu.Unlock()
		return nil, err
	}
	ready := p.insert(prepared, nil)
	p.mu.Unlock()
	// The tasks are the playground's now (and journaled): handing them to
	// the manager is not abandoned because the caller stops waiting.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoverTimeout)
	defer cancel()
	p.submit(p.live(ready), func(b []task.Submission) error { return p.mgr.SubmitAll(hctx, b) })
	ids := make([]string, len(prepared))
	for i, t := range prepared {
		ids[i] = t.ID
	}
	return ids, nil
}

// Wait blocks until the task is final and returns its result, with an
// error as [Playground.AddAndExecuteTask] describes.
func (p *Playground) Wait(ctx context.Context, id string) (Result, error) {
	p.mu.Lock()
	n := p.nodes[id]
	if n == nil {
		p.mu.Unlock()
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownTask, id)
	}
	if n.state.final() {
		defer p.mu.Unlock()
		return *n.result, n.err
	}
	if n.done == nil { // made on the first wait: most tasks never need one
		n.done = make(chan struct{})
	}
	done := n.done
	p.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("playground: waiting for %q: %w", id, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return *n.result, n.err
}

// WaitAll waits for the given tasks (every task added so far, if none is
// given) and returns all their results by ID. The error joins the errors
// of the tasks that did not succeed (each names its task), or is the
// context's error if ctx ended first.
func (p *Playground) WaitAll(ctx context.Context, ids ...string) (map[string]Result, error) {
	if len(ids) == 0 {
		p.mu.Lock()
		for id := range p.nodes {
			ids = append(ids, id)
		}
		p.mu.Unlock()
		slices.Sort(ids)
	}
	out := make(map[string]Result, len(ids))
	var errs []error
	for _, id := range ids {
		r, err := p.Wait(ctx, id)
		if err != nil && ctx.Err() != nil {
			return out, err
		}
		out[id] = r
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// Result returns a final task's result without waiting. For a task that
// is not final yet it returns [ErrNotFinished]; otherwise the error is as
// [Playground.AddAndExecuteTask] describes.
func (p *Playground) Result(id string) (Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.nodes[id]
	switch {
	case n == nil:
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownTask, id)
	case !n.state.final():
		return Result{}, fmt.Errorf("%w: %q", ErrNotFinished, id)
	}
	return *n.result, n.err
}

// TaskStatus is a snapshot of one task.
type TaskStatus struct {
	Task   Task
	Status task.Status
	// Attempts, Worker and their timings come from the task manager once
	// the task has been handed to it.
	Attempts   []task.AttemptInfo
	Worker     string
	AddedAt    time.Time
	FinishedAt time.Time
	// WaitingOn lists the dependencies (or, for a parent, the child tasks)
	// not finished yet.
	WaitingOn []string
	Result    *Result
	Err       error
}

// Task returns the status of a task: waiting on dependencies, pending,
// assigned, running, completed, failed or cancelled, with its attempts.
func (p *Playground) Task(ctx context.Context, id string) (TaskStatus, error) {
	p.mu.Lock()
	n := p.nodes[id]
	if n == nil {
		p.mu.Unlock()
		return TaskStatus{}, fmt.Errorf("%w: %q", ErrUnknownTask, id)
	}
	st := TaskStatus{Task: n.task, AddedAt: n.addedAt, FinishedAt: n.finishedAt, Err: n.err}
	if n.result != nil {
		r := *n.result
		st.Result = &r
	}
	state := n.state
	if len(n.attempts) > 0 {
		st.Attempts = slices.Clone(n.attempts)
		st.Worker = n.attempts[len(n.attempts)-1].Worker
	}
	switch state {
	case stateWaiting:
		st.Status = task.StatusWaiting
		for _, d := range n.deps {
			if !d.state.final() {
				st.WaitingOn = append(st.WaitingOn, d.task.ID)
			}
		}
	case stateChildren:
		st.Status = task.StatusWaiting
		for _, c := range n.children {
			if !c.state.final() {
				st.WaitingOn = append(st.WaitingOn, c.task.ID)
			}
		}
	case stateCompleted:
		st.Status = task.StatusCompleted
	case stateFailed:
		st.Status = task.StatusFailed
	case stateCancelled:
		st.Status = task.StatusCancelled
	case stateQueued:
		st.Status = task.StatusPending
	}
	p.mu.Unlock()
	if state != stateQueued {
		return st, nil // waiting, or final (the manager has forgotten it)
	}
	info, err := p.mgr.Task(ctx, id)
	switch {
	case errors.Is(err, task.ErrUnknownTask):
		// Not handed over yet (queued), or failed before it ran.
	case err != nil:
		return st, err
	default:
		st.Attempts, st.Worker, st.Status = info.Attempts, info.Worker, info.Status
	}
	return st, nil
}

// Cancel cancels a task that is not final: a waiting one never runs, a
// running one is told to stop. Its dependents fail with
// [ErrDependencyFailed].
func (p *Playground) Cancel(ctx context.Context, id string) error {
	p.mu.Lock()
	n := p.nodes[id]
	if n == nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownTask, id)
	}
	if n.state == stateWaiting || n.state == stateChildren {
		if err := p.journalCancel(id, "by request"); err != nil {
			p.mu.Unlock()
			return err
		}
		p.fail(n, fmt.Errorf("%w: %q: by request", ErrCancelled, id), nil)
		p.mu.Unlock()
		return nil
	}
	queued := n.state == stateQueued
	p.mu.Unlock()
	if !queued {
		return nil
	}
	err := p.mgr.Cancel(ctx, id)
	if errors.Is(err, task.ErrUnknownTask) {
		// Not handed to the manager yet: fail it here, and it never will
		// be.
		p.mu.Lock()
		defer p.mu.Unlock()
		if !n.state.final() {
			if err := p.journalCancel(id, "by request"); err != nil {
				return err
			}
			p.fail(n, fmt.Errorf("%w: %q: by request", ErrCancelled, id), nil)
		}
		return nil
	}
	return err
}

// Progress is how far the playground's tasks have got.
type Progress struct {
	Total, Finished, Failed int
}

// Progress returns the number of tasks added, finished and failed.
func (p *Playground) Progress() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Progress{Total: len(p.nodes), Finished: p.finished, Failed: p.failed}
}

// Report is the task manager's report (per-worker statistics and totals).
func (p *Playground) Report(ctx context.Context) (task.Report, error) {
	return p.mgr.Report(ctx)
}
