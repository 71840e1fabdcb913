package task

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"go.opentelemetry.io/otel/trace"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// Manager is the admin agent that hands tasks to workers: it matches
// each task to an eligible worker (type, capabilities, free capacity,
// skill), assigns it with an ack and a lease, retries failed attempts with
// backoff, requeues the tasks of lost workers, and keeps the results
// ([WithRetention], [WithKeepFinished]).
//
// All its state lives in its agent's actor; its methods are safe for
// concurrent use.
type Manager struct {
	agent *agent.Agent
	cfg   managerConfig

	rep        atomic.Pointer[replica] // WithReplication's Raft group, once started
	loadGauges *loadGauges             // the scaling signal's metrics (scaleLoop's)
	scaleWG    sync.WaitGroup          // the scaling loop

	// Owned by the actor.
	leading       bool                // assigns and answers (always, without replication)
	orphans       map[string][]orphan // attempts in flight whose worker is away, by worker name, until it comes back
	epoch         uint64              // the leadership epoch (0 without replication): see leaderEpoch
	leadTerm      uint64              // the Raft term of the last lead taken
	leadGen       uint64              // how many times the lead was taken again in that term (a resync)
	remoteWaits   int                 // remote producers' waits held (see producer.go)
	remoteSubmits uint64              // tasks submitted by remote producers
	tasks         map[string]*taskState
	inflight      map[string]*taskState
	workers       map[peer.ID]*workerState
	workerList    []*workerState // sorted by name, for deterministic matching
	priorities    map[string]int // highest handler priority per type, from workerList
	freeWorkers   []*workerState // scratch for schedule
	history       map[string]WorkerStats
	ready         readyQueues
	later         scheduledHeap         // StatusScheduled tasks, soonest first
	unique        map[string]uniqueHold // Unique keys held, by key
	uniqueSwept   time.Time
	periodicNew   bool            // a periodic task began counting: journal it at the next sweep
	holdsDirty    bool            // the Unique holds whose tasks' records are gone changed (unique.go)
	retryLater    []*taskState    // restored retrying tasks, by the time they are due again
	paused        map[string]bool // task types not assigned (Pause)
	seq           uint64
	dirty         bool
	totals        totals
	workersChg    chan struct{} // closed and replaced when the worker set changes
	metrics       *managerMetrics
	recent        recentRing
	workerLog     workerLog  // workers' comings and goings, for Workers
	feed          eventFeed  // the last events, for Events
	series        seriesRing // counters over time, for Series
	auth          authState  // the grants peers presented, the revocations
	started       time.Time

	pending     chan struct{} // a slot per unanswered SubmitAsync
	futuresMu   sync.Mutex
	futures     map[*SubmitFuture]struct{} // the unanswered SubmitAsync calls
	life        sync.Mutex                 // serialises Start with the end of Stop
	startCalled bool
	stopTicker  func() // stops the lease checker

	// Group commit (owned by the actor): records and the effects that wait
	// for them, flushed once per pass through the mailbox.
	jbuf         []*taskState    // changed since the last commit
	jdelete      []journalDelete // expired tasks to delete at the next commit
	jputs        []journalPut    // records of layers above, for the next commit
	expiring     []finishedEntry // finished tasks, oldest first (with a retention or a count kept)
	kept         int             // the finished tasks held that expiring counts
	keepGen      uint64          // numbers expiring's entries
	jafter       []func(error)
	jworkers     map[string]*workerState // workers whose statistics changed since the last commit, by name
	jflushQd     bool
	jwriting     int            // commits being written
	jmax         int            // at most (1, or replicaInFlight with replication)
	jwg          sync.WaitGroup // the journal writer goroutine
	journalStats struct {
		commits, records int
		time             time.Duration
	}
}

// totals are the manager's counters: written in the actor, read by
// Stats and by the Prometheus registry's scrapes (counter functions), so
// each is counted once.
type totals struct {
	submitted, succeeded, failed, cancelled, retried, requeued, late atomic.Int64
	latencyTotal                                                     time.Duration // actor only
}

// NewManager makes the admin agent a a task manager: it registers the
// manager's handlers on a, which must be an admin ([agent.AsAdmin]) that
// has not started yet. [Manager.Start] then starts a (after recovering the
// journal, if one is configured) and [Manager.Stop] stops it; a may carry
// handlers of its own.
func NewManager(a *agent.Agent, opts ...ManagerOption) (*Manager, error) {
	if a == nil || a.Detail().Mode != agent.Admin {
		return nil, ErrNotAdmin
	}
	cfg := defaultManagerConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.tracer == nil {
		cfg.tracer = tracerOf(nil)
	}
	if cfg.replica != nil && cfg.journal == nil {
		return nil, fmt.Errorf("%w: WithReplication needs WithJournal (the replicated state)", ErrReplicaConfig)
	}
	m := &Manager{
		agent:      a,
		cfg:        cfg,
		leading:    cfg.replica == nil,
		jmax:       1,
		tasks:      map[string]*taskState{},
		inflight:   map[string]*taskState{},
		workers:    map[peer.ID]*workerState{},
		history:    map[string]WorkerStats{},
		priorities: map[string]int{},
		workersChg: make(chan struct{}),
		pending:    make(chan struct{}, cfg.maxPending),
		futures:    map[*SubmitFuture]struct{}{},
		unique:     map[string]uniqueHold{},
		orphans:    map[string][]orphan{},
		paused:     map[string]bool{},
		auth:       authState{grants: map[peer.ID][]Grant{}, revoked: map[string]time.Time{}},
	}
	if cfg.replica != nil {
		m.jmax = replicaInFlight
	}
	m.metrics = newManagerMetrics(m)
	m.loadGauges = newLoadGauges(m.metrics.reg)
	agent.On(a, m.onWorkerInfo)
	agent.On(a, m.onAck)
	agent.On(a, m.onResult)
	agent.On(a, m.onHeartbeat)
	agent.On(a, m.onProgress)
	m.handleProducers(a)
	agent.On(a, m.onAdminRequest)
	if err := agent.RegisterKind[messages.AdminReply](a); err != nil { // a standby's requests to its leader (LeaderOperator)
		return nil, err
	}
	agent.On(a, m.onGrantPresent)
	a.OnConnect(m.onConnect)
	a.OnDisconnect(m.onDisconnect)
	return m, nil
}

// forgetSettled drops the recovered final tasks under
// WithForgetFinished: they are the layer above's now.
func (m *Manager) forgetSettled() {
	if !m.cfg.forget {
		return
	}
	for id, t := range m.tasks {
		if t.settled {
			delete(m.tasks, id)
		}
	}
}

// Agent returns the manager's agent (addresses, stats, extra handlers).
func (m *Manager) Agent() *agent.Agent { return m.agent }

// Addrs returns the addresses workers join through.
func (m *Manager) Addrs() []string { return m.agent.Addrs() }

// Start recovers the journal (with [WithJournal]: its error wraps
// [ErrJournalCorrupt] if a record cannot be read), rebuilds a layer's
// state ([WithRestore]: its error as it returned it), then starts the
// manager's agent (its errors, agent.ErrAlreadyStarted if it was started
// already) and the lease checker.
func (m *Manager) Start(ctx context.Context) error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.startCalled {
		return agent.ErrAlreadyStarted
	}
	m.startCalled = true
	var lastRuns map[string]time.Time
	if m.cfg.journal != nil && m.cfg.replica == nil {
		st, err := m.loadRecovery()
		if err != nil {
			return err
		}
		m.restore(st, "lost: manager restarted", false)
		lastRuns = st.lastRuns
	}
	if m.cfg.restore != nil && m.cfg.journal != nil && m.cfg.replica == nil { // replicated: when it takes the lead
		if err := m.cfg.restore(&Recovery{m: m}); err != nil {
			return err
		}
	}
	m.startPeriodic(lastRuns)
	m.forgetSettled()
	m.started = time.Now()
	if err := m.agent.Start(ctx); err != nil {
		return err
	}
	m.agent.Post(func() {
		if m.ready.n > 0 { // resumed from the journal
			m.markDirty()
		}
	})
	if m.cfg.replica != nil {
		if err := m.startReplica(); err != nil {
			_ = m.agent.Stop()
			return err
		}
	}
	m.stopTicker = m.agent.Every(m.cfg.tick, m.sweep)
	m.scaleWG.Add(1)
	go m.scaleLoop()
	return nil
}

// Stop stops the manager. Tasks still running stay with their workers,
// which stop taking work when they see the manager leave. A Stop during
// Start cancels it.
func (m *Manager) Stop() error {
	if r := m.rep.Load(); r != nil {
		r.handOver() // a leader that stops hands the lead on first
	}
	err := m.agent.Stop() // first: it cancels a Start in progress
	m.life.Lock()
	defer m.life.Unlock()
	if r := m.rep.Load(); r != nil {
		r.close() // a commit in flight fails: it is the next leader's
	}
	if m.stopTicker != nil {
		m.stopTicker()
	}
	m.jwg.Wait()     // a commit in flight finishes before the journal can close
	m.scaleWG.Wait() // the scaling loop ends with the agent
	// Nothing answers a submission any more: its future says so.
	m.futuresMu.Lock()
	open := m.futures
	m.futures = map[*SubmitFuture]struct{}{}
	m.futuresMu.Unlock()
	for f := range open {
		if f.resolve(agent.ErrStopped) {
			<-m.pending
		}
	}
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

// CheckSize fails with [ErrTaskTooLarge] if an assignment of task with
// inputs would not fit in one frame to a worker (peer.WithMaxFrameSize;
// 4 MiB by default): Submit refuses such a task at once rather than let
// it fail on every worker. It is safe for concurrent use.
func (m *Manager) CheckSize(task messages.Task, inputs messages.Inputs) error {
	max := m.agent.MaxMessageSize()
	if max <= 0 {
		return nil
	}
	as := messages.TaskAssignment{Task: task, Inputs: inputs, Attempt: 1}
	if n := as.Msgsize(); n > max {
		return fmt.Errorf("%w: task %q: its assignment takes up to %d bytes, one frame carries %d (peer.WithMaxFrameSize)", ErrTaskTooLarge, task.ID, n, max)
	}
	return nil
}

// Submit validates a task and queues it. It returns once the task is
// accepted (or rejected with a named error), not when it has run; use
// [Manager.Wait] or [Manager.Run] for the result. A task no
// connected worker can take waits until one joins.
func (m *Manager) Submit(ctx context.Context, task messages.Task, opts ...SubmitOption) error {
	s := Submission{Task: task}
	for _, o := range opts {
		o(&s)
	}
	ctx, span := m.cfg.tracer.Start(ctx, SpanSubmit, trace.WithSpanKind(trace.SpanKindProducer), taskAttrs(task.ID, task.Type))
	err := m.submit(ctx, []Submission{s})
	endSpan(span, err)
	return err
}

// submit accepts a batch and answers once it is durable.
func (m *Manager) submit(ctx context.Context, batch []Submission) error {
	traced(ctx, batch)
	_, err := agent.CallDeferred(ctx, m.agent, func(reply func(struct{}, error)) {
		if err := m.accept(batch); err != nil {
			reply(struct{}{}, err)
			return
		}
		m.afterCommit(func(err error) { reply(struct{}{}, err) })
	})
	return err
}

// Submission is one task of a [Manager.SubmitAll] batch.
type Submission struct {
	Task messages.Task
	// Inputs, when DepsMet, are the outputs of the task's dependencies.
	Inputs  map[string][]byte
	DepsMet bool
	// NotBefore, if set, is the earliest time the task may be assigned
	// (ProcessAt, ProcessIn).
	NotBefore time.Time
	// UniqueKey, if set, refuses another submission with the same key
	// until UniqueUntil (Unique).
	UniqueKey   string
	UniqueUntil time.Time
	// Trace is the W3C traceparent of the submit's span; when empty, the
	// span of the submit's context, if any, is the task's parent.
	Trace string
}

// Unique refuses, with [ErrDuplicateUnique], any other submission with
// the same key for ttl from now, whatever becomes of this task (as
// JetStream's Msg-Id window; asynq's Unique). The key is journaled, so a
// restarted manager keeps refusing until the ttl ends.
func Unique(key string, ttl time.Duration) SubmitOption {
	return func(s *Submission) { s.UniqueKey, s.UniqueUntil = key, time.Now().Add(ttl) }
}

// ProcessAt makes the task wait until t before it is assigned (asynq's
// ProcessAt); it is journaled, so a restarted manager keeps the time.
func ProcessAt(t time.Time) SubmitOption {
	return func(s *Submission) { s.NotBefore = t }
}

// ProcessIn makes the task wait d from now before it is assigned.
func ProcessIn(d time.Duration) SubmitOption {
	return func(s *Submission) { s.NotBefore = time.Now().Add(d) }
}

// SubmitAll validates and queues a batch atomically: if any task is
// rejected, none is queued.
func (m *Manager) SubmitAll(ctx context.Context, batch []Submission) error {
	return m.submit(ctx, batch)
}

// Wait blocks until the task is final and returns its result (Success is
// false for a failed or cancelled task). If ctx ends first, the error says
// why the task is not done: for a task no worker can take it wraps
// [ErrNoEligibleWorker]. The task itself is not affected.
func (m *Manager) Wait(ctx context.Context, id string) (messages.TaskResult, error) {
	t, err := agent.Call(ctx, m.agent, func() (*taskState, error) {
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
func (m *Manager) await(ctx context.Context, t *taskState) (messages.TaskResult, error) {
	select {
	case <-t.done:
		if t.deposed {
			return messages.TaskResult{}, fmt.Errorf("%w: %q is the next leader's now", ErrNotLeader, t.task.ID)
		}
		return *t.result, nil
	case <-ctx.Done():
		return messages.TaskResult{}, m.whyNotDone(t.task.ID, ctx.Err())
	case <-m.agent.Done():
		return messages.TaskResult{}, agent.ErrStopped
	}
}

// whyNotDone explains a Wait that ran out of time.
func (m *Manager) whyNotDone(id string, cause error) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	msg, _ := agent.Call(ctx, m.agent, func() (error, error) {
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
	return fmt.Errorf("task: task %q not done: %w", id, cause)
}

// Run submits a task and waits for its result.
func (m *Manager) Run(ctx context.Context, task messages.Task, opts ...SubmitOption) (messages.TaskResult, error) {
	s := Submission{Task: task}
	for _, o := range opts {
		o(&s)
	}
	sctx, span := m.cfg.tracer.Start(ctx, SpanSubmit, trace.WithSpanKind(trace.SpanKindProducer), taskAttrs(task.ID, task.Type))
	s.Trace = traceparentOf(sctx)
	// One trip into the actor: accept, and get the completion channel.
	t, err := agent.CallDeferred(ctx, m.agent, func(reply func(*taskState, error)) {
		if err := m.accept([]Submission{s}); err != nil {
			reply(nil, err)
			return
		}
		t := m.tasks[task.ID]
		t.done = make(chan struct{})
		m.afterCommit(func(err error) { reply(t, err) })
	})
	endSpan(span, err)
	if err != nil {
		return messages.TaskResult{}, err
	}
	return m.await(ctx, t)
}

// Task returns a snapshot of a task's state.
func (m *Manager) Task(ctx context.Context, id string) (Info, error) {
	return agent.Call(ctx, m.agent, func() (Info, error) {
		t := m.tasks[id]
		if t == nil {
			return Info{}, fmt.Errorf("%w: %q", ErrUnknownTask, id)
		}
		return t.info(), nil
	})
}

// Tasks returns a snapshot of every task the manager knows, in submission
// order.
func (m *Manager) Tasks(ctx context.Context) ([]Info, error) {
	return agent.Call(ctx, m.agent, func() ([]Info, error) {
		ts := make([]*taskState, 0, len(m.tasks))
		for _, t := range m.tasks {
			ts = append(ts, t)
		}
		slices.SortFunc(ts, func(a, b *taskState) int { return cmp.Compare(a.seq, b.seq) })
		out := make([]Info, len(ts))
		for i, t := range ts {
			out[i] = t.info()
		}
		return out, nil
	})
}

// Cancel stops a task: a queued task is dropped, a running one is told to
// stop. The task ends [StatusCancelled], durably (with a journal) when
// Cancel returns, as Pause, Retry and Delete are: a manager that dies
// right after does not run it again, and Delete may follow at once.
// Cancelling a final task does nothing.
func (m *Manager) Cancel(ctx context.Context, id string) error {
	return m.durably(ctx, func() error { return m.cancelTask(id, "cancelled by request") })
}

// cancelTask cancels task id. Only called in the actor.
func (m *Manager) cancelTask(id, reason string) error {
	t := m.tasks[id]
	switch {
	case !m.leading:
		return m.notLeader()
	case t == nil:
		return fmt.Errorf("%w: %q", ErrUnknownTask, id)
	}
	m.cancel(t, reason)
	return nil
}

// WaitForWorkers blocks until n workers have registered (n <= 0 returns at
// once).
func (m *Manager) WaitForWorkers(ctx context.Context, n int) error {
	if n <= 0 {
		return nil // without asking the actor, which a short ctx could fail
	}
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
// registered (no names returns at once). If ctx ends first, the error
// names the missing ones.
func (m *Manager) WaitForWorkerNames(ctx context.Context, names ...string) error {
	if len(names) == 0 {
		return nil
	}
	type out struct {
		missing []string
		ch      chan struct{}
	}
	for {
		r, err := agent.Call(ctx, m.agent, func() (out, error) {
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
func (m *Manager) Shutdown(ctx context.Context, reason string) error {
	workers, err := agent.Call(ctx, m.agent, func() ([]peer.ID, error) {
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
		if err := m.agent.Send(ctx, pid.String(), messages.Shutdown{Reason: reason}); err != nil {
			m.agent.Logger().Warn("shutdown not delivered", "worker", pid, "err", err)
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
			return fmt.Errorf("task: %d workers still connected after shutdown: %w", n, ctx.Err())
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
func (m *Manager) workerCount(ctx context.Context, aliveOnly bool) (int, <-chan struct{}, error) {
	type out struct {
		n  int
		ch chan struct{}
	}
	r, err := agent.Call(ctx, m.agent, func() (out, error) {
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
func (m *Manager) workersChanged() {
	close(m.workersChg)
	m.workersChg = make(chan struct{})
}

func (m *Manager) aliveWorkers() int {
	n := 0
	for _, w := range m.workerList {
		if w.alive {
			n++
		}
	}
	return n
}
