package task

import (
	"context"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// A manager with WithReplication leads or stands by. Standing by, it holds
// no tasks and no workers (its journal is kept by the replicated log);
// taking the lead, it resumes from the journal as a restarted manager
// does, then calls every worker of the workspace over with its term; losing
// it, it drops everything and answers with ErrNotLeader. Everything here
// runs in the manager's actor. Without replication a manager always leads,
// with term 0.

// epochGenBits is how many low bits of a leadership epoch count the
// leads taken within one Raft term.
const epochGenBits = 20

// leaderEpoch is what assignments, results and welcomes carry among
// replicated managers: the Raft term, and in its low bits how many times
// this manager rebuilt its state within the term (a resync). Workers
// follow the highest; an attempt is fenced by the epoch it was assigned
// in, so one sent before a rebuild and lost in it is not taken for one of
// the same number sent after.
func leaderEpoch(term, gen uint64) uint64 {
	return term<<epochGenBits | min(gen, 1<<epochGenBits-1)
}

// takeLead makes the manager the leader for a term, with the journal's
// state as of the moment every earlier entry was applied.
func (m *Manager) takeLead(term uint64, st *recovered) {
	if m.leading { // the same manager again (a resync): whoever waited asks again
		m.dropState(fmt.Errorf("%w: the manager rebuilt its state", ErrNotLeader))
	}
	m.restore(st, fmt.Sprintf("lost: a new manager leads (term %d)", term), true)
	m.series.rebase = true
	m.startPeriodic(st.lastRuns)
	if term == m.leadTerm {
		m.leadGen++ // rebuilt in the same term: attempts it sent and lost in the rebuild are fenced too
	} else {
		m.leadTerm, m.leadGen = term, 0
	}
	m.leading, m.epoch = true, leaderEpoch(term, m.leadGen)
	if m.cfg.restore != nil { // the layer above rebuilds its state too, and resumes in this term's first commit
		tx := &Tx{m: m}
		if err := m.cfg.restore(&Recovery{m: m, tx: tx}); err != nil {
			m.agent.Logger().Error("the layer above the task manager could not rebuild its state from the journal", "term", term, "err", err)
		}
		tx.commit()
	}
	m.forgetSettled()
	m.agent.Logger().Info("leading the workspace's task managers", "term", term, "tasks", len(m.tasks), "pending", m.ready.n)
	// Every worker follows the highest epoch it hears.
	for _, d := range m.agent.ConnectedAgents() {
		if d.Mode != agent.Client {
			continue
		}
		if pid, err := peer.ParseID(d.ID); err == nil {
			_ = m.agent.SendBounded(pid, messages.Welcome{Epoch: m.epoch})
		}
	}
	m.markDirty()
	m.workersChanged()
	for _, fn := range m.cfg.leadership {
		fn(true, term)
	}
}

// standDown gives up the lead: every task and worker is dropped (the next
// leader resumes them from the journal), and whoever waits hears
// ErrNotLeader.
func (m *Manager) standDown() {
	if !m.leading {
		return
	}
	m.agent.Logger().Warn("no longer leading the workspace's task managers", "term", m.leadTerm, "leader", m.leaderHint())
	m.dropState(fmt.Errorf("%w (the leader is %s)", ErrNotLeader, m.leaderHint()))
	m.leading = false
	for _, fn := range m.cfg.leadership {
		fn(false, m.leadTerm)
	}
}

// dropState forgets every task and worker. Waiters are woken with err
// (nil: they stay, when the state is rebuilt at once).
func (m *Manager) dropState(err error) {
	m.series.rebase = true // the totals restart: no rate from before to after
	for _, t := range m.tasks {
		if t.span != nil {
			endAttemptSpan(t.span, "lost: the manager gave up the lead")
			t.span = nil
		}
		if t.stopRetry != nil {
			t.stopRetry()
			t.stopRetry = nil
		}
		if err == nil || t.settled {
			continue
		}
		if t.done != nil {
			t.deposed = true
			close(t.done)
		}
		for _, w := range t.remote {
			_ = w.ctx.Reply(messages.WaitReply{Outcome: m.outcomeOf(t.task.ID, err)})
		}
		t.remote = nil
	}
	after := m.jafter
	m.tasks = map[string]*taskState{}
	m.inflight = map[string]*taskState{}
	m.workers = map[peer.ID]*workerState{}
	m.workerList, m.freeWorkers = nil, nil
	m.priorities = map[string]int{}
	m.history = map[string]WorkerStats{}
	m.ready = readyQueues{}
	m.later, m.retryLater, m.holdsDirty = nil, nil, false
	m.unique = map[string]uniqueHold{}
	m.orphans = map[string][]orphan{}
	m.paused = map[string]bool{}
	m.auth.revoked = map[string]time.Time{}
	m.seq, m.remoteWaits = 0, 0
	m.recent = recentRing{}
	m.jbuf, m.jdelete, m.jputs, m.jafter, m.jworkers, m.expiring, m.kept = nil, nil, nil, nil, nil, nil, 0
	for _, c := range []interface{ Store(int64) }{
		&m.totals.submitted, &m.totals.succeeded, &m.totals.failed, &m.totals.cancelled,
		&m.totals.retried, &m.totals.requeued, &m.totals.late,
	} {
		c.Store(0)
	}
	m.totals.latencyTotal = 0
	for _, fn := range after { // changes that were waiting for a commit
		if err != nil {
			fn(err)
		} else {
			fn(ErrNotLeader)
		}
	}
	m.workersChanged()
}

// leaderHint is the leading manager's peer ID as far as this one knows
// ("" if unknown, or without replication).
func (m *Manager) leaderHint() string {
	r := m.rep.Load()
	if r == nil {
		return ""
	}
	return r.leader()
}

// notLeader is the error for a request a standby cannot serve.
func (m *Manager) notLeader() error {
	if l := m.leaderHint(); l != "" && l != m.agent.ID() {
		return fmt.Errorf("%w (the leader is %s)", ErrNotLeader, l)
	}
	return fmt.Errorf("%w (no leader elected yet)", ErrNotLeader)
}

// Leading reports whether the manager leads (always, without
// replication) and its term (0 without replication).
func (m *Manager) Leading(ctx context.Context) (leading bool, term uint64, err error) {
	type lead struct {
		on    bool
		epoch uint64
	}
	l, err := agent.Call(ctx, m.agent, func() (lead, error) { return lead{m.leading, m.leadTerm}, nil })
	return l.on, l.epoch, err
}

// orphan is an attempt in flight whose worker is away: a new leader's
// attempts, assigned by the previous one, until their workers announce
// themselves; or, among replicated managers, those of a worker whose
// connection dropped (it keeps running them, and comes back). Past until
// the attempt is given up and its task queued again.
type orphan struct {
	t     *taskState
	until time.Time
}

// orphan sets t's live attempt aside for its worker, name, to claim.
func (m *Manager) orphan(t *taskState, name string) {
	m.orphans[name] = append(m.orphans[name], orphan{t: t, until: time.Now().Add(m.cfg.heartbeatTimeout)})
}

// adoptOrphans takes over the attempts set aside for a worker that has
// announced itself: they are its again, as if assigned by this manager,
// and its heartbeats and results settle them. One it does not list in its
// first heartbeat is requeued then (reconcile).
func (m *Manager) adoptOrphans(w *workerState) {
	os := m.orphans[w.detail.Name]
	if len(os) == 0 {
		return
	}
	delete(m.orphans, w.detail.Name)
	now := time.Now()
	n := 0
	var others []orphan // not this worker's to take: they wait for theirs
	for _, o := range os {
		t := o.t
		if (t.status != StatusAssigned && t.status != StatusRunning) || t.worker != nil || m.inflight[t.task.ID] != nil {
			continue // cancelled or assigned again meanwhile
		}
		// Only the worker the attempt went to (the same peer ID, when the
		// journal knows it), running its type, under its grants, takes it
		// over: a name is only what an agent says it is.
		last := t.attempts[len(t.attempts)-1]
		if last.WorkerID != "" && last.WorkerID != w.detail.ID || w.types[t.task.Type] == nil ||
			m.strict() && !m.holds(w.pid, RoleWorker, t.task.Type) {
			others = append(others, o)
			continue
		}
		t.worker = w
		t.policy = resolvePolicy(&t.task, w.types[t.task.Type], m.cfg.defaults)
		t.assignedAt = t.attempts[len(t.attempts)-1].AssignedAt
		t.ackDeadline = now.Add(m.cfg.ackTimeout)
		if t.policy.Timeout > 0 {
			t.leaseEnd = t.assignedAt.Add(t.policy.Timeout)
		}
		w.slots[slotKey{t.task.ID, t.attempt}] = &slot{t: t, sent: now, adopted: true, epoch: last.Epoch}
		m.inflight[t.task.ID] = t
		n++
	}
	if len(others) > 0 {
		m.orphans[w.detail.Name] = others
	}
	m.agent.Logger().Info("took over attempts in flight", "worker", w.detail.Name, "attempts", n)
}

// dropOrphans requeues the attempts of workers that did not come back in
// time. Only called in the actor (sweep).
func (m *Manager) dropOrphans(now time.Time) {
	for name, os := range m.orphans {
		kept := os[:0]
		for _, o := range os {
			t := o.t
			switch {
			case (t.status != StatusAssigned && t.status != StatusRunning) || t.worker != nil || m.inflight[t.task.ID] != nil:
				// settled otherwise
			case now.Before(o.until):
				kept = append(kept, o)
			default:
				m.attemptLost(t, fmt.Sprintf("worker %s did not come back", name))
			}
		}
		if len(kept) == 0 {
			delete(m.orphans, name)
		} else {
			m.orphans[name] = kept
		}
	}
}

// uncommitted reports a failed commit of a replicated manager: its effects
// (an assignment sent, a result announced) must not happen, since the log
// may not hold the change; the manager is standing down or rebuilding its
// state from the log, and the leader then acts on what the log holds.
func (m *Manager) uncommitted(err error) bool { return err != nil && m.cfg.replica != nil }
