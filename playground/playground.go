package playground

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

// Playground runs tasks with dependencies on a workspace of workers. Create
// it with [New], then [Playground.Start] it (or use [Playground.Play]).
// Its methods are safe for concurrent use.
//
// The dependency graph lives in the task manager's actor: the manager's
// hook moves it on as tasks finish, and the playground's methods read and
// change it there ([task.Manager.View], [task.Manager.Update]), so it
// needs no lock and its journal records ride the manager's group commits.
// Once the manager has stopped, the graph is read under offline.
type Playground struct {
	cfg    config
	mgr    *task.Manager
	locals []*task.Worker

	journal *task.Journal   // nil without WithJournal
	monitor *monitor.Server // nil without WithHTTP
	// The remote submits and waits held, in all and by peer (remote.go).
	// Owned by the manager's actor.
	remoteN  int
	remoteBy map[peer.ID]int

	running atomic.Bool // between Start and Stop
	life    sync.Mutex  // serialises Start and Stop
	offline sync.Mutex  // the graph, once the manager's actor is gone

	// Owned by the manager's actor.
	standby  bool // replicated and not leading: no graph here
	nodes    map[string]*node
	seq      uint64 // generated task IDs
	gseq     uint64 // graph records in the journal
	finished int
	failed   int
	resume   []task.Submission // restored tasks to hand over once running
	replay   [][2][]byte       // graph records made while restoring
}

// New creates a playground. Nothing runs until Start.
func New(opts ...Option) (*Playground, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.listen == nil {
		cfg.listen = []string{"/ip4/127.0.0.1/tcp/0"} // local workers only
		if cfg.remoteCount > 0 || len(cfg.remoteNames) > 0 {
			cfg.listen = nil // the agent's default: every interface
		}
	}
	p := &Playground{cfg: cfg, nodes: map[string]*node{}}
	agentOpts := []agent.Option{agent.WithRole("task_manager")}
	if cfg.listen != nil {
		agentOpts = append(agentOpts, agent.WithListenAddrs(cfg.listen...))
	}
	if cfg.keyFile != "" {
		agentOpts = append(agentOpts, agent.WithIdentityFile(cfg.keyFile))
	}
	agentOpts = append(append(agentOpts, cfg.everyAgent()...), agent.AsAdmin())
	mopts := append([]task.ManagerOption{
		task.WithHook(p.onEvent),
		task.WithForgetFinished(), // the playground keeps the results
		task.WithRestore(p.restore),
		task.WithLeadership(p.onLeadership), // among replicated managers
	}, cfg.managerOpts...)
	if cfg.journalPath != "" {
		j, err := task.OpenJournal(cfg.journalPath, cfg.workspace)
		if err != nil {
			return nil, fmt.Errorf("playground: %w", err)
		}
		p.journal = j
		mopts = append(mopts, task.WithJournal(j))
	}
	admin, err := agent.New(cfg.name, agentOpts...)
	var m *task.Manager
	if err == nil {
		m, err = task.NewManager(admin, mopts...)
	}
	if err != nil {
		if p.journal != nil {
			_ = p.journal.Close()
		}
		return nil, err
	}
	p.mgr = m
	_, err = m.Replica()
	p.standby = err == nil // until it takes the lead
	p.serveRemote(admin)
	return p, nil
}

// Manager returns the playground's task manager (reports, stats, events).
func (p *Playground) Manager() *task.Manager { return p.mgr }

// Addrs returns the addresses remote workers join through.
func (p *Playground) Addrs() []string { return p.mgr.Addrs() }

// MonitorURL is the live dashboard's address ("" without WithHTTP or
// before Start).
func (p *Playground) MonitorURL() string {
	if p.monitor == nil {
		return ""
	}
	return p.monitor.URL()
}

// Workspace returns the workspace ID remote workers join.
func (p *Playground) Workspace() string { return p.cfg.workspace }

// Start starts the task manager and the given local workers, then waits
// (up to the wait timeout) for the remote workers the options ask for. On
// error, everything started is stopped again.
func (p *Playground) Start(ctx context.Context, workers ...Worker) (err error) {
	for _, w := range workers {
		if err := w.validate(); err != nil {
			return err
		}
	}
	p.life.Lock()
	defer p.life.Unlock()
	if err := p.mgr.Start(ctx); err != nil { // restores the graph first
		if p.journal != nil {
			_ = p.journal.Close()
		}
		return fmt.Errorf("playground: %w", err)
	}
	defer func() {
		if err != nil {
			p.shutdown()
		}
	}()
	if p.cfg.httpAddr != "" {
		if p.monitor, err = monitor.Start(p.cfg.httpAddr, p.mgr.LeaderOperator(), p.cfg.httpOpts...); err != nil { // replicated: the leader's
			return fmt.Errorf("playground: monitor: %w", err)
		}
	}
	p.running.Store(true)
	if _, err := p.mgr.Replica(); err != nil { // what a restart restored (replicated: handed over on taking the lead, in the actor)
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handoverTimeout)
		defer cancel()
		if err := p.mgr.Update(hctx, func(tx *task.Tx) error {
			p.handOver(tx)
			return nil
		}); err != nil {
			return fmt.Errorf("playground: resuming: %w", err)
		}
	}

	if p.cfg.onListening != nil {
		p.cfg.onListening(p.mgr.Addrs())
	}
	join := p.mgr.Addrs()[0]
	for _, w := range workers {
		wa, err := w.build(append([]agent.Option{agent.WithJoin(join), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")}, p.cfg.everyAgent()...),
			p.localGrants(w))
		if err != nil {
			return err
		}
		if err := wa.Start(ctx); err != nil {
			return fmt.Errorf("playground: start worker %q: %w", w.Name, err)
		}
		p.locals = append(p.locals, wa)
	}
	if _, err := p.mgr.Replica(); err == nil {
		// Replicated: workers register with whichever manager leads, which
		// may be another one; the leader's Manager().WaitForWorkers waits.
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, p.cfg.waitTimeout)
	defer cancel()
	names := make([]string, 0, len(workers)+len(p.cfg.remoteNames))
	for _, w := range workers {
		names = append(names, w.Name)
	}
	names = append(names, p.cfg.remoteNames...)
	if err := p.mgr.WaitForWorkerNames(wctx, names...); err != nil {
		return fmt.Errorf("playground: %w", err)
	}
	if err := p.mgr.WaitForWorkers(wctx, len(workers)+p.cfg.remoteCount); err != nil {
		return fmt.Errorf("playground: %w", err)
	}
	return nil
}

// Stop stops the local workers (cancelling what they run), tells remote
// workers to finish their tasks and stop (waiting for them up to 5 s),
// stops the manager and waits for everything the playground started.
// Waiters of tasks not finished get an error.
func (p *Playground) Stop() error {
	p.life.Lock()
	defer p.life.Unlock()
	if !p.running.Swap(false) {
		return nil
	}
	var errs []error
	for _, w := range p.locals {
		errs = append(errs, w.Stop())
	}
	p.locals = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.mgr.Shutdown(ctx, "playground stopped"); err != nil {
		p.cfg.logger.Warn("remote workers did not all leave", "err", err)
	}
	return errors.Join(append(errs, p.shutdown())...)
}

// shutdown stops local workers and the manager.
func (p *Playground) shutdown() error {
	var errs []error
	for _, w := range p.locals {
		errs = append(errs, w.Stop())
	}
	p.locals = nil
	if p.monitor != nil {
		errs = append(errs, p.monitor.Close())
		p.monitor = nil
	}
	errs = append(errs, p.mgr.Stop())
	if p.journal != nil {
		errs = append(errs, p.journal.Close())
	}
	p.running.Store(false)
	return errors.Join(errs...)
}

// Play starts the playground with the given local workers, runs fn, and
// stops the playground, whatever fn returns: the Go form of Ceylon's
// `async with playground.play(workers=...)`.
func (p *Playground) Play(ctx context.Context, workers []Worker, fn func(ctx context.Context, p *Playground) error) error {
	if err := p.Start(ctx, workers...); err != nil {
		return err
	}
	err := fn(ctx, p)
	return errors.Join(err, p.Stop())
}

// submit hands ready tasks to the manager, in its actor. A batch the
// manager rejects is retried task by task, so only the culprits fail.
func (p *Playground) submit(tx *task.Tx, ready []task.Submission) {
	if len(ready) == 0 || tx.Submit(ready) == nil {
		return
	}
	for _, s := range ready {
		err := tx.Submit([]task.Submission{s})
		if err != nil && !errors.Is(err, task.ErrDuplicateTask) { // a duplicate is already the manager's
			p.rejected(s.Task.ID, err)
		}
	}
}

// rejected fails a task the manager would not take.
func (p *Playground) rejected(id string, err error) {
	if n := p.nodes[id]; n != nil && !n.state.final() {
		p.fail(n, fmt.Errorf("%w: %q rejected by the task manager: %w", ErrTaskFailed, id, err), nil)
	}
}

// onEvent is the manager's hook: it runs in the manager's actor on every
// task event, and submits the tasks a completion made ready right there.
func (p *Playground) onEvent(tx *task.Tx, ev task.Event) {
	switch ev.Type {
	case task.EventCompleted, task.EventFailed, task.EventCancelled:
	default:
		return
	}
	n := p.nodes[ev.TaskID]
	if n == nil || n.state != stateQueued {
		return
	}
	n.attempts = ev.Attempts
	p.submit(tx, p.apply(tx, n, ev.Result, ev.Type))
}

// apply records the manager's final outcome for n (which it held) and
// returns the submissions that made ready. Runs in the manager's actor
// (tx nil when restoring: restored children are in the graph already).
func (p *Playground) apply(tx *task.Tx, n *node, r *Result, ev task.EventType) []task.Submission {
	switch ev {
	case task.EventCompleted:
		n.result = r
		if len(r.Children) == 0 {
			return p.complete(n)
		}
		n.state = stateChildren
		if len(n.children) > 0 {
			return nil // restored: its children are in the graph already
		}
		children, err := p.prepare(r.Children, n)
		if err == nil {
			err = p.journalNodes(tx, children, n)
		}
		if err != nil {
			fr := *r
			fr.Success, fr.ErrorMessage = false, err.Error()
			p.fail(n, fmt.Errorf("task %q: bad child tasks: %w", n.task.ID, err), &fr)
			return nil
		}
		return p.insert(children, n)
	case task.EventFailed:
		p.fail(n, fmt.Errorf("%w: %q: %s", ErrTaskFailed, n.task.ID, r.ErrorMessage), r)
	case task.EventCancelled:
		p.fail(n, fmt.Errorf("%w: %q: %s", ErrCancelled, n.task.ID, r.ErrorMessage), r)
	}
	return nil
}

// localGrants gives the playground's own workers a worker grant for
// their types when the manager requires grants (task.WithGrantsRequired
// among WithManagerOptions): they are the playground's, signed with its
// manager's key.
func (p *Playground) localGrants(w Worker) func() ([]agent.Option, []task.WorkerOption, error) {
	if !p.mgr.GrantsRequired() {
		return nil
	}
	return func() ([]agent.Option, []task.WorkerOption, error) {
		key, err := peer.GenerateIdentity()
		if err != nil {
			return nil, nil, err
		}
		id, err := peer.IDFromKey(key)
		if err != nil {
			return nil, nil, err
		}
		g, err := p.mgr.IssueGrant(task.Grant{ID: "pg-" + id.String(), Subject: id,
			Roles: []task.Role{task.RoleWorker}, Expires: time.Now().Add(100 * 365 * 24 * time.Hour)})
		if err != nil {
			return nil, nil, err
		}
		return []agent.Option{agent.WithIdentity(key)}, []task.WorkerOption{task.WithWorkerGrants(g)}, nil
	}
}
