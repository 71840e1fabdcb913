package playground

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/agent"
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
// for any to finish. With a journal it returns once the batch is durable.
func (p *Playground) AddTasks(ctx context.Context, tasks ...Task) ([]string, error) {
	return p.addTasks(ctx, tasks, false)
}

// addTasks is AddTasks; again (a remote producer's batch, which may be
// sent twice) answers a batch whose every task is known already as added.
func (p *Playground) addTasks(ctx context.Context, tasks []Task, again bool) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !p.running.Load() {
		return nil, p.notRunning()
	}
	var mu sync.Mutex // ids is written in the actor, read here
	var ids []string
	// Once accepted, the batch is the playground's: its commit is not
	// abandoned because the caller stops waiting.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoverTimeout)
	defer cancel()
	err := p.mgr.Update(hctx, func(tx *task.Tx) error {
		if again && p.holds(tasks) {
			mu.Lock()
			defer mu.Unlock()
			ids = make([]string, len(tasks)) // held already: answered once durable, as the first time
			for i, t := range tasks {
				ids[i] = t.ID
			}
			return nil
		}
		prepared, err := p.prepare(tasks, nil)
		if err == nil {
			err = p.journalNodes(tx, prepared, nil) // rides the same commit
		}
		if err != nil {
			return err
		}
		p.submit(tx, p.insert(prepared, nil))
		mu.Lock()
		defer mu.Unlock()
		ids = make([]string, len(prepared))
		for i, t := range prepared {
			ids[i] = t.ID
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil && ids != nil { // added, but its commit did not answer in time
		return ids, fmt.Errorf("playground: tasks added, not confirmed durable: %w", err)
	}
	return ids, err
}

// notRunning is the error of a call while the playground does not run.
func (p *Playground) notRunning() error {
	select {
	case <-p.mgr.Agent().Done():
		return ErrStopped
	default:
		return ErrNotStarted
	}
}

// view runs fn on the graph: in the manager's actor while it runs (tx is
// then a read-only view of the manager), or, once the manager has stopped,
// under p.offline with a nil tx. A standby among replicated managers holds
// no graph: it answers task.ErrNotLeader, naming the leader.
func (p *Playground) view(ctx context.Context, fn func(tx *task.Tx) error) error {
	err := p.mgr.View(ctx, func(tx *task.Tx) error {
		if err := tx.Standby(); err != nil {
			return err
		}
		return fn(tx)
	})
	if !errors.Is(err, agent.ErrStopped) {
		return err
	}
	select {
	case <-p.mgr.Agent().Done(): // the actor is gone: the graph is nobody else's
	case <-ctx.Done():
		return ctx.Err()
	}
	p.offline.Lock()
	defer p.offline.Unlock()
	return fn(nil)
}

// Wait blocks until the task is final and returns its result, with an
// error as [Playground.AddAndExecuteTask] describes. It fails with
// [ErrStopped] if the playground stops first.
func (p *Playground) Wait(ctx context.Context, id string) (Result, error) {
	var n *node
	var done chan struct{}
	err := p.view(ctx, func(*task.Tx) error {
		n = p.nodes[id]
		if n == nil {
			return fmt.Errorf("%w: %q", ErrUnknownTask, id)
		}
		if !n.state.final() {
			if n.done == nil { // made on the first wait: most tasks never need one
				n.done = make(chan struct{})
			}
			done = n.done
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return Result{}, fmt.Errorf("playground: waiting for %q: %w", id, ctx.Err())
		case <-p.mgr.Agent().Done():
			select {
			case <-done:
			default:
				return Result{}, fmt.Errorf("%w while %q was not finished", ErrStopped, id)
			}
		}
	}
	return *n.result, n.err // final: the result no longer changes
}

// WaitAll waits for the given tasks (every task added so far, if none is
// given) and returns all their results by ID. The error joins the errors
// of the tasks that did not succeed (each names its task), or is the
// context's error if ctx ended first.
func (p *Playground) WaitAll(ctx context.Context, ids ...string) (map[string]Result, error) {
	if len(ids) == 0 {
		if err := p.view(ctx, func(*task.Tx) error {
			for id := range p.nodes {
				ids = append(ids, id)
			}
			return nil
		}); err != nil {
			return nil, err
		}
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
	var r Result
	var rerr error
	err := p.view(context.Background(), func(*task.Tx) error {
		n := p.nodes[id]
		switch {
		case n == nil:
			return fmt.Errorf("%w: %q", ErrUnknownTask, id)
		case !n.state.final():
			return fmt.Errorf("%w: %q", ErrNotFinished, id)
		}
		r, rerr = *n.result, n.err
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return r, rerr
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
// assigned, running, completed, failed or cancelled, with its attempts:
// one consistent snapshot of the graph and of the manager.
func (p *Playground) Task(ctx context.Context, id string) (TaskStatus, error) {
	var st TaskStatus
	err := p.view(ctx, func(tx *task.Tx) error {
		n := p.nodes[id]
		if n == nil {
			return fmt.Errorf("%w: %q", ErrUnknownTask, id)
		}
		st = n.status()
		if n.state == stateQueued && tx != nil {
			if info, ok := tx.Task(id); ok {
				st.Attempts, st.Worker, st.Status = info.Attempts, info.Worker, info.Status
			}
		}
		return nil
	})
	return st, err
}

// status is n's part of a TaskStatus.
func (n *node) status() TaskStatus {
	st := TaskStatus{Task: n.task, AddedAt: n.addedAt, FinishedAt: n.finishedAt, Err: n.err}
	if n.result != nil {
		r := *n.result
		st.Result = &r
	}
	if len(n.attempts) > 0 {
		st.Attempts = slices.Clone(n.attempts)
		st.Worker = n.attempts[len(n.attempts)-1].Worker
	}
	switch n.state {
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
	return st
}

// Cancel cancels a task that is not final: a waiting one never runs, a
// running one is told to stop. Its dependents fail with
// [ErrDependencyFailed]. With a journal it returns once that is durable.
func (p *Playground) Cancel(ctx context.Context, id string) error {
	err := p.mgr.Update(ctx, func(tx *task.Tx) error {
		n := p.nodes[id]
		switch {
		case n == nil:
			return fmt.Errorf("%w: %q", ErrUnknownTask, id)
		case n.state.final():
			return nil
		case n.state == stateQueued:
			if _, ok := tx.Task(id); ok {
				return tx.Cancel(id, "cancelled by request") // the hook fails it here
			}
		}
		// Waiting on dependencies or children (or not the manager's): it
		// never runs, once that is durable.
		if err := p.journalCancel(tx, id, "by request"); err != nil {
			return err
		}
		return tx.AfterCommit(func(tx *task.Tx, err error) {
			switch {
			case err != nil || n.state.final() || p.nodes[id] != n: // or the graph was rebuilt meanwhile
			case n.state == stateQueued: // its dependencies finished meanwhile
				if _, ok := tx.Task(id); ok {
					_ = tx.Cancel(id, "cancelled by request")
					return
				}
				fallthrough
			default:
				p.fail(n, fmt.Errorf("%w: %q: by request", ErrCancelled, id), nil)
			}
		})
	})
	return err
}

// Progress is how far the playground's tasks have got.
type Progress struct {
	Total, Finished, Failed int
}

// Progress returns the number of tasks added, finished and failed.
func (p *Playground) Progress() Progress {
	var pr Progress
	_ = p.view(context.Background(), func(*task.Tx) error {
		pr = Progress{Total: len(p.nodes), Finished: p.finished, Failed: p.failed}
		return nil
	})
	return pr
}

// Stats is the task manager's snapshot (totals, per-worker statistics,
// the last tasks); it prints as a report table.
func (p *Playground) Stats(ctx context.Context) (task.Stats, error) {
	return p.mgr.Stats(ctx)
}
