package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/ceylon-go/ceylon/agent"
)

// ErrReadOnly is returned by [Tx.Put], [Tx.Submit] and [Tx.Cancel] in a
// read-only transaction ([Manager.View]).
var ErrReadOnly = errors.New("task: read-only transaction")

// Tx is the manager seen from inside its actor: by a [Hook], or by the
// function given to [Manager.Update] or [Manager.View]. What it changes
// (tasks submitted or cancelled, records put) rides the manager's next
// group commit, in the same journal transaction as the task records it
// goes with, so a layer above the manager (the playground's dependency
// graph) is durable exactly when the tasks are, without a disk write of
// its own. A Tx is valid only during the call it was given to; it must
// not be kept or used from another goroutine.
type Tx struct {
	m        *Manager
	readOnly bool
	puts     []journalPut
	after    []func(*Tx, error)
}

// journalPut is one record of a layer above the manager.
type journalPut struct {
	bucket     string
	key, value []byte
}

// Submit validates and queues a batch atomically, as [Manager.SubmitAll]
// does: if any task is rejected, none is queued.
func (tx *Tx) Submit(batch []Submission) error {
	if tx.readOnly {
		return ErrReadOnly
	}
	return tx.m.accept(batch)
}

// Cancel cancels a task the manager holds, as [Manager.Cancel] does.
func (tx *Tx) Cancel(id, reason string) error {
	if tx.readOnly {
		return ErrReadOnly
	}
	t := tx.m.tasks[id]
	if t == nil {
		return fmt.Errorf("%w: %q", ErrUnknownTask, id)
	}
	tx.m.cancel(t, reason)
	return nil
}

// Standby is nil while the manager leads (always, without replication);
// on a standby it is an error wrapping [ErrNotLeader] that names the
// leader when known. A layer's reads answer with it on a standby, whose
// state is empty.
func (tx *Tx) Standby() error {
	if tx.m.leading {
		return nil
	}
	return tx.m.notLeader()
}

// Task returns what the manager knows of a task, as [Manager.Task] does.
func (tx *Tx) Task(id string) (Info, bool) {
	t := tx.m.tasks[id]
	if t == nil {
		return Info{}, false
	}
	return t.info(), true
}

// Put stores value under key in bucket (a layer's own, created on first
// use; the manager's own buckets are refused) in the next commit. Without
// a journal it does nothing. value and key must not change afterwards.
func (tx *Tx) Put(bucket string, key, value []byte) error {
	if tx.readOnly {
		return ErrReadOnly
	}
	if err := checkBucket(bucket); err != nil {
		return err
	}
	if tx.m.cfg.journal != nil {
		tx.puts = append(tx.puts, journalPut{bucket, key, value})
	}
	return nil
}

// AfterCommit runs fn in the manager's actor once what this Tx changed is
// durable (at once without a journal), with a Tx of its own and the
// commit's error: a layer acts on a change (a cancel, say) only once it is
// durable. It fails with [ErrReadOnly] in a View.
func (tx *Tx) AfterCommit(fn func(tx *Tx, err error)) error {
	if tx.readOnly {
		return ErrReadOnly
	}
	tx.after = append(tx.after, fn)
	return nil
}

// commit hands what fn put to the journal's next commit, and what waits
// for it.
func (tx *Tx) commit() {
	m := tx.m
	if len(tx.puts) > 0 {
		m.jputs = append(m.jputs, tx.puts...)
		tx.puts = nil
		m.queueFlush()
	}
	for _, fn := range tx.after {
		m.afterCommit(func(err error) {
			next := &Tx{m: m}
			fn(next, err)
			next.commit()
		})
	}
	tx.after = nil
}

// Update runs fn in the manager's actor with a [Tx], then waits until
// everything it changed is durable (at once without a journal). On a
// standby among replicated managers it fails with [ErrNotLeader] (naming
// the leader when known) and fn does not run. If fn
// fails, what it put is dropped (tasks it submitted stay: a submission
// takes effect when Submit returns nil). fn must be quick; it runs
// between the manager's other work.
func (m *Manager) Update(ctx context.Context, fn func(tx *Tx) error) error {
	_, err := agent.CallDeferred(ctx, m.agent, func(reply func(struct{}, error)) {
		if !m.leading { // a standby changes nothing: the leader does
			reply(struct{}{}, m.notLeader())
			return
		}
		tx := &Tx{m: m}
		if err := fn(tx); err != nil {
			reply(struct{}{}, err)
			return
		}
		tx.commit()
		m.afterCommit(func(err error) { reply(struct{}{}, err) })
	})
	return err
}

// View runs fn in the manager's actor with a read-only [Tx]: a consistent
// view of the manager's state and of what a layer above keeps in the same
// actor.
func (m *Manager) View(ctx context.Context, fn func(tx *Tx) error) error {
	_, err := agent.Call(ctx, m.agent, func() (struct{}, error) {
		return struct{}{}, fn(&Tx{m: m, readOnly: true})
	})
	return err
}

// Recovery is what a manager's journal holds, for a layer above the
// manager to rebuild its own state from ([WithRestore]): before a
// restarted manager runs, or, replicated, as it takes the lead.
type Recovery struct {
	m  *Manager
	tx *Tx
}

// Tx is nil when the manager starts (it does not run yet: the layer hands
// over what it must once it does). A replicated manager rebuilds its
// state each time it takes the lead, in its actor: Tx is then live, and
// what the layer submits or puts with it rides the term's first commit.
func (r *Recovery) Tx() *Tx { return r.tx }

// Task returns what the journal says about a task (final tasks keep their
// result; the others are pending again).
func (r *Recovery) Task(id string) (Info, bool) {
	t := r.m.tasks[id]
	if t == nil {
		return Info{}, false
	}
	return t.info(), true
}

// ForEach calls fn for every record put in bucket ([Tx.Put]), in key
// order. key and value are valid only during the call (copy what you
// keep).
func (r *Recovery) ForEach(bucket string, fn func(key, value []byte) error) error {
	return r.m.cfg.journal.forEach(bucket, fn)
}

// WithRestore sets a function that rebuilds a layer's state from the
// journal when the manager starts: it runs after the manager has read the
// journal and before its agent starts, so no event can come for a task
// the layer does not know yet. An error stops Start.
//
// With [WithReplication] it runs instead each time the manager takes the
// lead (in its actor, after the manager's own state is rebuilt and before
// any event of the term; [Recovery.Tx] is live): fn must then drop
// whatever the layer held before. An error is logged, and the manager
// leads without the layer's state.
func WithRestore(fn func(r *Recovery) error) ManagerOption {
	return func(c *managerConfig) error {
		if fn == nil {
			return errors.New("task: nil restore function")
		}
		c.restore = fn
		return nil
	}
}
