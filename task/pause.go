package task

import (
	"context"
	"fmt"
	"slices"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
)

// keyPaused holds the paused task types in the journal's meta bucket.
var keyPaused = []byte("paused")

// Pause stops the manager assigning tasks of type typ: queued ones wait,
// running ones finish, new ones are accepted and wait too. It is
// journaled (a restarted manager keeps the type paused) and returns once
// that is durable.
func (m *Manager) Pause(ctx context.Context, typ string) error { return m.setPaused(ctx, typ, true) }

// Resume undoes Pause: tasks of type typ are assigned again.
func (m *Manager) Resume(ctx context.Context, typ string) error {
	return m.setPaused(ctx, typ, false)
}

// Paused lists the paused task types, sorted.
func (m *Manager) Paused(ctx context.Context) ([]string, error) {
	return agent.Call(ctx, m.agent, func() ([]string, error) { return m.pausedTypes(), nil })
}

func (m *Manager) setPaused(ctx context.Context, typ string, paused bool) error {
	return m.durably(ctx, func() error { return m.pause(typ, paused) })
}

// pause pauses or resumes typ. Only called in the actor.
func (m *Manager) pause(typ string, paused bool) error {
	switch {
	case typ == "":
		return fmt.Errorf("%w: empty task type", ErrBadFilter)
	case !m.leading:
		return m.notLeader()
	}
	if paused {
		m.paused[typ] = true
	} else {
		delete(m.paused, typ)
		m.markDirty() // its tasks may go now
	}
	if m.cfg.journal != nil {
		v, err := messages.MarshalValue(m.pausedTypes())
		if err != nil {
			return err
		}
		m.jputs = append(m.jputs, journalPut{bucket: string(bucketMeta), key: keyPaused, value: v})
		m.queueFlush()
	}
	return nil
}

// pausedTypes lists the paused types, sorted. Only called in the actor.
func (m *Manager) pausedTypes() []string {
	out := make([]string, 0, len(m.paused))
	for typ := range m.paused {
		out = append(out, typ)
	}
	slices.Sort(out)
	return out
}

// loadPaused reads the paused task types of the last commit.
func (j *Journal) loadPaused() ([]string, error) {
	var out []string
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyPaused)
		if v == nil {
			return nil
		}
		if err := messages.Unmarshal(v, &out); err != nil {
			return fmt.Errorf("%w: %s: paused types: %w", ErrJournalCorrupt, j.path, err)
		}
		return nil
	})
	return out, err
}
