package playground

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// The playground keeps its graph in the task manager's journal: every task
// added (in order, with its parent for child tasks) and every task
// cancelled before it reached the manager. Outcomes come from the
// manager's own records. On restart the graph is rebuilt from both before
// the manager starts, so no completion can arrive for a task the
// playground does not know yet.
const (
	bucketGraph     = "playground/graph"
	bucketCancelled = "playground/cancelled"
)

type graphRecord struct {
	Task   messages.Task `msgpack:"task"`
	Parent string        `msgpack:"parent,omitempty"`
}

// journalNodes records a prepared batch before it is acted on. Called with
// p.mu held.
func (p *Playground) journalNodes(tasks []Task, parent *node) error {
	if p.journal == nil {
		return nil
	}
	kvs := make([][2][]byte, len(tasks))
	for i, t := range tasks {
		p.gseq++
		var rec graphRecord
		rec.Task = t
		if parent != nil {
			rec.Parent = parent.task.ID
		}
		v, err := messages.MarshalValue(&rec)
		if err != nil {
			return err
		}
		kvs[i] = [2][]byte{binary.BigEndian.AppendUint64(nil, p.gseq), v}
	}
	return p.journal.PutAll(bucketGraph, kvs)
}

func (p *Playground) journalCancel(id, reason string) error {
	if p.journal == nil {
		return nil
	}
	return p.journal.Put(bucketCancelled, []byte(id), []byte(reason))
}

// restore rebuilds the graph from the journal. It returns the tasks that
// are ready to run and that the manager does not know (to be submitted
// once it runs). Called by Start before the manager starts.
func (p *Playground) restore() ([]task.Submission, error) {
	outcomes, err := p.journal.Outcomes()
	if err != nil {
		return nil, err
	}
	cancelled := map[string]string{}
	if err := p.journal.ForEach(bucketCancelled, func(k, v []byte) error {
		cancelled[string(k)] = string(v)
		return nil
	}); err != nil {
		return nil, err
	}
	var order []*node
	err = p.journal.ForEach(bucketGraph, func(k, v []byte) error {
		var rec graphRecord
		if err := messages.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("%w: graph record %x: %w", task.ErrJournalCorrupt, k, err)
		}
		p.gseq = max(p.gseq, binary.BigEndian.Uint64(k))
		n := &node{task: rec.Task}
		if rec.Parent != "" {
			n.parent = p.nodes[rec.Parent]
		}
		p.nodes[rec.Task.ID] = n
		order = append(order, n)
		p.bumpSeq(rec.Task.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(order) == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Link the graph as it was.
	for _, n := range order {
		for _, id := range n.task.Dependencies {
			d := p.nodes[id]
			if d == nil {
				return nil, fmt.Errorf("%w: task %q depends on unknown %q", task.ErrJournalCorrupt, n.task.ID, id)
			}
			n.deps = append(n.deps, d)
			n.pendingDeps++
			d.dependents = append(d.dependents, n)
		}
		if pa := n.parent; pa != nil {
			pa.children = append(pa.children, n)
			pa.pendingChildren++
		}
	}
	// Tasks the manager holds run again there: they are queued.
	for _, n := range order {
		if o, ok := outcomes[n.task.ID]; ok && !o.Status.Final() {
			n.state = stateQueued
		}
	}
	// Replay the outcomes in the order the tasks were added: dependents
	// and parents follow as they did.
	var ready []task.Submission
	for _, n := range order {
		if reason, ok := cancelled[n.task.ID]; ok && !n.state.final() {
			p.fail(n, fmt.Errorf("%w: %q: %s", ErrCancelled, n.task.ID, reason), nil)
			continue
		}
		o, ok := outcomes[n.task.ID]
		if !ok || !o.Status.Final() || n.state.final() {
			continue
		}
		n.state = stateQueued
		ev := task.EventCompleted
		switch o.Status {
		case task.StatusFailed:
			ev = task.EventFailed
		case task.StatusCancelled:
			ev = task.EventCancelled
		}
		ready = append(ready, p.apply(n, o.Result, ev)...)
	}
	// Hand over what is ready and not already the manager's.
	var out []task.Submission
	for _, s := range ready {
		if _, known := outcomes[s.Task.ID]; !known {
			out = append(out, s)
		}
	}
	for _, n := range order {
		if n.state == stateWaiting && n.pendingDeps == 0 {
			if _, known := outcomes[n.task.ID]; !known {
				out = append(out, p.queue(n))
			}
		}
	}
	return out, nil
}

// bumpSeq keeps generated IDs ("task-N") from colliding with restored ones.
func (p *Playground) bumpSeq(id string) {
	if n, ok := strings.CutPrefix(id, "task-"); ok {
		if v, err := strconv.ParseUint(n, 10, 64); err == nil {
			p.seq = max(p.seq, v)
		}
	}
}
