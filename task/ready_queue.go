package task

import (
	"container/heap"
	"time"
)

// The ready queue: the tasks waiting for a worker, by class, each class
// in order of priority, then submission.

// readyQueues holds the tasks waiting for a worker, by class.
type readyQueues struct {
	classes map[classKey]*classQueue
	n       int
}

func (r *readyQueues) push(t *taskState) {
	if r.classes == nil {
		r.classes = map[classKey]*classQueue{}
	}
	k, caps := classKeyOf(&t.task)
	q := r.classes[k]
	if q == nil {
		q = &classQueue{key: k, caps: caps}
		r.classes[k] = q
	}
	t.readyAt = time.Now()
	q.push(t)
	r.n++
}

func (r *readyQueues) pop(q *classQueue) *taskState {
	t := q.head()
	r.remove(t)
	return t
}

// remove takes t out of its queue (a cancel, or its turn came).
func (r *readyQueues) remove(t *taskState) {
	q := t.class
	if q == nil || t.queueIndex < 0 {
		return
	}
	q.remove(t)
	r.n--
	if q.Len() == 0 && r.classes[q.key] == q {
		delete(r.classes, q.key)
	}
}

// classQueue holds the ready tasks of one class, in order (inClass). They
// nearly always come in that order (new submissions, of one priority), so
// those go to the back of a FIFO, in constant time; one that comes out of
// order (a retry, a task whose dependencies just finished) or with another
// priority than the FIFO's goes to a heap beside it. The head is the first of the two
// heads. A queued task's queueIndex is its place in the FIFO (inFIFO) or
// in the heap.
type classQueue struct {
	key  classKey
	caps []string
	n    int
	// fifo[first:] holds tasks in order, all of the priority lastPrio; a
	// task removed from the middle (a cancel) leaves a nil (one of holes),
	// skipped when the front reaches it.
	fifo     []*taskState
	first    int
	holes    int
	lastPrio int    // the priority of the FIFO's tasks
	lastSeq  uint64 // the submission of the last one appended (it may have left since)
	late     lateHeap
}

// inClass orders the tasks of one class: priority, then submission.
func inClass(a, b *taskState) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	return a.seq < b.seq
}

// before orders class heads across classes: priority, then difficulty
// (hardest first), then submission.
func before(a, b *taskState) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if a.task.Difficulty != b.task.Difficulty {
		return a.task.Difficulty > b.task.Difficulty
	}
	return a.seq < b.seq
}

func (q *classQueue) Len() int { return q.n }

// head is the first task of the class; the queue is not empty.
func (q *classQueue) head() *taskState {
	var f *taskState
	if q.first < len(q.fifo) {
		f = q.fifo[q.first]
	}
	if len(q.late) > 0 && (f == nil || inClass(q.late[0], f)) {
		return q.late[0]
	}
	return f
}

func (q *classQueue) push(t *taskState) {
	t.class = q
	q.n++
	if q.first == len(q.fifo) || t.priority == q.lastPrio && t.seq > q.lastSeq {
		t.inFIFO, t.queueIndex = true, len(q.fifo)
		q.fifo = append(q.fifo, t)
		q.lastPrio, q.lastSeq = t.priority, t.seq
		return
	}
	t.inFIFO = false
	heap.Push(&q.late, t)
}

func (q *classQueue) remove(t *taskState) {
	q.n--
	t.class = nil
	if !t.inFIFO {
		heap.Remove(&q.late, t.queueIndex)
		return
	}
	i := t.queueIndex
	t.queueIndex, t.inFIFO = -1, false
	q.fifo[i] = nil
	q.holes++
	for q.first < len(q.fifo) && q.fifo[q.first] == nil {
		q.first++
		q.holes--
	}
	switch gone := q.first + q.holes; {
	case q.first == len(q.fifo): // empty: start again at the front
		q.fifo, q.first, q.holes = q.fifo[:0], 0, 0
	case gone >= 1024 && gone > len(q.fifo)/2:
		// Half of it is gone, at the front or in holes behind a head that
		// stays (a paused type): move the rest up, so that the slice
		// holds what is queued, not every task the class ever had.
		n := 0
		for _, u := range q.fifo[q.first:] {
			if u != nil {
				u.queueIndex = n
				q.fifo[n] = u
				n++
			}
		}
		clear(q.fifo[n:])
		q.fifo, q.first, q.holes = q.fifo[:n], 0, 0
	}
}

// lateHeap is the heap of tasks that came out of order (inClass).
type lateHeap []*taskState

func (h lateHeap) Len() int           { return len(h) }
func (h lateHeap) Less(i, j int) bool { return inClass(h[i], h[j]) }
func (h lateHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].queueIndex = i
	h[j].queueIndex = j
}
func (h *lateHeap) Push(x any) {
	t := x.(*taskState)
	t.queueIndex = len(*h)
	*h = append(*h, t)
}
func (h *lateHeap) Pop() any {
	old := *h
	n := len(old) - 1
	t := old[n]
	old[n] = nil
	*h = old[:n]
	t.queueIndex = -1
	return t
}
