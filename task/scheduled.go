package task

import (
	"container/heap"
	"time"
)

// scheduledHeap holds the tasks that wait for their time (ProcessAt,
// ProcessIn), soonest first; the manager's sweep moves the due ones to the
// ready queues. A task cancelled while it waits stays until it is due and
// is skipped then. Owned by the actor.
type scheduledHeap []*taskState

func (h scheduledHeap) Len() int           { return len(h) }
func (h scheduledHeap) Less(i, j int) bool { return h[i].notBefore.Before(h[j].notBefore) }
func (h scheduledHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *scheduledHeap) Push(x any)        { *h = append(*h, x.(*taskState)) }
func (h *scheduledHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// add queues t until its notBefore.
func (h *scheduledHeap) add(t *taskState) { heap.Push(h, t) }

// due takes out the tasks whose time has come.
func (h *scheduledHeap) due(now time.Time) []*taskState {
	var out []*taskState
	for h.Len() > 0 && !(*h)[0].notBefore.After(now) {
		out = append(out, heap.Pop(h).(*taskState))
	}
	return out
}

// releaseRetries queues the restored retrying tasks that are due (a
// retry's delay is journaled: a restart, or a new leader, does not cut it
// short). Only called in the actor (sweep).
func (m *Manager) releaseRetries(now time.Time) {
	i := 0
	for ; i < len(m.retryLater) && !m.retryLater[i].retryAt.After(now); i++ {
		t := m.retryLater[i]
		m.retryLater[i] = nil
		if t.status == StatusRetrying && m.tasks[t.task.ID] == t {
			t.status, t.retryAt = StatusPending, time.Time{}
			m.ready.push(t)
			m.markDirty()
		}
	}
	m.retryLater = m.retryLater[i:]
}
