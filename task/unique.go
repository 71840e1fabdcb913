package task

import (
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
)

// uniqueHold is a Unique key held by a task until a time. A hold outlives
// its task ("whatever becomes of this task"): one whose task's record is
// gone (deleted, expired) is journaled by itself (keyUnique), so a
// restarted manager, or the next leader, holds it too.
type uniqueHold struct {
	task  string
	until time.Time
	gone  bool // its task's record is gone
}

// keyUnique is the meta record of the Unique holds whose tasks' records
// are gone.
var keyUnique = []byte("unique")

// heldKey is a hold in the keyUnique record.
type heldKey struct {
	Task  string    `msgpack:"task"`
	Until time.Time `msgpack:"until"`
}

// expireUnique lets go of the Unique keys whose time is over. It looks at
// them all only every few seconds, as their number is that of the tasks
// submitted with one within their ttl. Only called in the actor (sweep).
func (m *Manager) expireUnique(now time.Time) {
	if len(m.unique) == 0 || now.Sub(m.uniqueSwept) < uniqueSweepEvery {
		return
	}
	m.uniqueSwept = now
	gone := false
	for k, h := range m.unique {
		if !now.Before(h.until) {
			delete(m.unique, k)
			gone = gone || h.gone
		}
	}
	if gone {
		m.holdsChanged()
	}
}

const uniqueSweepEvery = 5 * time.Second

// recordGone notes that t's record leaves the journal: a Unique key it
// still holds is journaled by itself. Only called in the actor.
func (m *Manager) recordGone(t *taskState) {
	h, held := m.unique[t.uniqueKey]
	if t.uniqueKey == "" || !held || h.task != t.task.ID || h.gone || !time.Now().Before(h.until) {
		return
	}
	h.gone = true
	m.unique[t.uniqueKey] = h
	m.holdsChanged()
}

// holdsChanged notes that the holds whose tasks' records are gone changed:
// they are journaled once, in the next commit, however many changed.
// Only called in the actor.
func (m *Manager) holdsChanged() {
	if m.cfg.journal == nil {
		return
	}
	m.holdsDirty = true
	m.queueFlush()
}

// journalHolds puts the holds whose tasks' records are gone in the commit
// being made (flushJournal). Only called in the actor.
func (m *Manager) journalHolds() {
	m.holdsDirty = false
	held := map[string]heldKey{}
	for k, h := range m.unique {
		if h.gone {
			held[k] = heldKey{Task: h.task, Until: h.until}
		}
	}
	v, err := messages.MarshalValue(held)
	if err != nil {
		m.agent.Logger().Error("unique keys not journaled", "err", err)
		return
	}
	m.jputs = append(m.jputs, journalPut{bucket: string(bucketMeta), key: keyUnique, value: v})
}

// loadHolds reads the Unique holds whose tasks' records are gone.
func (j *Journal) loadHolds() (map[string]heldKey, error) {
	var out map[string]heldKey
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyUnique)
		if v == nil {
			return nil
		}
		if err := messages.Unmarshal(v, &out); err != nil {
			return fmt.Errorf("%w: %s: unique keys: %w", ErrJournalCorrupt, j.path, err)
		}
		return nil
	})
	return out, err
}
