package task

import (
	"errors"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// This file holds the task life cycle. Every function here runs in the
// manager's actor.

// accept validates a batch and queues it, all or nothing.
func (m *Manager) accept(batch []Submission) error {
	if !m.leading {
		return m.notLeader()
	}
	now := time.Now()
	var seenKey map[string]bool
	var seen map[string]bool
	if len(batch) > 1 {
		seen = make(map[string]bool, len(batch))
	}
	for i := range batch {
		t := &batch[i].Task
		if err := t.Validate(); err != nil {
			return err
		}
		if m.tasks[t.ID] != nil || seen[t.ID] {
			return fmt.Errorf("%w: %q", ErrDuplicateTask, t.ID)
		}
		if seen != nil {
			seen[t.ID] = true
		}
		if len(t.Dependencies) > 0 && !batch[i].DepsMet {
			return fmt.Errorf("task %q: %w", t.ID, ErrUnresolvedDependencies)
		}
		if err := m.CheckSize(*t, batch[i].Inputs); err != nil {
			return err
		}
		if k := batch[i].UniqueKey; k != "" {
			if h, held := m.unique[k]; held && now.Before(h.until) || seenKey[k] {
				return fmt.Errorf("%w: %q, held by task %q until %v", ErrDuplicateUnique, k, h.task, h.until.Format(time.RFC3339))
			}
			if seenKey == nil {
				seenKey = map[string]bool{}
			}
			seenKey[k] = true
		}
		if m.cfg.processors != nil && !m.cfg.processors[t.Type] && !m.someWorkerRuns(t.Type) {
			return fmt.Errorf("%w: task %q has type %q", ErrUnknownProcessor, t.ID, t.Type)
		}
	}
	for i := range batch {
		s := &batch[i]
		m.seq++
		t := &taskState{
			task: s.Task, inputs: s.Inputs, seq: m.seq, status: StatusPending,
			submittedAt: now, queueIndex: -1, priority: s.Task.Priority,
		}
		if t.priority == 0 {
			t.priority = m.typePriority(s.Task.Type)
		}
		t.trace = s.Trace
		if t.trace == "" && m.cfg.traceRoots {
			t.trace = m.rootTrace(t)
		}
		if s.UniqueKey != "" {
			t.uniqueKey, t.uniqueUntil = s.UniqueKey, s.UniqueUntil
			m.unique[s.UniqueKey] = uniqueHold{task: t.task.ID, until: s.UniqueUntil}
		}
		m.tasks[t.task.ID] = t
		m.totals.submitted.Add(1)
		m.journalTask(t)
		if s.NotBefore.After(now) {
			t.status, t.notBefore = StatusScheduled, s.NotBefore
			m.later.add(t)
		} else {
			m.ready.push(t)
		}
		m.emit(Event{Type: EventSubmitted, TaskID: t.task.ID})
	}
	m.markDirty()
	return nil
}

func (m *Manager) someWorkerRuns(typ string) bool {
	for _, w := range m.workerList {
		if _, ok := w.types[typ]; ok {
			return true
		}
	}
	return false
}

// typePriority is the highest handler priority any worker declares for typ.
func (m *Manager) typePriority(typ string) int { return m.priorities[typ] }

// markDirty asks for one scheduling pass after the messages already in the
// mailbox, so a burst of results frees many slots before assignments go
// out together.
func (m *Manager) markDirty() {
	if m.dirty {
		return
	}
	m.dirty = true
	m.agent.Post(func() {
		if m.dirty { // or a journal flush ran it first
			m.schedule()
		}
	})
}

// assign hands the next attempt of t to w.
func (m *Manager) assign(t *taskState, w *workerState) {
	now := time.Now()
	t.attempt++
	t.status = StatusAssigned
	t.worker = w
	t.progress, t.progressMessage = 0, "" // a new attempt reports afresh
	t.assignedAt = now
	t.policy = resolvePolicy(&t.task, w.types[t.task.Type], m.cfg.defaults)
	t.ackDeadline, t.leaseEnd = time.Time{}, time.Time{} // set when it is sent
	t.attempts = append(t.attempts, AttemptInfo{Attempt: t.attempt, Worker: w.detail.Name, WorkerID: w.detail.ID, AssignedAt: now, Epoch: m.epoch})
	m.metrics.assignLatency.Observe(seconds(now.Sub(t.readyAt)))
	w.slots[slotKey{t.task.ID, t.attempt}] = &slot{t: t, epoch: m.epoch}
	m.inflight[t.task.ID] = t

	// The assignment goes out at once; with a local journal, its record
	// rides the next commit, which is not waited for: its result is
	// reported only once committed (after the task's acceptance, in the
	// same ordered log), and a worker drops the attempts of a manager it
	// lost, so one sent but never journaled runs again after a restart,
	// as every attempt in flight does.
	m.journalTask(t)
	if m.cfg.replica == nil {
		m.sendAssignment(t, w, now)
		return
	}
	// Among replicated managers it goes out once committed: the next
	// leader knows every attempt sent and takes it over from the worker
	// (sent before, a failover would run it again).
	attempt := t.attempt
	m.afterCommit(func(err error) {
		if m.uncommitted(err) {
			return // not in the replicated log: the next leader assigns it
		}
		if m.current(t.task.ID, attempt) == t && t.worker == w {
			m.sendAssignment(t, w, now)
			return
		}
		// Cancelled (or its worker lost) before it went out: nobody will
		// report on this attempt, so its slot is free now.
		if _, held := w.slots[slotKey{t.task.ID, attempt}]; held {
			delete(w.slots, slotKey{t.task.ID, attempt})
			m.markDirty()
		}
	})
}

// sendAssignment sends the live attempt of t to w; its ack deadline and
// lease start now.
func (m *Manager) sendAssignment(t *taskState, w *workerState, assignedAt time.Time) {
	now := time.Now()
	if s := w.slots[slotKey{t.task.ID, t.attempt}]; s != nil {
		s.sent = now
	}
	t.ackDeadline = now.Add(m.cfg.ackTimeout)
	if t.policy.Timeout > 0 {
		t.leaseEnd = now.Add(t.policy.Timeout)
	}
	as := messages.TaskAssignment{Task: t.task, Attempt: t.attempt, AssignedAt: assignedAt, Timeout: t.policy.Timeout, Inputs: t.inputs, Epoch: m.epoch}
	if t.trace != "" {
		as.Trace = m.traceAttempt(t, w, assignedAt)
	}
	if err := m.agent.SendBounded(w.pid, as); err != nil {
		if errors.Is(err, peer.ErrFrameTooLarge) {
			// No worker can be sent this one (Submit refuses such tasks;
			// this is a safety net): it fails, the worker is fine.
			delete(w.slots, slotKey{t.task.ID, t.attempt})
			m.endAttempt(t, "not sent: "+err.Error())
			t.worker = nil
			m.finish(t, StatusFailed, &messages.TaskResult{TaskID: t.task.ID, Attempt: t.attempt,
				ErrorMessage: fmt.Sprintf("%v: %v", ErrTaskTooLarge, err), Final: true})
			m.markDirty()
			return
		}
		// The worker is unreachable: take it out of matching until it is
		// heard from again, and give its tasks (this one included) back;
		// each spends one of its lost budget (WithMaxLost).
		m.agent.Logger().Warn("assignment not sent; worker unreachable", "task", t.task.ID, "worker", w.detail.Name, "err", err)
		m.workerLost(w, "unreachable: "+err.Error())
		return
	}
	m.emit(Event{Type: EventAssigned, TaskID: t.task.ID, Attempt: t.attempt, Worker: w.detail.Name})
}

// current reports whether (id, attempt) is the live attempt of a task.
func (m *Manager) current(id string, attempt int) *taskState {
	t := m.inflight[id]
	if t == nil || t.attempt != attempt {
		return nil
	}
	return t
}

func (m *Manager) endAttempt(t *taskState, outcome string) {
	delete(m.inflight, t.task.ID)
	now := time.Now()
	if n := len(t.attempts); n > 0 && t.attempts[n-1].Attempt == t.attempt {
		t.attempts[n-1].EndedAt = now
		t.attempts[n-1].Outcome = outcome
	}
	if t.worker != nil {
		t.worker.activity.ended(t, now, outcome)
	}
	if t.span != nil {
		endAttemptSpan(t.span, outcome)
		t.span = nil
	}
	t.ackDeadline, t.leaseEnd = time.Time{}, time.Time{}
}

// completeAttempt records a worker's result for the live attempt.
func (m *Manager) completeAttempt(t *taskState, w *workerState, r *messages.TaskResult) {
	m.recordStats(w, r.Success, r.ExecutionTime)
	m.series.exec.add(r.ExecutionTime)
	m.metrics.ofType(t.task.Type).execution.Observe(seconds(r.ExecutionTime))
	if r.Success {
		m.endAttempt(t, "ok")
		m.finish(t, StatusCompleted, r)
		return
	}
	m.endAttempt(t, r.ErrorMessage)
	m.attemptFailed(t, r.ErrorMessage, r.Final, r)
}

func (m *Manager) recordStats(w *workerState, ok bool, exec time.Duration) {
	w.stats.Results++
	wm := m.metrics.ofWorker(w.stats.Name)
	if ok {
		w.stats.Successful++
		wm.completed.Inc()
	} else {
		wm.failed.Inc()
	}
	w.stats.TotalTime += exec
	m.statsChanged(w)
}

// attemptFailed retries t if its policy allows, or fails it for good.
func (m *Manager) attemptFailed(t *taskState, reason string, final bool, r *messages.TaskResult) {
	if t.worker != nil {
		t.lastWorker = t.worker.detail.Name
	}
	t.worker = nil
	t.retries++
	if !final && t.retries <= t.policy.MaxRetries {
		delay := t.policy.retryDelay(t.retries)
		t.status, t.retryAt = StatusRetrying, time.Now().Add(delay)
		m.totals.retried.Add(1)
		m.journalTask(t)
		m.emit(Event{Type: EventRetrying, TaskID: t.task.ID, Attempt: t.attempt, Worker: t.lastWorker, Err: reason, Delay: delay})
		t.stopRetry = m.agent.After(delay, func() {
			// (A timer already posted when the manager rebuilt its state
			// finds its task dropped: the rebuilt one is queued already.)
			if t.status == StatusRetrying && m.tasks[t.task.ID] == t {
				t.stopRetry = nil
				t.status, t.retryAt = StatusPending, time.Time{}
				m.ready.push(t)
				m.markDirty()
			}
		})
		return
	}
	if r == nil {
		r = &messages.TaskResult{TaskID: t.task.ID, Attempt: t.attempt, Worker: t.lastWorker, ErrorMessage: reason}
	}
	m.finish(t, StatusFailed, r)
}

// attemptLost puts t back in the queue: its worker vanished or never
// acknowledged it. Lost attempts do not count against retries, up to
// maxLost.
func (m *Manager) attemptLost(t *taskState, reason string) {
	var worker string
	if t.worker != nil {
		worker = t.worker.detail.Name
	}
	m.endAttempt(t, "lost: "+reason)
	t.worker = nil
	t.lost++
	if t.lost > m.cfg.maxLost {
		m.finish(t, StatusFailed, &messages.TaskResult{
			TaskID: t.task.ID, Attempt: t.attempt,
			ErrorMessage: fmt.Sprintf("%v (%d times): %s", ErrTooManyLost, t.lost, reason),
		})
		return
	}
	t.status = StatusPending
	m.totals.requeued.Add(1)
	m.journalTask(t)
	m.ready.push(t)
	m.emit(Event{Type: EventRequeued, TaskID: t.task.ID, Attempt: t.attempt, Worker: worker, Err: reason})
	m.markDirty()
}

// timedOut fails the live attempt of t at the end of its lease and tells
// the worker to stop it. The worker's slot stays taken until the worker
// reports the run has ended.
func (m *Manager) timedOut(t *taskState) {
	w := t.worker
	reason := fmt.Sprintf("%v after %v", ErrTaskTimeout, t.policy.Timeout)
	if w != nil {
		m.recordStats(w, false, t.policy.Timeout)
		cancel := messages.TaskCancel{TaskID: t.task.ID, Attempt: t.attempt, Reason: reason}
		if err := m.agent.SendBounded(w.pid, cancel); err != nil {
			m.agent.Logger().Warn("cancel not sent", "task", t.task.ID, "err", err)
		}
	}
	m.endAttempt(t, "timeout")
	m.attemptFailed(t, reason, false, nil)
}

// finish makes t final.
func (m *Manager) finish(t *taskState, st Status, r *messages.TaskResult) {
	t.status = st
	t.result = r
	t.finishedAt = time.Now()
	t.worker = nil
	m.series.lat.add(t.finishedAt.Sub(t.submittedAt))
	tm := m.metrics.ofType(t.task.Type)
	switch st {
	case StatusCompleted:
		tm.completed.Inc()
		m.totals.succeeded.Add(1)
		m.totals.latencyTotal += t.finishedAt.Sub(t.submittedAt)
		m.metrics.completionLatency.Observe(seconds(t.finishedAt.Sub(t.submittedAt)))
	case StatusFailed:
		tm.failed.Inc()
		m.totals.failed.Add(1)
	case StatusCancelled:
		tm.cancelled.Inc()
		m.totals.cancelled.Add(1)
	}
	// The outcome is acted on (waiters woken, observers told, dependents
	// released) only once it is durable.
	if m.cfg.journal == nil { // durable at once: no closure to wait for a commit
		if m.tasks[t.task.ID] == t {
			m.settle(t)
		}
		return
	}
	m.journalTask(t)
	m.afterCommit(func(err error) {
		if m.uncommitted(err) || m.tasks[t.task.ID] != t {
			// Not in the replicated log (the next leader has the attempt,
			// not this result: nobody hears of it), or dropped with a lost
			// lead (the next leader announces it).
			return
		}
		if err != nil {
			m.agent.Logger().Error("result not journaled; it stands until a restart", "task", t.task.ID, "err", err)
		}
		m.settle(t)
	})
}

// settle wakes t's waiters and tells observers it is final.
func (m *Manager) settle(t *taskState) {
	t.settled = true
	m.recent.add(t)
	if t.done != nil {
		close(t.done)
	}
	m.answerRemoteWaits(t)
	r := t.result
	ev := EventCompleted
	switch t.status {
	case StatusFailed:
		ev = EventFailed
	case StatusCancelled:
		ev = EventCancelled
	}
	if !m.cfg.forget {
		// Queued before the hook runs: a task it settles in turn (a
		// cancel) finished after this one, and queues after it.
		m.keep(t)
		if k := m.cfg.keepFinished; k > 0 && m.kept > k {
			m.expireOldest(min(m.kept-k, expireBatch), time.Time{}) // the sweep trims the rest
		}
	}
	m.emit(Event{Type: ev, TaskID: t.task.ID, Attempt: t.attempt, Worker: r.Worker, Result: r, Err: r.ErrorMessage, Attempts: t.attempts})
	if m.cfg.forget { // a waiter holds t itself
		delete(m.tasks, t.task.ID)
	}
}

// finishedEntry is a finished task in the expiry queue, as it finished
// then: an entry whose task has since been retried (and finished again)
// or deleted is stale.
type finishedEntry struct {
	t   *taskState
	at  time.Time
	gen uint64 // t.keptGen when queued
}

// keep queues finished t for expiry, if any limit is set. Only called in
// the actor.
func (m *Manager) keep(t *taskState) {
	if m.cfg.forget || m.cfg.retention == 0 && m.cfg.keepFinished == 0 {
		return
	}
	m.keepGen++
	m.expiring = append(m.expiring, finishedEntry{t, t.finishedAt, m.keepGen})
	t.kept, t.keptGen = true, m.keepGen
	m.kept++
}

// unkeep takes t out of the finished tasks counted (it is retried or
// deleted); its queue entry goes stale. Once stale entries outnumber the
// live ones the queue is compacted, so deleting what one reads keeps it
// small.
func (m *Manager) unkeep(t *taskState) {
	if !t.kept {
		return
	}
	t.kept = false
	m.kept--
	if len(m.expiring) <= 2*m.kept+64 {
		return
	}
	live := m.expiring[:0]
	for _, e := range m.expiring {
		if m.liveEntry(e) {
			live = append(live, e)
		}
	}
	clear(m.expiring[len(live):])
	m.expiring = live
}

// liveEntry reports whether e stands for a finished task still held.
func (m *Manager) liveEntry(e finishedEntry) bool {
	return e.t != nil && e.t.kept && e.t.keptGen == e.gen && m.tasks[e.t.task.ID] == e.t
}

// expireBatch bounds the tasks one sweep forgets (a journal restored with
// many more than the limit is trimmed over several sweeps, in commits of
// a sane size).
const expireBatch = 4096

// expire drops finished tasks older than the retention, and the oldest
// past the count kept, from memory and from the journal. Finished tasks
// are queued in the order they finished, so this looks only at the
// oldest. Only called in the actor (sweep).
func (m *Manager) expire(now time.Time) {
	if m.cfg.retention > 0 {
		m.expireOldest(expireBatch, now)
	}
	if k := m.cfg.keepFinished; k > 0 && m.kept > k { // a journal restored with more
		m.expireOldest(min(m.kept-k, expireBatch), time.Time{})
	}
}

// expireOldest forgets up to n of the oldest finished tasks; with a
// non-zero now, only those that finished longer than the retention ago.
// Stale entries are dropped on the way, not counted.
func (m *Manager) expireOldest(n int, now time.Time) {
	i, gone := 0, 0
	for ; gone < n && i < len(m.expiring); i++ {
		e := m.expiring[i]
		live := m.liveEntry(e)
		if live && !now.IsZero() && now.Sub(e.at) <= m.cfg.retention {
			break // the oldest live one is within its retention: so are the rest
		}
		m.expiring[i] = finishedEntry{}
		if !live {
			continue
		}
		e.t.kept = false // not unkeep: no compaction while this walks the queue
		m.kept--
		delete(m.tasks, e.t.task.ID)
		m.recordGone(e.t)
		if m.cfg.journal != nil {
			m.jdelete = append(m.jdelete, journalDelete{id: e.t.task.ID, seq: e.t.seq})
			m.queueFlush()
		}
		gone++
	}
	m.expiring = m.expiring[i:]
}

// cancel ends t as cancelled, telling its worker if it is running.
func (m *Manager) cancel(t *taskState, reason string) {
	switch t.status {
	case StatusPending:
		m.ready.remove(t)
	case StatusRetrying:
		if t.stopRetry != nil {
			t.stopRetry()
		}
	case StatusScheduled: // its entry in m.later is skipped when due
	case StatusAssigned, StatusRunning:
		if w := t.worker; w != nil {
			_ = m.agent.SendBounded(w.pid, messages.TaskCancel{TaskID: t.task.ID, Attempt: t.attempt, Reason: reason})
		}
		m.endAttempt(t, "cancelled")
	default:
		return
	}
	m.finish(t, StatusCancelled, &messages.TaskResult{
		TaskID: t.task.ID, Attempt: t.attempt, ErrorMessage: fmt.Sprintf("%v: %s", ErrCancelled, reason),
	})
}

// emit tells observers and the hook about ev. A panicking observer is
// logged and counted, and the event's remaining observers are skipped.
func (m *Manager) emit(ev Event) {
	m.feed.add(ev)
	if len(m.feed.parked) > 0 && !m.feed.posted {
		m.feed.posted = true
		m.agent.Post(m.answerTails)
	}
	if len(m.cfg.observers) == 0 && m.cfg.hook == nil {
		return
	}
	defer m.recoverObserver(ev)
	for _, fn := range m.cfg.observers {
		fn(ev)
	}
	if m.cfg.hook != nil {
		tx := &Tx{m: m}
		m.cfg.hook(tx, ev)
		tx.commit()
	}
}

func (m *Manager) recoverObserver(ev Event) {
	if r := recover(); r != nil {
		m.metrics.observerPanics.Inc()
		m.agent.Logger().Error("task observer panicked", "event", ev.Type, "task", ev.TaskID, "panic", r)
	}
}
