package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// Task manager errors.
var (
	ErrDuplicateTask          = errors.New("agent: duplicate task id")
	ErrUnknownTask            = errors.New("agent: unknown task")
	ErrUnknownProcessor       = errors.New("agent: no such processor")
	ErrNoEligibleWorker       = errors.New("agent: no eligible worker")
	ErrTooManyLost            = errors.New("agent: task lost with its worker too many times")
	ErrUnresolvedDependencies = errors.New("agent: task has dependencies; submit it through a playground or with DependenciesMet")
	ErrTaskTimeout            = errors.New("agent: attempt timed out")
	ErrCancelled              = errors.New("agent: task cancelled")
	ErrWorkersMissing         = errors.New("agent: workers missing")
)

// TaskManager is the admin agent that hands tasks to workers: it matches
// each task to an eligible worker (type, capabilities, free capacity,
// skill), assigns it with an ack and a lease, retries failed attempts with
// backoff, requeues the tasks of lost workers, and keeps every result.
//
// All its state lives in its agent's actor; its methods are safe for
// concurrent use.
type TaskManager struct {
	agent *Agent
	cfg   managerConfig

	// Owned by the actor.
	tasks       map[string]*taskState
	inflight    map[string]*taskState
	workers     map[peer.ID]*workerState
	workerList  []*workerState // sorted by name, for deterministic matching
	priorities  map[string]int // highest handler priority per type, from workerList
	freeWorkers []*workerState // scratch for schedule
	history     map[string]WorkerStats
	ready       readyQueues
	seq         uint64
	dirty       bool
	totals      totals
	workersChg  chan struct{} // closed and replaced when the worker set changes
	metrics     *managerMetrics
	recent      recentRing
	started     time.Time
	submitFn    func([]Submission) error // m.accept, given to the hook

	life       sync.Mutex // serialises Start with the end of Stop
	tickerStop chan struct{}
	stopTicker sync.Once
	tickerDone sync.WaitGroup

	// Group commit (owned by the actor): records and the effects that wait
	// for them, flushed once per pass through the mailbox.
	jbuf         []*taskState // changed since the last commit
	jdelete      []string     // expired task IDs to delete at the next commit
	expiring     []*taskState // finished tasks, oldest first (with retention)
	jafter       []func(error)
	jflushQd     bool
	jwriting     bool           // a commit is being written
	jwg          sync.WaitGroup // the journal writer goroutine
	journalStats struct {
		commits, records int
		time             time.Duration
	}
}

type totals struct {
	submitted, succeeded, failed, cancelled, retried, requeued, late int
	execTotal, latencyTotal                                          time.Duration
}

// NewTaskManager creates a task manager. Start it with [TaskManager.Start].
func NewTaskManager(opts ...ManagerOption) (*TaskManager, error) {
	cfg := defaultManagerConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	a, err := New(cfg.name, append(cfg.agentOpts, AsAdmin(), WithRole(ManagerRole))...)
	if err != nil {
		return nil, err
	}
	m := &TaskManager{
		agent:      a,
		cfg:        cfg,
		tasks:      map[string]*taskState{},
		inflight:   map[string]*taskState{},
		workers:    map[peer.ID]*workerState{},
		history:    map[string]WorkerStats{},
		priorities: map[string]int{},
		workersChg: make(chan struct{}),
		tickerStop: make(chan struct{}),
	}
	m.submitFn = m.accept
	m.metrics = newManagerMetrics(m)
	On(a, m.onWorkerInfo)
	On(a, m.onAck)
	On(a, m.onResult)
	On(a, m.onHeartbeat)
	a.OnConnect(m.onConnect)
	a.OnDisconnect(m.onDisconnect)
	return m, nil
}

// Agent returns the manager's agent (addresses, stats, extra handlers).
func (m *TaskManager) Agent() *Agent { return m.agent }

// Addrs returns the addresses workers join through.
func (m *TaskManager) Addrs() []string { return m.agent.Addrs() }

// Start starts the manager's agent and its lease checker.
func (m *TaskManager) Start(ctx context.Context) error {
	m.life.Lock()
	defer m.life.Unlock()
	switch m.agent.state.Load() {
	case stateStopped:
		return ErrStopped
	case stateStarting, stateStarted:
		return ErrAlreadyStarted
	}
	if m.cfg.journal != nil {
		if err := m.recover(); err != nil {
			return err
		}
	}
	m.started = time.Now()
	if err := m.agent.Start(ctx); err != nil {
		return err
	}
	m.agent.exec(func() {
		if m.ready.n > 0 { // resumed from the journal
			m.markDirty()
		}
	})
	m.tickerDone.Add(1)
	go func() {
		defer m.tickerDone.Done()
		t := time.NewTicker(m.cfg.tick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				m.agent.exec(m.sweep)
			case <-m.tickerStop:
				return
			}
		}
	}()
	return nil
}

// Stop stops the manager. Tasks still running stay with their workers,
// which stop taking work when they see the manager leave. A Stop during
// Start cancels it.
func (m *TaskManager) Stop() error {
	err := m.agent.Stop() // first: it cancels a Start in progress
	m.life.Lock()
	defer m.life.Unlock()
	m.stopTicker.Do(func() { close(m.tickerStop) })
	m.tickerDone.Wait()
	m.jwg.Wait() // a commit in flight finishes before the journal can close
	return err
}

// SubmitOption adjusts one submission.
type SubmitOption func(*Submission)

// DependenciesMet says the task's dependencies have completed and gives
// their outputs (by task ID) to pass to its processor. The playground uses
// it; a task with dependencies submitted without it is rejected.
func DependenciesMet(inputs map[string][]byte) SubmitOption {
	return func(s *Submission) { s.Inputs, s.DepsMet = inputs, true }
}

// Submit validates a task and queues it. It returns once the task is
// accepted (or rejected with a named error), not when it has run; use
// [TaskManager.Wait] or [TaskManager.Run] for the result. A task no
// connected worker can take waits until one joins.
func (m *TaskManager) Submit(ctx context.Context, task messages.Task, opts ...SubmitOption) error {
	s := Submission{Task: task}
	for _, o := range opts {
		o(&s)
	}
	return m.submit(ctx, []Submission{s})
}

// submit accepts a batch and answers once it is durable.
func (m *TaskManager) submit(ctx context.Context, batch []Submission) error {
	_, err := callDeferred(ctx, m.agent, func(reply func(struct{}, error)) {
		if err := m.accept(batch); err != nil {
			reply(struct{}{}, err)
			return
		}
		m.afterCommit(func(err error) { reply(struct{}{}, err) })
	})
	return err
}

// Submission is one task of a [TaskManager.SubmitAll] batch.
type Submission struct {
	Task messages.Task
	// Inputs, when DepsMet, are the outputs of the task's dependencies.
	Inputs  map[string][]byte
	DepsMet bool
}

// SubmitAll validates and queues a batch atomically: if any task is
// rejected, none is queued.
func (m *TaskManager) SubmitAll(ctx context.Context, batch []Submission) error {
	return m.submit(ctx, batch)
}

// Wait blocks until the task is final and returns its result (Success is
// false for a failed or cancelled task). If ctx ends first, the error says
// why the task is not done: for a task no worker can take it wraps
// [ErrNoEligibleWorker]. The task itself is not affected.
func (m *TaskManager) Wait(ctx context.Context, id string) (messages.TaskResult, error) {
	t, err := call(ctx, m.agent, func() (*taskState, error) {
		t := m.tasks[id]
		if t == nil {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTask, id)
		}
		if t.done == nil {
			t.done = make(chan struct{})
			if t.settled {
				close(t.done)
			}
		}
		return t, nil
	})
	if err != nil {
		return messages.TaskResult{}, err
	}
	return m.await(ctx, t)
}

// await waits on a task's completion channel (t.result is written before
// the channel is closed, and never again).
func (m *TaskManager) await(ctx context.Context, t *taskState) (messages.TaskResult, error) {
	select {
	case <-t.done:
		return *t.result, nil
	case <-ctx.Done():
		return messages.TaskResult{}, m.whyNotDone(t.task.ID, ctx.Err())
	case <-m.agent.Done():
		return messages.TaskResult{}, ErrStopped
	}
}

// whyNotDone explains a Wait that ran out of time.
func (m *TaskManager) whyNotDone(id string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	msg, _ := call(ctx, m.agent, func() (error, error) {
		t := m.tasks[id]
		if t == nil || t.status != StatusPending {
			return nil, nil
		}
		for _, w := range m.workerList {
			skilled := m.cfg.skill != SkillStrict || t.task.Difficulty == 0 || w.info.Skill >= t.task.Difficulty
			if w.alive && w.runsTask(&t.task) && skilled {
				return nil, nil
			}
		}
		return fmt.Errorf("%w for task %q (type %q, capabilities %v, difficulty %d)",
			ErrNoEligibleWorker, id, t.task.Type, t.task.Capabilities, t.task.Difficulty), nil
	})
	if msg != nil {
		return fmt.Errorf("%w: %w", msg, cause)
	}
	return fmt.Errorf("agent: task %q not done: %w", id, cause)
}

// Run submits a task and waits for its result.
func (m *TaskManager) Run(ctx context.Context, task messages.Task, opts ...SubmitOption) (messages.TaskResult, error) {
	s := Submission{Task: task}
	for _, o := range opts {
		o(&s)
	}
	// One trip into the actor: accept, and get the completion channel.
	t, err := callDeferred(ctx, m.agent, func(reply func(*taskState, error)) {
		if err := m.accept([]Submission{s}); err != nil {
			reply(nil, err)
			return
		}
		t := m.tasks[task.ID]
		t.done = make(chan struct{})
		m.afterCommit(func(err error) { reply(t, err) })
	})
	if err != nil {
		return messages.TaskResult{}, err
	}
	return m.await(ctx, t)
}

// Task returns a snapshot of a task's state.
func (m *TaskManager) Task(ctx context.Context, id string) (TaskInfo, error) {
	return call(ctx, m.agent, func() (TaskInfo, error) {
		t := m.tasks[id]
		if t == nil {
			return TaskInfo{}, fmt.Errorf("%w: %q", ErrUnknownTask, id)
		}
		return t.info(), nil
	})
}

// Tasks returns a snapshot of every task the manager knows, in submission
// order.
func (m *TaskManager) Tasks(ctx context.Context) ([]TaskInfo, error) {
	return call(ctx, m.agent, func() ([]TaskInfo, error) {
		ts := make([]*taskState, 0, len(m.tasks))
		for _, t := range m.tasks {
			ts = append(ts, t)
		}
		slices.SortFunc(ts, func(a, b *taskState) int { return cmp.Compare(a.seq, b.seq) })
		out := make([]TaskInfo, len(ts))
		for i, t := range ts {
			out[i] = t.info()
		}
		return out, nil
	})
}

// Cancel stops a task: a queued task is dropped, a running one is told to
// stop. The task ends [StatusCancelled]. Cancelling a final task does
// nothing.
func (m *TaskManager) Cancel(ctx context.Context, id string) error {
	_, err := call(ctx, m.agent, func() (struct{}, error) {
		t := m.tasks[id]
		if t == nil {
			return struct{}{}, fmt.Errorf("%w: %q", ErrUnknownTask, id)
		}
		m.cancel(t, "cancelled by request")
		return struct{}{}, nil
	})
	return err
}

// WaitForWorkers blocks until n workers have registered (n <= 0 returns at
// once).
func (m *TaskManager) WaitForWorkers(ctx context.Context, n int) error {
	for {
		count, changed, err := m.workerCount(ctx, true)
		if err != nil {
			return err
		}
		if count >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %d of %d workers joined: %w", ErrWorkersMissing, count, n, ctx.Err())
		case <-changed:
		}
	}
}

// WaitForWorkerNames blocks until workers with all the given names have
// registered. If ctx ends first, the error names the missing ones.
func (m *TaskManager) WaitForWorkerNames(ctx context.Context, names ...string) error {
	type out struct {
		missing []string
		ch      chan struct{}
	}
	for {
		r, err := call(ctx, m.agent, func() (out, error) {
			have := map[string]bool{}
			for _, w := range m.workerList {
				if w.alive {
					have[w.info.Name] = true
				}
			}
			var missing []string
			for _, n := range names {
				if !have[n] {
					missing = append(missing, n)
				}
			}
			return out{missing, m.workersChg}, nil
		})
		if err != nil {
			return err
		}
		if len(r.missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v did not join: %w", ErrWorkersMissing, r.missing, ctx.Err())
		case <-r.ch:
		}
	}
}

// Shutdown tells every worker to finish its running tasks and stop, and
// waits (until ctx ends) for them to leave.
func (m *TaskManager) Shutdown(ctx context.Context, reason string) error {
	workers, err := call(ctx, m.agent, func() ([]peer.ID, error) {
		var out []peer.ID
		for pid := range m.workers {
			out = append(out, pid)
		}
		return out, nil
	})
	if err != nil {
		return err
	}
	for _, pid := range workers {
		if err := m.agent.send(ctx, pid, messages.Shutdown{Reason: reason}, 0); err != nil {
			m.agent.log.Warn("shutdown not delivered", "worker", pid, "err", err)
		}
	}
	for {
		n, changed, err := m.workerCount(ctx, false)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: %d workers still connected after shutdown: %w", n, ctx.Err())
		case <-changed:
		}
	}
}

func (w *workerState) runsTask(t *messages.Task) bool {
	if _, ok := w.types[t.Type]; !ok {
		return false
	}
	for _, c := range t.Capabilities {
		if !w.caps[c] {
			return false
		}
	}
	return true
}

// workerCount returns how many workers are registered (alive only, or
// all) and a channel closed at the next change.
func (m *TaskManager) workerCount(ctx context.Context, aliveOnly bool) (int, <-chan struct{}, error) {
	type out struct {
		n  int
		ch chan struct{}
	}
	r, err := call(ctx, m.agent, func() (out, error) {
		n := len(m.workers)
		if aliveOnly {
			n = m.aliveWorkers()
		}
		return out{n, m.workersChg}, nil
	})
	return r.n, r.ch, err
}

// workersChanged wakes WaitForWorkers and Shutdown. Only called in the
// actor.
func (m *TaskManager) workersChanged() {
	close(m.workersChg)
	m.workersChg = make(chan struct{})
}

func (m *TaskManager) aliveWorkers() int {
	n := 0
	for _, w := range m.workerList {
		if w.alive {
			n++
		}
	}
	return n
}
