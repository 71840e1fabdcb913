package task

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"weak"

	"github.com/ceylon-go/ceylon/messages"
)

// TestReadyQueueOrder checks the ready queue against a sorted list under
// random pushes (mostly in order, some late: retries, released
// dependents, other priorities), pops and removals (cancels).
func TestReadyQueueOrder(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		var r readyQueues
		var model []*taskState
		var out []*taskState // popped or removed, may come back
		seq := uint64(0)
		for step := range 5000 {
			switch op := rng.IntN(10); {
			case op < 5: // a new submission
				seq++
				ts := &taskState{task: messages.Task{ID: "t", Type: "x"}, seq: seq, queueIndex: -1}
				if rng.IntN(8) == 0 {
					ts.priority = rng.IntN(3)
				}
				r.push(ts)
				model = append(model, ts)
			case op < 6 && len(out) > 0: // one comes back (a retry)
				i := rng.IntN(len(out))
				ts := out[i]
				out = slices.Delete(out, i, i+1)
				r.push(ts)
				model = append(model, ts)
			case op < 9 && len(model) > 0: // the head goes to a worker
				first := 0
				for i, ts := range model {
					if inClass(ts, model[first]) {
						first = i
					}
				}
				want := model[first]
				got := r.pop(r.classes[classKey{typ: "x"}])
				if got != want {
					t.Fatalf("seed %d step %d: popped seq %d priority %d, want seq %d priority %d",
						seed, step, got.seq, got.priority, want.seq, want.priority)
				}
				model = slices.Delete(model, first, first+1)
				out = append(out, got)
			case len(model) > 0: // a cancel
				i := rng.IntN(len(model))
				r.remove(model[i])
				out = append(out, model[i])
				model = slices.Delete(model, i, i+1)
			}
			if r.n != len(model) {
				t.Fatalf("seed %d step %d: %d queued, want %d", seed, step, r.n, len(model))
			}
			if q := r.classes[classKey{typ: "x"}]; (q == nil) != (len(model) == 0) {
				t.Fatalf("seed %d step %d: class present %v with %d queued", seed, step, q != nil, len(model))
			}
		}
		for _, ts := range out {
			if ts.class != nil || ts.queueIndex != -1 {
				t.Fatalf("seed %d: a task out of the queue still points into it", seed)
			}
		}
	}
}

// TestReadyQueueCompacts checks that a long-lived class's FIFO does not
// keep the slots of tasks long gone.
func TestReadyQueueCompacts(t *testing.T) {
	var r readyQueues
	seq := uint64(0)
	push := func() {
		seq++
		r.push(&taskState{task: messages.Task{Type: "x"}, seq: seq, queueIndex: -1})
	}
	push()
	for range 100_000 {
		push()
		r.pop(r.classes[classKey{typ: "x"}])
	}
	q := r.classes[classKey{typ: "x"}]
	if cap(q.fifo) > 4096 || q.Len() != 1 {
		t.Fatalf("after 100,000 tasks through a queue of one: %d queued, FIFO of %d slots", q.Len(), cap(q.fifo))
	}
}

// TestReadyQueueHoldsNoTaskItLost checks that a task cancelled out of the
// queue is not kept alive by it, and that the holes cancels leave behind
// a head that stays (a paused type) do not pile up.
func TestReadyQueueHoldsNoTaskItLost(t *testing.T) {
	var r readyQueues
	seq := uint64(1)
	r.push(&taskState{task: messages.Task{Type: "x"}, seq: seq, queueIndex: -1}) // it stays
	big := &taskState{task: messages.Task{Type: "x"}, seq: 2, queueIndex: -1, inputs: map[string][]byte{"blob": make([]byte, 16<<20)}}
	r.push(big)
	r.remove(big)
	gone := weak.Make(big)
	big = nil
	runtime.GC()
	runtime.GC()
	if gone.Value() != nil {
		t.Error("a cancelled task is still reachable from its queue")
	}
	seq = 2
	for range 100_000 {
		seq++
		ts := &taskState{task: messages.Task{Type: "x"}, seq: seq, queueIndex: -1}
		r.push(ts)
		r.remove(ts)
	}
	if q := r.classes[classKey{typ: "x"}]; q.Len() != 1 || cap(q.fifo) > 4096 {
		t.Fatalf("after 100,000 tasks cancelled behind a head that stays: %d queued, FIFO of %d slots", q.Len(), cap(q.fifo))
	}
}

// TestReadyQueueOtherPriorities checks that a task of another priority
// than the rest does not send those after it to the heap.
func TestReadyQueueOtherPriorities(t *testing.T) {
	var r readyQueues
	seq := uint64(0)
	push := func(prio int) {
		seq++
		r.push(&taskState{task: messages.Task{Type: "x"}, seq: seq, priority: prio, queueIndex: -1})
	}
	push(5)
	push(1) // a low one, behind
	for range 1000 {
		push(5)
	}
	q := r.classes[classKey{typ: "x"}]
	if len(q.late) != 1 {
		t.Fatalf("%d tasks in the heap, want only the one of another priority", len(q.late))
	}
	for range 1001 {
		if got := r.pop(q); got.priority != 5 {
			t.Fatalf("popped priority %d before the priority-5 tasks", got.priority)
		}
	}
	if got := r.pop(q); got.priority != 1 {
		t.Fatalf("last popped priority %d, want 1", got.priority)
	}
}
