package task

import (
	"slices"
	"time"

	"github.com/ceylon-go/ceylon/peer"
)

// What the manager remembers of each worker while it runs, for
// [Manager.Workers]: when it came and went, and its last attempts. Kept in
// memory only, for at most maxWorkerLog workers (a departed worker's entry
// makes room for a new one, the longest gone first). Owned by the actor.

const (
	maxWorkerLog    = 4096
	workerRecentLen = 16
)

type workerLog struct{ byName map[string]*activity }

type activity struct {
	peerID                      peer.ID
	firstSeen, lastSeen, leftAt time.Time
	recent                      [workerRecentLen]WorkerAttempt
	next, n                     int
}

// joined returns name's entry, making one if need be.
func (l *workerLog) joined(name string, pid peer.ID, now time.Time) *activity {
	if l.byName == nil {
		l.byName = map[string]*activity{}
	}
	a := l.byName[name]
	if a == nil {
		if len(l.byName) >= maxWorkerLog {
			l.evict()
		}
		a = &activity{firstSeen: now}
		l.byName[name] = a
	}
	a.peerID, a.lastSeen, a.leftAt = pid, now, time.Time{}
	return a
}

// evict forgets the worker gone the longest. Connected workers are
// never forgotten (so the log holds at most maxWorkerLog entries, or the
// workers connected, if more).
func (l *workerLog) evict() {
	var victim string
	var vt time.Time
	for name, a := range l.byName {
		if !a.leftAt.IsZero() && (victim == "" || a.leftAt.Before(vt)) {
			victim, vt = name, a.leftAt
		}
	}
	if victim != "" {
		delete(l.byName, victim)
	}
}

func (l *workerLog) left(name string, now time.Time) {
	if a := l.byName[name]; a != nil {
		a.leftAt, a.lastSeen = now, now
	}
}

func (a *activity) ended(t *taskState, at time.Time, outcome string) {
	if a == nil {
		return
	}
	r := WorkerAttempt{TaskID: t.task.ID, Type: t.task.Type, Attempt: t.attempt, EndedAt: at, Outcome: clip(outcome, 256)}
	if n := len(t.attempts); n > 0 {
		r.RunMS = ms(at.Sub(t.attempts[n-1].AssignedAt))
	}
	a.recent[a.next] = r
	a.next = (a.next + 1) % workerRecentLen
	a.n = min(a.n+1, workerRecentLen)
}

// fill adds name's activity to v.
func (l *workerLog) fill(v *WorkerView) {
	a := l.byName[v.Name]
	if a == nil {
		return
	}
	if v.PeerID == "" && a.peerID != "" {
		v.PeerID = a.peerID.String()
	}
	v.FirstSeen, v.LeftAt = a.firstSeen, a.leftAt
	if a.lastSeen.After(v.LastSeen) {
		v.LastSeen = a.lastSeen
	}
	v.Recent = make([]WorkerAttempt, 0, a.n)
	for i := 1; i <= a.n; i++ {
		v.Recent = append(v.Recent, a.recent[(a.next-i+workerRecentLen)%workerRecentLen])
	}
	v.Recent = slices.Clip(v.Recent)
}
