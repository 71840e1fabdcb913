package task

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/peer"

	"github.com/ceylon-go/ceylon/messages"
)

// This file holds what the manager hears from workers, and the periodic
// sweep. Every function here runs in the manager's actor.

func (m *Manager) onWorkerInfo(ctx agent.Context, info messages.WorkerInfo) error {
	if !m.leading {
		return nil // a standby: workers follow the leader
	}
	if err := info.Validate(); err != nil {
		return err
	}
	from := ctx.SenderID()
	allowed, denied := m.workerTypes(from, info.Types)
	if m.strict() {
		err := m.authorize(from, "", RoleWorker) // counted
		if err == nil && len(allowed) == 0 && len(info.Types) > 0 {
			err = fmt.Errorf("%w: %s holds no worker grant for types %v", ErrUnauthorized, from, denied)
			m.metrics.authRefused.WithLabelValues(string(RoleWorker)).Inc()
		}
		if err != nil {
			m.agent.Logger().Warn("worker registration refused", "worker", info.Name, "peer", from, "err", err)
			m.refuseRegistration(from, err)
			return nil
		}
	}
	info.Types = allowed
	w := m.workers[from]
	if w == nil {
		w = &workerState{pid: from, slots: map[slotKey]*slot{}}
		w.stats = m.history[info.Name]
		m.workers[from] = w
	}
	w.detail = ctx.Sender()
	w.info = info
	w.setTypes()
	w.stats.Name, w.stats.Skill, w.stats.Capabilities, w.stats.Capacity = info.Name, info.Skill, info.Capabilities, info.MaxConcurrency
	m.statsChanged(w)
	w.alive = true
	w.lastSeen = time.Now()
	w.activity = m.workerLog.joined(info.Name, from, w.lastSeen)
	m.adoptOrphans(w)
	m.rebuildWorkerList()
	m.agent.Logger().Info("worker registered", "worker", info.Name, "skill", info.Skill,
		"capabilities", info.Capabilities, "max", info.MaxConcurrency)
	reg := messages.Registered{}
	for _, ti := range info.Types {
		reg.Types = append(reg.Types, ti.Name)
	}
	_ = m.agent.SendBounded(from, reg)
	if len(denied) > 0 {
		m.refuseTypes(from, denied)
	}
	m.updateGauges() // a worker joined: its series, the workers' count
	m.markDirty()
	return nil
}

// setTypes indexes w's types and capabilities from its info.
func (w *workerState) setTypes() {
	w.types = make(map[string]*messages.TypeInfo, len(w.info.Types))
	for i := range w.info.Types {
		w.types[w.info.Types[i].Name] = &w.info.Types[i]
	}
	w.caps = make(map[string]bool, len(w.info.Capabilities))
	for _, c := range w.info.Capabilities {
		w.caps[c] = true
	}
}

func (m *Manager) rebuildWorkerList() {
	m.workerList = m.workerList[:0]
	for _, w := range m.workers {
		m.workerList = append(m.workerList, w)
	}
	slices.SortFunc(m.workerList, func(a, b *workerState) int {
		if c := strings.Compare(a.info.Name, b.info.Name); c != 0 {
			return c
		}
		return strings.Compare(a.detail.ID, b.detail.ID)
	})
	clear(m.priorities)
	for _, w := range m.workerList {
		for typ, ti := range w.types {
			m.priorities[typ] = max(m.priorities[typ], ti.Priority)
		}
	}
	m.workersChanged()
}

// heard marks the sender alive; it returns nil for a non-worker.
func (m *Manager) heard(ctx agent.Context) *workerState {
	w := m.workers[ctx.SenderID()]
	if w == nil {
		return nil
	}
	w.lastSeen = time.Now()
	if !w.alive {
		w.alive = true
		m.agent.Logger().Info("worker back", "worker", w.info.Name)
		m.workersChanged()
		m.markDirty()
	}
	return w
}

func (m *Manager) onHeartbeat(ctx agent.Context, hb messages.Heartbeat) error {
	if !m.leading {
		return nil // a standby: workers follow the leader
	}
	w := m.heard(ctx)
	if w == nil {
		if m.strict() && !m.holds(ctx.SenderID(), RoleWorker, "") {
			return nil // refused at its registration
		}
		// A worker we do not know thinks we are its manager: its
		// introduction was lost, or we saw it leave and it did not.
		return m.agent.SendBounded(ctx.SenderID(), messages.Welcome{Epoch: m.epoch})
	}
	if hb.Listed {
		m.reconcile(w, hb.Running)
	}
	return nil
}

// onConnect welcomes a client that joins the workspace, so a worker
// introduces itself even when it did not see this manager leave and come
// back (a client that is no worker drops the welcome as an unknown kind).
func (m *Manager) onConnect(ctx agent.Context, who agent.AgentDetail) {
	if m.leading && who.Mode == agent.Client && m.workers[ctx.SenderID()] == nil {
		_ = m.agent.SendBounded(ctx.SenderID(), messages.Welcome{Epoch: m.epoch})
	}
}

// reconcile compares what a worker says it holds with the manager's view.
// An attempt it holds is acknowledged (the heartbeat stands for the acks
// of every attempt it lists); an attempt sent to it more than half an ack
// timeout ago that it does not hold (its assignment or its result was lost)
// frees its slot and, if still live, goes back to the queue — before its
// ack deadline, which catches the rest (a worker whose heartbeats stopped
// too); an attempt it holds that is no longer wanted (a lost cancel) is
// cancelled again.
func (m *Manager) reconcile(w *workerState, running []messages.AttemptRef) {
	holds := make(map[slotKey]bool, len(running))
	for _, r := range running {
		k := slotKey{r.TaskID, r.Attempt}
		holds[k] = true
		if s := w.slots[k]; s == nil || m.current(k.task, k.attempt) != s.t {
			_ = m.agent.SendBounded(w.pid, messages.TaskCancel{TaskID: k.task, Attempt: k.attempt, Reason: "not wanted any more"})
		} else {
			s.adopted = false
			m.acked(w, s.t)
		}
	}
	now := time.Now()
	for k, s := range w.slots {
		// An attempt taken over from a previous leader that the worker,
		// having announced itself to us, does not list, it never got.
		if holds[k] || (!s.adopted && (s.sent.IsZero() || now.Sub(s.sent) < m.cfg.ackTimeout/2)) {
			continue
		}
		delete(w.slots, k)
		m.markDirty()
		if t := s.t; m.current(k.task, k.attempt) == t && t.worker == w {
			m.attemptLost(t, fmt.Sprintf("worker %s does not hold it", w.info.Name))
		}
	}
}

func (m *Manager) onAck(ctx agent.Context, a messages.TaskAck) error {
	if !m.leading {
		return nil // a standby: workers follow the leader
	}
	w := m.heard(ctx)
	if t := m.current(a.TaskID, a.Attempt); t != nil && t.worker == w {
		m.acked(w, t)
	}
	return nil
}

// acked records that w has the current attempt of t.
func (m *Manager) acked(w *workerState, t *taskState) {
	if t.status != StatusAssigned {
		return
	}
	t.status = StatusRunning
	t.ackDeadline = time.Time{}
	m.emit(Event{Type: EventAcked, TaskID: t.task.ID, Attempt: t.attempt, Worker: w.info.Name})
}

func (m *Manager) onResult(ctx agent.Context, r messages.TaskResult) error {
	if !m.leading {
		return nil // a standby: workers follow the leader
	}
	w := m.heard(ctx)
	if w == nil {
		return fmt.Errorf("result for %q from %s, which is not a registered worker", r.TaskID, ctx.Sender())
	}
	invalid := r.Validate()
	key := slotKey{r.TaskID, r.Attempt}
	s, held := w.slots[key]
	if held && s.epoch != 0 && r.Epoch != s.epoch {
		// A run of an attempt of the same number sent in another epoch
		// (by a previous leader, or before a rebuild) and never
		// committed: the worker runs ours now.
		m.totals.late.Add(1)
		return nil
	}
	delete(w.slots, key)
	if held {
		m.markDirty() // a slot is free
	}
	t := m.current(r.TaskID, r.Attempt)
	if t == nil || t.worker != w {
		if r.Epoch < m.epoch {
			return nil // a previous leader's, sent again in case we lacked it
		}
		m.totals.late.Add(1) // an old attempt, a duplicate, or a cancelled task
		return invalid
	}
	if invalid != nil {
		// The worker answered, but not with a result we can use.
		r = messages.TaskResult{TaskID: r.TaskID, Attempt: r.Attempt, Worker: w.info.Name,
			ExecutionTime: r.ExecutionTime, ErrorMessage: "invalid result: " + invalid.Error()}
	}
	m.completeAttempt(t, w, &r)
	return invalid
}

func (m *Manager) onDisconnect(_ agent.Context, who agent.AgentDetail) {
	if pid, err := peer.ParseID(who.ID); err == nil {
		delete(m.auth.grants, pid) // presented again on the next connection
	}
	for pid, w := range m.workers {
		if w.detail.ID != who.ID {
			continue
		}
		if m.cfg.replica != nil {
			// Among replicated managers a worker keeps running its
			// attempts when it loses its manager, and comes back (here,
			// or to the next leader): they wait for it.
			m.setAside(w)
		}
		m.workerLost(w, "disconnected")
		m.history[w.info.Name] = w.stats
		m.workerLog.left(w.info.Name, time.Now())
		delete(m.workers, pid)
		m.rebuildWorkerList()
		m.metrics.workerInflight.DeleteLabelValues(w.info.Name)
		m.updateGauges()
		m.agent.Logger().Info("worker left", "worker", w.info.Name)
	}
}

// setAside turns w's live attempts into orphans for it to claim when it
// comes back; workerLost then finds none to requeue.
func (m *Manager) setAside(w *workerState) {
	for key, s := range w.slots {
		if t := s.t; m.current(key.task, key.attempt) == t && t.worker == w {
			delete(w.slots, key)
			delete(m.inflight, t.task.ID)
			t.worker = nil
			t.ackDeadline, t.leaseEnd = time.Time{}, time.Time{}
			m.orphan(t, w.detail.Name)
		}
	}
}

// workerLost requeues every live attempt w holds and frees its slots.
func (m *Manager) workerLost(w *workerState, reason string) {
	w.alive = false
	for key, s := range w.slots {
		delete(w.slots, key)
		if t := s.t; m.current(key.task, key.attempt) == t && t.worker == w {
			m.revoke(w, t, reason)
			m.attemptLost(t, fmt.Sprintf("worker %s %s", w.info.Name, reason))
		}
	}
	m.workersChanged()
}

// revoke tells w (best effort: it may be gone) to stop the live attempt of
// t, which is going back to the queue, so that a worker that was only slow
// does not run it as well.
func (m *Manager) revoke(w *workerState, t *taskState, reason string) {
	_ = m.agent.SendBounded(w.pid, messages.TaskCancel{TaskID: t.task.ID, Attempt: t.attempt, Reason: "requeued: " + reason})
}

// sweep enforces ack deadlines, leases and heartbeats.
func (m *Manager) sweep() {
	now := time.Now()
	m.sample(now)
	m.expireTails(now)
	m.authSweep(now)
	if !m.leading {
		m.updateGauges()
		return
	}
	m.dropOrphans(now)
	m.expire(now)
	m.expireUnique(now)
	m.runPeriodic(now)
	for _, t := range m.later.due(now) {
		if t.status == StatusScheduled {
			t.status = StatusPending
			m.ready.push(t)
			m.markDirty()
		}
	}
	m.releaseRetries(now)
	for _, t := range m.inflight {
		switch {
		case !t.ackDeadline.IsZero() && now.After(t.ackDeadline):
			if w := t.worker; w != nil {
				delete(w.slots, slotKey{t.task.ID, t.attempt})
				m.revoke(w, t, "no acknowledgement")
			}
			m.attemptLost(t, "no acknowledgement")
		case !t.leaseEnd.IsZero() && now.After(t.leaseEnd):
			m.timedOut(t)
		}
	}
	defer m.updateGauges()
	for _, w := range m.workerList {
		if w.alive && now.Sub(w.lastSeen) > m.cfg.heartbeatTimeout {
			m.agent.Logger().Warn("worker missed heartbeats", "worker", w.info.Name, "silent", now.Sub(w.lastSeen))
			m.workerLost(w, "missed heartbeats")
		}
	}
}

// schedule assigns ready tasks to free workers until no task can be placed.
//
// One pass looks at every worker once, to list those with a free slot;
// each assignment then looks only at those, so a busy workspace of many
// workers costs per assignment what its free workers cost, not all of them.
func (m *Manager) schedule() {
	m.dirty = false
	defer m.updateQueueGauges()
	if m.ready.n == 0 {
		return
	}
	free := m.freeWorkers[:0]
	for _, w := range m.workerList {
		if w.alive && w.free() > 0 {
			free = append(free, w)
		}
	}
	defer func() { m.freeWorkers = free[:0] }()
	for m.ready.n > 0 && len(free) > 0 {
		var bestQ *classQueue
		var bestW *workerState
		for _, q := range m.ready.classes {
			if m.paused[q.key.typ] || (bestQ != nil && !before(q.head(), bestQ.head())) {
				continue
			}
			if w := m.pick(q, free); w != nil {
				bestQ, bestW = q, w
			}
		}
		if bestQ == nil {
			return
		}
		m.assign(m.ready.pop(bestQ), bestW)
		// Full now, or lost (an assignment that could not be sent takes
		// its worker out of matching, and it must not be picked again).
		if bestW.free() <= 0 || !bestW.alive {
			free = slices.DeleteFunc(free, func(w *workerState) bool { return w == bestW })
		}
	}
}

// pick chooses the worker for the head task of q, or nil if it must wait.
// See [SkillPolicy] for how difficulty is matched. Among skilled enough
// candidates, one that did not just fail the task comes first, then the
// higher score ([workerState.score]); among candidates too weak for the
// task (SkillPrefer with nobody skilled enough), the higher skill comes
// first. Ties go to the lighter load, the smaller skill surplus, the name.
// free holds the alive workers with a free slot.
func (m *Manager) pick(q *classQueue, free []*workerState) *workerState {
	head := q.head()
	diff := q.key.difficulty
	var best *workerState
	bestCapable := false
	for _, w := range free {
		if !w.alive || !w.runs(q) {
			continue
		}
		capable := diff == 0 || w.info.Skill >= diff
		if !capable && m.cfg.skill == SkillStrict {
			continue
		}
		if best == nil || better(w, capable, best, bestCapable, head) {
			best, bestCapable = w, capable
		}
	}
	if best != nil && !bestCapable && m.capableExists(q) {
		return nil // a skilled enough worker exists, busy: wait for it
	}
	return best
}

// capableExists reports whether an alive worker that runs q is skilled
// enough for its tasks, free or not.
func (m *Manager) capableExists(q *classQueue) bool {
	for _, w := range m.workerList {
		if w.alive && w.runs(q) && w.info.Skill >= q.key.difficulty {
			return true
		}
	}
	return false
}

func better(a *workerState, aCap bool, b *workerState, bCap bool, t *taskState) bool {
	if aCap != bCap {
		return aCap
	}
	if !aCap && a.info.Skill != b.info.Skill {
		return a.info.Skill > b.info.Skill // too hard for both: the closer the better
	}
	if aLast, bLast := a.info.Name == t.lastWorker, b.info.Name == t.lastWorker; aLast != bLast {
		return bLast
	}
	if aCap {
		if sa, sb := a.score(), b.score(); sa != sb {
			return sa > sb
		}
	}
	la := float64(len(a.slots)) / float64(a.info.MaxConcurrency)
	lb := float64(len(b.slots)) / float64(b.info.MaxConcurrency)
	if la != lb {
		return la < lb
	}
	if a.info.Skill != b.info.Skill {
		return a.info.Skill < b.info.Skill
	}
	return a.info.Name < b.info.Name
}
