package agent

import "time"

// WithJournal makes the manager durable: every task it accepts and every
// final result is written to j (in group commits, one per pass through the
// manager's mailbox) before the manager acts on it — before Submit
// returns, before a task is assigned, before waiters and observers hear of
// a result. A manager started on a journal resumes: finished tasks keep
// their results, the others (including those in flight when it stopped)
// are queued again. Retry budgets and worker statistics start afresh.
func WithJournal(j *Journal) ManagerOption {
	return func(c *managerConfig) error { c.journal = j; return nil }
}

// recover loads the journal's tasks. Called by Start, before the actor
// runs.
func (m *TaskManager) recover() error {
	recs, err := m.cfg.journal.loadTasks()
	if err != nil {
		return err
	}
	for _, r := range recs {
		t := &taskState{
			task: r.Task, inputs: r.Inputs, seq: r.Seq, status: r.Status, attempt: r.Attempt,
			submittedAt: r.SubmittedAt, finishedAt: r.FinishedAt, result: r.Result, heapIndex: -1,
			priority: r.Task.Priority,
		}
		m.seq = max(m.seq, r.Seq)
		m.tasks[t.task.ID] = t
		m.totals.submitted++
		switch {
		case r.Status.Final() && r.Result != nil:
			t.settled = true
			switch r.Status {
			case StatusCompleted:
				m.totals.succeeded++
				m.totals.latencyTotal += r.FinishedAt.Sub(r.SubmittedAt)
			case StatusFailed:
				m.totals.failed++
			default:
				m.totals.cancelled++
			}
		default:
			t.status = StatusPending
			m.ready.push(t)
		}
	}
	if len(recs) > 0 {
		m.agent.log.Info("resumed from journal", "tasks", len(recs), "pending", m.ready.n)
	}
	return nil
}

// journalTask records t's current state for the next commit. Only called
// in the actor.
func (m *TaskManager) journalTask(t *taskState) {
	if m.cfg.journal == nil {
		return
	}
	r := &taskRecord{
		Seq: t.seq, Task: t.task, Inputs: t.inputs, SubmittedAt: t.submittedAt,
		Status: t.status, Attempt: t.attempt, Result: t.result, FinishedAt: t.finishedAt,
	}
	if !r.Status.Final() {
		r.Status = StatusPending
	}
	m.jbuf = append(m.jbuf, r)
	m.queueFlush()
}

// afterCommit runs fn once everything journaled so far is durable (at once
// without a journal). Only called in the actor.
func (m *TaskManager) afterCommit(fn func(error)) {
	if m.cfg.journal == nil {
		fn(nil)
		return
	}
	m.jafter = append(m.jafter, fn)
	m.queueFlush()
}

func (m *TaskManager) queueFlush() {
	if !m.jflushQd {
		m.jflushQd = true
		m.agent.exec(m.flushJournal)
	}
}

// flushJournal writes the pending records in one transaction, then runs
// what waited for them. It runs after the messages that were in the
// mailbox when the first record came, so a burst shares one commit.
func (m *TaskManager) flushJournal() {
	m.jflushQd = false
	recs, after := m.jbuf, m.jafter
	m.jbuf, m.jafter = nil, nil
	var err error
	if len(recs) > 0 {
		start := time.Now()
		err = m.cfg.journal.writeTasks(recs)
		m.journalStats.commits++
		m.journalStats.records += len(recs)
		m.journalStats.time += time.Since(start)
	}
	for _, fn := range after {
		fn(err)
	}
}
