package playground

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// nodeState is where a task is in the playground's graph.
type nodeState int

const (
	stateWaiting   nodeState = iota // dependencies pending
	stateQueued                     // handed to the task manager
	stateChildren                   // ran; waiting for its child tasks
	stateCompleted                  // final
	stateFailed                     // final
	stateCancelled                  // final
)

func (s nodeState) final() bool { return s >= stateCompleted }

// node is one task in the graph, owned by the manager's actor.
type node struct {
	task            Task
	state           nodeState
	pendingDeps     int
	deps            []*node
	dependents      []*node
	parent          *node
	children        []*node
	pendingChildren int
	result          *Result
	attempts        []task.AttemptInfo // from the manager, once final
	err             error
	done            chan struct{} // made by the first Wait; closed when final
	addedAt         time.Time
	finishedAt      time.Time
}

// prepare fills in what a playground task may omit and checks the batch:
// IDs unique (in the batch and the playground), every dependency known,
// no cycle. It changes nothing in the playground. Runs in the manager's actor.
func (p *Playground) prepare(tasks []Task, parent *node) ([]Task, error) {
	out := make([]Task, len(tasks))
	batch := make(map[string]int, len(tasks))
	for i, t := range tasks {
		if t.ID == "" { // children have theirs from Spawn (task.Job)
			p.seq++
			t.ID = fmt.Sprintf("task-%d", p.seq)
		}
		t = withDefaults(t)
		if parent != nil {
			t.Parent = parent.task.ID
		}
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if err := p.mgr.CheckSize(t, nil); err != nil {
			return nil, err
		}
		if _, dup := batch[t.ID]; dup || p.nodes[t.ID] != nil {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateTask, t.ID)
		}
		batch[t.ID] = i
		out[i] = t
	}
	for _, t := range out {
		for _, d := range t.Dependencies {
			if _, ok := batch[d]; !ok && p.nodes[d] == nil {
				return nil, fmt.Errorf("%w: task %q depends on %q", ErrUnknownDependency, t.ID, d)
			}
		}
	}
	if cycle := findCycle(out, batch); cycle != nil {
		return nil, fmt.Errorf("%w: %s", ErrCycle, strings.Join(cycle, " -> "))
	}
	return out, nil
}

// withDefaults fills in what a task may omit (not its ID).
func withDefaults(t Task) Task {
	if t.Description == "" {
		t.Description = t.Name
	}
	if t.Description == "" {
		t.Description = t.Type
	}
	return t
}

// holds reports whether the playground holds every task of the batch,
// each as it is given (the same ID, the same definition): a batch sent
// again. Runs in the manager's actor.
func (p *Playground) holds(tasks []Task) bool {
	if len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		n := p.nodes[t.ID]
		if n == nil || n.task.Parent != "" {
			return false
		}
		a, err1 := messages.MarshalValue(withDefaults(t))
		b, err2 := messages.MarshalValue(n.task)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}

// findCycle returns a dependency cycle within the batch, or nil. Tasks
// already in the playground cannot depend on new ones, so any cycle lies
// inside the batch.
func findCycle(tasks []Task, index map[string]int) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := make([]int, len(tasks))
	type frame struct{ i, next int }
	for start := range tasks {
		if mark[start] != unseen {
			continue
		}
		stack := []frame{{start, 0}}
		mark[start] = onPath
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			deps := tasks[f.i].Dependencies
			if f.next == len(deps) {
				mark[f.i] = done
				stack = stack[:len(stack)-1]
				continue
			}
			j, inBatch := index[deps[f.next]]
			f.next++
			if !inBatch || mark[j] == done {
				continue
			}
			if mark[j] == onPath {
				var cycle []string
				for k := len(stack) - 1; k >= 0; k-- {
					cycle = append([]string{tasks[stack[k].i].ID}, cycle...)
					if stack[k].i == j {
						break
					}
				}
				// Edges point from a task to its dependency.
				return append(cycle, tasks[j].ID)
			}
			mark[j] = onPath
			stack = append(stack, frame{j, 0})
		}
	}
	return nil
}

// insert adds a prepared batch to the graph and returns the submissions of
// the tasks that can run now. Runs in the manager's actor.
func (p *Playground) insert(tasks []Task, parent *node) []task.Submission {
	now := time.Now()
	fresh := make([]*node, len(tasks))
	for i, t := range tasks {
		n := &node{task: t, addedAt: now, parent: parent}
		if len(t.Dependencies) > 0 {
			n.deps = make([]*node, 0, len(t.Dependencies))
		}
		p.nodes[t.ID] = n
		fresh[i] = n
		if parent != nil {
			parent.children = append(parent.children, n)
			parent.pendingChildren++
		}
	}
	bad := map[*node]*node{} // a task whose dependency already failed
	for _, n := range fresh {
		for _, id := range n.task.Dependencies {
			d := p.nodes[id]
			n.deps = append(n.deps, d)
			switch {
			case d.state == stateCompleted:
			case d.state.final():
				bad[n] = d
			default:
				n.pendingDeps++
				d.dependents = append(d.dependents, n)
			}
		}
	}
	var ready []task.Submission
	for _, n := range fresh {
		if n.pendingDeps == 0 && bad[n] == nil {
			ready = append(ready, p.queue(n))
		}
	}
	for n, d := range bad {
		p.fail(n, dependencyError(n, d), nil)
	}
	return ready
}

// queue marks n as handed to the manager and builds its submission, with
// its dependencies' outputs (and their children's) as inputs. Empty outputs
// are left out, so tasks whose dependencies return nothing cost no map.
func (p *Playground) queue(n *node) task.Submission {
	n.state = stateQueued
	var inputs map[string][]byte
	for _, d := range n.deps {
		inputs = collectOutputs(d, inputs)
	}
	return task.Submission{Task: n.task, Inputs: inputs, DepsMet: true}
}

func collectOutputs(n *node, into map[string][]byte) map[string][]byte {
	if n.result != nil && len(n.result.Output) > 0 {
		if into == nil {
			into = make(map[string][]byte, len(n.deps)+1)
		}
		into[n.task.ID] = n.result.Output
	}
	for _, c := range n.children {
		into = collectOutputs(c, into)
	}
	return into
}

func dependencyError(n, dep *node) error {
	return fmt.Errorf("task %q: %w: %q: %w", n.task.ID, ErrDependencyFailed, dep.task.ID, dep.err)
}

// complete makes n completed and returns the submissions of the tasks that
// became ready. Runs in the manager's actor.
func (p *Playground) complete(n *node) []task.Submission {
	var ready []task.Submission
	for stack := []*node{n}; len(stack) > 0; {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p.finalize(n, stateCompleted)
		for _, d := range n.dependents {
			d.pendingDeps--
			if d.pendingDeps == 0 && d.state == stateWaiting {
				ready = append(ready, p.queue(d))
			}
		}
		n.dependents = nil // done with: let the memory go
		if pa := n.parent; pa != nil {
			pa.pendingChildren--
			if pa.pendingChildren == 0 && pa.state == stateChildren {
				stack = append(stack, pa)
			}
		}
	}
	return ready
}

// fail makes n failed with err, and every task waiting on it (its
// dependents, transitively, and its parent) failed too. Runs in the
// manager's actor.
func (p *Playground) fail(n *node, err error, r *Result) {
	type item struct {
		n   *node
		err error
		r   *Result
	}
	for stack := []item{{n, err, r}}; len(stack) > 0; {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := it.n
		if n.state.final() {
			continue
		}
		n.err = it.err
		n.result = it.r
		if n.result == nil {
			n.result = &Result{TaskID: n.task.ID, ErrorMessage: it.err.Error()}
		}
		st := stateFailed
		if errors.Is(it.err, ErrCancelled) {
			st = stateCancelled
		}
		p.finalize(n, st)
		for _, d := range n.dependents {
			if !d.state.final() && d.state == stateWaiting {
				stack = append(stack, item{d, dependencyError(d, n), nil})
			}
		}
		if pa := n.parent; pa != nil && pa.state == stateChildren {
			perr := fmt.Errorf("task %q: %w: %q: %w", pa.task.ID, ErrChildFailed, n.task.ID, n.err)
			pr := *pa.result // the parent's own run succeeded; its task did not
			pr.Success, pr.ErrorMessage = false, perr.Error()
			stack = append(stack, item{pa, perr, &pr})
		}
	}
}

func (p *Playground) finalize(n *node, st nodeState) {
	n.state = st
	n.deps = nil
	n.finishedAt = time.Now()
	if n.done != nil {
		close(n.done)
	}
	p.finished++
	if st != stateCompleted {
		p.failed++
	}
}
