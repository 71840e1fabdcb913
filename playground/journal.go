package playground

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// The playground keeps its graph in the task manager's journal, in the
// manager's own commits: every task added (in order, with its parent for
// child tasks) and every task cancelled before it reached the manager.
// Outcomes are the manager's own records. On restart the manager hands
// both to restore before it starts, so no completion can arrive for a task
// the playground does not know yet.
const (
	bucketGraph     = "playground/graph"
	bucketCancelled = "playground/cancelled"
)

type graphRecord struct {
	Task   messages.Task `msgpack:"task"`
	Parent string        `msgpack:"parent,omitempty"`
}

// journalNodes records a prepared batch in tx's commit. While restoring
// (tx nil) the records wait for the first commit after the start. Runs in
// the manager's actor.
func (p *Playground) journalNodes(tx *task.Tx, tasks []Task, parent *node) error {
	if p.journal == nil {
		return nil
	}
	for _, t := range tasks {
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
		key := binary.BigEndian.AppendUint64(nil, p.gseq)
		if tx == nil {
			p.replay = append(p.replay, [2][]byte{key, v})
			continue
		}
		if err := tx.Put(bucketGraph, key, v); err != nil {
			return err
		}
	}
	return nil
}

func (p *Playground) journalCancel(tx *task.Tx, id, reason string) error {
	if p.journal == nil {
		return nil
	}
	return tx.Put(bucketCancelled, []byte(id), []byte(reason))
}

// restore rebuilds the graph from the journal, when the manager starts and
// before it runs. It keeps the tasks that are ready to run and that the
// manager does not know, to be handed over once the playground runs.
// Among replicated managers it runs each time this one takes the lead,
// in the manager's actor, and hands them over at once (r.Tx).
func (p *Playground) restore(r *task.Recovery) error {
	p.dropGraph(fmt.Errorf("%w: the task manager rebuilt its state", task.ErrNotLeader))
	if r.Tx() != nil {
		p.standby = false // it leads (with an empty graph if the journal's cannot be read)
	}
	if err := p.rebuild(r); err != nil {
		p.dropGraph(err) // no part of a graph
		return err
	}
	if tx := r.Tx(); tx != nil {
		p.handOver(tx)
	}
	return nil
}

// handOver journals the graph records made while restoring and submits
// the restored tasks that are ready. Runs in the manager's actor.
func (p *Playground) handOver(tx *task.Tx) {
	for _, kv := range p.replay {
		if err := tx.Put(bucketGraph, kv[0], kv[1]); err != nil {
			p.cfg.logger.Error("playground: journaling restored child tasks", "err", err)
			break
		}
	}
	p.submit(tx, p.resume)
	p.resume, p.replay = nil, nil
}

// onLeadership follows a replicated manager's lead: losing it, the graph
// is dropped (the next leader rebuilds it from the replicated journal) and
// whoever waits hears task.ErrNotLeader; taking it, restore has rebuilt
// the graph already. Runs in the manager's actor.
func (p *Playground) onLeadership(leading bool, term uint64) {
	if !leading {
		p.standby = true
		p.dropGraph(fmt.Errorf("%w: the task manager lost the lead (term %d)", task.ErrNotLeader, term))
	}
}

// dropGraph forgets the graph; the waiters of tasks not final are woken
// with err. Runs in the manager's actor.
func (p *Playground) dropGraph(err error) {
	for id, n := range p.nodes {
		if n.done != nil && !n.state.final() {
			n.err = err
			n.result = &Result{TaskID: id, ErrorMessage: err.Error()}
			close(n.done)
			n.done = nil
		}
	}
	p.nodes = map[string]*node{}
	p.seq, p.gseq, p.finished, p.failed = 0, 0, 0, 0
	p.resume, p.replay = nil, nil
}

// rebuild reads the graph back from the journal (restore).
func (p *Playground) rebuild(r *task.Recovery) error {
	cancelled := map[string]string{}
	if err := r.ForEach(bucketCancelled, func(k, v []byte) error {
		cancelled[string(k)] = string(v)
		return nil
	}); err != nil {
		return err
	}
	var order []*node
	err := r.ForEach(bucketGraph, func(k, v []byte) error {
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
	if err != nil || len(order) == 0 {
		return err
	}
	// Link the graph as it was.
	for _, n := range order {
		for _, id := range n.task.Dependencies {
			d := p.nodes[id]
			if d == nil {
				return fmt.Errorf("%w: task %q depends on unknown %q", task.ErrJournalCorrupt, n.task.ID, id)
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
		if info, ok := r.Task(n.task.ID); ok && !info.Status.Final() {
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
		info, ok := r.Task(n.task.ID)
		if !ok || !info.Status.Final() || n.state.final() {
			continue
		}
		n.state = stateQueued
		ev := task.EventCompleted
		switch info.Status {
		case task.StatusFailed:
			ev = task.EventFailed
		case task.StatusCancelled:
			ev = task.EventCancelled
		}
		n.attempts = info.Attempts
		ready = append(ready, p.apply(nil, n, info.Result, ev)...)
	}
	// Hand over what is ready and not already the manager's, but not a
	// task whose cancel was replayed after its dependency released it.
	for _, s := range ready {
		if p.nodes[s.Task.ID].state.final() {
			continue
		}
		if _, known := r.Task(s.Task.ID); !known {
			p.resume = append(p.resume, s)
		}
	}
	for _, n := range order {
		if n.state == stateWaiting && n.pendingDeps == 0 {
			if _, known := r.Task(n.task.ID); !known {
				p.resume = append(p.resume, p.queue(n))
			}
		}
	}
	return nil
}

// bumpSeq keeps generated IDs ("task-N") from colliding with restored ones.
func (p *Playground) bumpSeq(id string) {
	if n, ok := strings.CutPrefix(id, "task-"); ok {
		if v, err := strconv.ParseUint(n, 10, 64); err == nil {
			p.seq = max(p.seq, v)
		}
	}
}
