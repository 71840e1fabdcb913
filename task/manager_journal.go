package task

import (
	"cmp"
	"slices"
	"time"
)

// WithJournal makes the manager durable: every change of a task's state —
// accepted, assigned, failed and waiting to retry, requeued, final — is
// written to j (in group commits, one per pass through the manager's
// mailbox), and what others are told waits for it: Submit returns, and
// waiters and observers hear of a result, once it is durable. An
// assignment alone goes out at once, its record riding the next commit:
// a result of it is reported only after that commit (the log is ordered),
// and a worker drops the attempts of a manager it lost, so an attempt
// sent but not yet journaled when the manager stopped is run again after
// a restart, never reported twice (it is missing from the attempt
// history, and from the retries spent). Replicated managers
// (WithReplication) send an assignment only once committed, so that the
// next leader takes it over instead of running it again. A manager started on a journal
// resumes: finished tasks keep their results; the others (including those
// in flight when it stopped) are queued again with their attempt history
// and spent retries; worker statistics carry on.
func WithJournal(j *Journal) ManagerOption {
	return func(c *managerConfig) error { c.journal = j; return nil }
}

// recovered is what a journal holds for a manager to resume from.
type recovered struct {
	recs     []*taskRecord
	workers  map[string]WorkerStats
	holds    map[string]heldKey // Unique keys whose tasks' records are gone
	paused   []string
	revoked  map[string]time.Time
	lastRuns map[string]time.Time // periodic tasks' last runs
}

// loadRecovery reads the journal (outside the actor: it only reads the
// file).
func (m *Manager) loadRecovery() (*recovered, error) {
	j := m.cfg.journal
	var (
		st  recovered
		err error
	)
	if st.recs, err = j.loadTasks(); err != nil {
		return nil, err
	}
	if st.workers, err = j.loadWorkers(); err != nil {
		return nil, err
	}
	if st.holds, err = j.loadHolds(); err != nil {
		return nil, err
	}
	if st.paused, err = j.loadPaused(); err != nil {
		return nil, err
	}
	if st.revoked, err = j.loadRevoked(); err != nil {
		return nil, err
	}
	if len(m.cfg.periodic) > 0 {
		if st.lastRuns, err = j.loadPeriodic(); err != nil {
			return nil, err
		}
	}
	return &st, nil
}

// restore rebuilds the manager's tasks from a journal's content. An
// attempt that was in flight is ended with the outcome lost and its task
// queued again; with adopt (a new leader), it waits for its worker to
// come back to this manager instead (see adoptOrphans). Called before the
// actor runs, or in it.
func (m *Manager) restore(st *recovered, lost string, adopt bool) {
	for name, w := range st.workers {
		m.history[name] = w // a worker that comes back continues its numbers
	}
	now := time.Now()
	for k, h := range st.holds {
		if now.Before(h.Until) {
			m.unique[k] = uniqueHold{task: h.Task, until: h.Until, gone: true}
		}
	}
	for _, typ := range st.paused {
		m.paused[typ] = true
	}
	for id, until := range st.revoked {
		m.auth.revoked[id] = until
	}
	// A task ID used again after its task was forgotten (WithForgetFinished)
	// has a record per use, each under its own sequence number: the last
	// one stands, the others go at the next commit.
	last := make(map[string]uint64, len(st.recs))
	for _, r := range st.recs {
		last[r.Task.ID] = max(last[r.Task.ID], r.Seq)
	}
	for _, r := range st.recs {
		if r.Seq != last[r.Task.ID] {
			if m.cfg.journal != nil {
				m.jdelete = append(m.jdelete, journalDelete{id: r.Task.ID, seq: r.Seq})
			}
			continue
		}
		t := &taskState{
			task: r.Task, inputs: r.Inputs, seq: r.Seq, status: r.Status, attempt: r.Attempt,
			retries: r.Retries, lost: r.Lost, attempts: r.Attempts,
			submittedAt: r.SubmittedAt, finishedAt: r.FinishedAt, result: r.Result, queueIndex: -1,
			priority: cmp.Or(r.Priority, r.Task.Priority), notBefore: r.NotBefore, uniqueKey: r.UniqueKey, uniqueUntil: r.UniqueUntil, trace: r.Trace,
		}
		m.seq = max(m.seq, r.Seq)
		if r.UniqueKey != "" && time.Now().Before(r.UniqueUntil) {
			m.unique[r.UniqueKey] = uniqueHold{task: r.Task.ID, until: r.UniqueUntil}
		}
		m.tasks[t.task.ID] = t
		m.totals.submitted.Add(1)
		switch {
		case r.Status.Final() && r.Result != nil:
			t.settled = true
			m.keep(t)
			switch r.Status {
			case StatusCompleted:
				m.totals.succeeded.Add(1)
				m.totals.latencyTotal += r.FinishedAt.Sub(r.SubmittedAt)
			case StatusFailed:
				m.totals.failed.Add(1)
			default:
				m.totals.cancelled.Add(1)
			}
		case r.Status == StatusScheduled:
			m.later.add(t) // the sweep releases it at its time, or at once
		case r.Status == StatusRetrying && !r.RetryAt.IsZero():
			t.retryAt = r.RetryAt
			m.retryLater = append(m.retryLater, t) // the sweep releases it at its time, or at once
		case adopt && (r.Status == StatusAssigned || r.Status == StatusRunning) && len(t.attempts) > 0 &&
			t.attempts[len(t.attempts)-1].Attempt == t.attempt && t.attempts[len(t.attempts)-1].EndedAt.IsZero():
			m.orphan(t, t.attempts[len(t.attempts)-1].Worker)
		default:
			// Whatever it was doing (assigned, running, retrying), no
			// attempt survives: it waits for a worker again.
			t.status = StatusPending
			if n := len(t.attempts); n > 0 && t.attempts[n-1].EndedAt.IsZero() {
				t.attempts[n-1].EndedAt = time.Now()
				t.attempts[n-1].Outcome = lost
			}
			m.ready.push(t)
		}
	}
	slices.SortFunc(m.expiring, func(a, b finishedEntry) int { return a.at.Compare(b.at) })
	slices.SortFunc(m.retryLater, func(a, b *taskState) int { return a.retryAt.Compare(b.retryAt) })
	if len(st.recs) > 0 {
		m.agent.Logger().Info("resumed from journal", "tasks", len(st.recs), "pending", m.ready.n)
	}
}

// journalTask marks t's state as changed: the next commit writes it as it
// is then (several changes in one pass cost one write). Only called in the
// actor.
func (m *Manager) journalTask(t *taskState) {
	if m.cfg.journal == nil {
		return
	}
	if !t.journalDirty {
		t.journalDirty = true
		m.jbuf = append(m.jbuf, t)
	}
	m.queueFlush()
}

// record snapshots t for the journal writer, which runs outside the actor:
// everything it shares is immutable (the task, its inputs, its result) or
// copied (the attempt history).
func record(t *taskState) *taskRecord {
	return &taskRecord{
		Seq: t.seq, Task: t.task, Inputs: t.inputs, SubmittedAt: t.submittedAt,
		Status: t.status, Attempt: t.attempt, Retries: t.retries, Lost: t.lost,
		Attempts: slices.Clone(t.attempts), Result: t.result, FinishedAt: t.finishedAt,
		NotBefore: t.notBefore, UniqueKey: t.uniqueKey, UniqueUntil: t.uniqueUntil, Trace: t.trace, Priority: t.priority,
		RetryAt: t.retryAt,
	}
}

// statsChanged notes that w's statistics changed: they go in the next
// commit of task records. Only called in the actor.
func (m *Manager) statsChanged(w *workerState) {
	if m.cfg.journal == nil {
		return
	}
	if m.jworkers == nil {
		m.jworkers = map[string]*workerState{}
	}
	m.jworkers[w.stats.Name] = w
}

// afterCommit runs fn once everything journaled so far is durable (at once
// without a journal). Only called in the actor.
func (m *Manager) afterCommit(fn func(error)) {
	if m.cfg.journal == nil {
		fn(nil)
		return
	}
	m.jafter = append(m.jafter, fn)
	m.queueFlush()
}

func (m *Manager) queueFlush() {
	if !m.jflushQd && m.jwriting < m.jmax {
		m.jflushQd = true
		m.agent.Post(m.flushJournal)
	}
}

// flushJournal hands the pending records to the journal writer. It runs
// after the messages that were in the mailbox when the first record came,
// so a burst shares one commit (and a scheduling pass due runs first, so
// the assignments it makes ride the same commit); while a commit is being
// written the actor goes on, collecting the next batch. A local journal
// has one write in flight at a time; a replicated one up to jmax, handed
// to the log in order and completed in order, so commits and their
// effects stay in order either way.
func (m *Manager) flushJournal() {
	if m.jwriting >= m.jmax {
		m.jflushQd = false
		return // a running write's completion flushes again
	}
	if m.dirty {
		m.schedule() // while jflushQd holds, its records queue no flush of their own
	}
	m.jflushQd = false
	if m.holdsDirty {
		m.journalHolds()
	}
	dirty, after, deletes, puts := m.jbuf, m.jafter, m.jdelete, m.jputs
	m.jbuf, m.jafter, m.jdelete, m.jputs = nil, nil, nil, nil
	if len(dirty) == 0 && len(after) == 0 && len(deletes) == 0 && len(puts) == 0 {
		return
	}
	recs := make([]*taskRecord, len(dirty))
	for i, t := range dirty {
		t.journalDirty = false
		recs[i] = record(t)
	}
	// Worker statistics change with results: those of the workers that
	// changed go in the same commit (a workspace of a thousand workers
	// does not write a thousand for every result).
	var workers map[string]WorkerStats
	if len(recs) > 0 && len(m.jworkers) > 0 {
		workers = make(map[string]WorkerStats, len(m.jworkers))
		for name, w := range m.jworkers {
			st := w.stats
			st.InFlight, st.Connected = 0, false
			workers[name] = st
		}
		clear(m.jworkers)
	}
	m.jwriting++
	m.jwg.Add(1)
	if r := m.rep.Load(); r != nil {
		r.commit(recs, workers, deletes, puts, after)
		return
	}
	j := m.cfg.journal
	go func() {
		defer m.jwg.Done()
		start := time.Now()
		var err error
		if len(recs) > 0 || len(deletes) > 0 || len(puts) > 0 {
			err = j.writeTasks(recs, workers, deletes, puts)
		}
		m.agent.Post(func() { m.committed(len(recs), time.Since(start), after, err) })
	}()
}

// committed runs the effects of a commit, in the actor.
func (m *Manager) committed(records int, took time.Duration, after []func(error), err error) {
	m.jwriting--
	if records > 0 {
		m.journalStats.commits++
		m.journalStats.records += records
		m.journalStats.time += took
	}
	for _, fn := range after {
		fn(err)
	}
	if len(m.jbuf) > 0 || len(m.jafter) > 0 || len(m.jdelete) > 0 || len(m.jputs) > 0 {
		m.queueFlush()
	}
}
