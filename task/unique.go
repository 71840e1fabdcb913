package task

import "time"

// uniqueHold is a Unique key held by a task until a time.
type uniqueHold struct {
	task  string
	until time.Time
}

// expireUnique lets go of the Unique keys whose time is over. It looks at
// them all only every few seconds, as their number is that of the tasks
// submitted with one within their ttl. Only called in the actor (sweep).
func (m *Manager) expireUnique(now time.Time) {
	if len(m.unique) == 0 || now.Sub(m.uniqueSwept) < uniqueSweepEvery {
		return
	}
	m.uniqueSwept = now
	for k, h := range m.unique {
		if !now.Before(h.until) {
			delete(m.unique, k)
		}
	}
}

const uniqueSweepEvery = 5 * time.Second
