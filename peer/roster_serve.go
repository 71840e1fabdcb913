package peer

import (
	"time"
)

// This file is a roster server's side: it lists the members linked to it,
// publishes each batch of changes as a delta on the workspace topic, beats
// its version so followers notice a lost delta, and answers snapshot
// requests (see exchange.go). Every function here runs with r.mu held
// unless it says otherwise.

// armFlush schedules the next delta.
func (r *roster) armFlush() {
	s := r.srv
	s.snapValid = false
	if s.flushArmed || r.closed {
		return
	}
	s.flushArmed = true
	time.AfterFunc(r.flushDelay(), r.flush)
}

// flushDelay is how long changes gather before they go out as a delta:
// rosterFlush (250 ms by default) in a workspace of fewer than 250
// members, one more rosterFlush for every 250 more, four at most (1 s).
// Every member receives every delta and checks its signature, so a delta
// costs the workspace in proportion to its size: while a thousand agents
// joined, GossipSub's signature checks took a tenth of their CPU.
func (r *roster) flushDelay() time.Duration {
	return r.n.cfg.rosterFlush * time.Duration(min(1+len(r.entries)/250, 4))
}

// deltaBudget bounds the encoded size of one delta, well below the
// broadcast limit.
const deltaBudget = 256 << 10

// flush publishes the pending changes as one or more deltas. It takes r.mu
// itself and publishes without it.
func (r *roster) flush() {
	r.mu.Lock()
	s := r.srv
	s.flushArmed = false
	if r.closed || len(s.pending) == 0 {
		r.mu.Unlock()
		return
	}
	var out [][]byte
	d := rosterDelta{Epoch: s.epoch, From: s.version, To: s.version + 1}
	size := 0
	cut := func() {
		out = append(out, marshal(&d))
		s.history = append(s.history, d)
		if len(s.history) > maxReplyDeltas {
			s.history = s.history[len(s.history)-maxReplyDeltas:]
		}
		s.version++
		d = rosterDelta{Epoch: s.epoch, From: s.version, To: s.version + 1}
		size = 0
	}
	for id, rec := range s.pending {
		if rec == nil {
			d.Del = append(d.Del, []byte(id))
			size += len(id) + 2
		} else {
			d.Add = append(d.Add, *rec)
			size += recordSize(rec)
		}
		if size >= deltaBudget || len(d.Add)+len(d.Del) >= maxDeltaRecords {
			cut()
		}
	}
	if len(d.Add)+len(d.Del) > 0 {
		cut()
	}
	s.pending = map[ID]*record{}
	s.lastDelta = time.Now()
	r.mu.Unlock()
	for _, b := range out {
		r.n.publishControl(msgDelta, b)
		r.n.stats.deltasOut.Add(1)
	}
}

// recordSize estimates a record's encoded size.
func recordSize(r *record) int {
	n := len(r.ID) + len(r.Meta) + 24
	for _, a := range r.Addrs {
		n += len(a) + 2
	}
	return n
}

// beatLoop publishes the server's version every rosterBeat for a while
// after a change (so followers that missed a delta, or joined the mesh
// late, fetch what they lack within a beat or two; while deltas keep
// going out, they say as much, and the beats wait) and every
// rosterBeatEvery otherwise, until the node closes. It runs in its own
// goroutine.
func (r *roster) beatLoop() {
	defer r.n.wg.Done()
	t := time.NewTicker(r.n.cfg.rosterBeat)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.n.ctx.Done():
			return
		}
		r.mu.Lock()
		s := r.srv
		now := time.Now()
		if s.version != s.beatVersion {
			s.beatVersion, s.busyBeats = s.version, rosterBusyBeats
		}
		due := s.busyBeats > 0 || now.Sub(s.lastBeat) >= rosterBeatEvery
		if s.busyBeats > 0 && now.Sub(s.lastDelta) < r.n.cfg.rosterBeat {
			// Deltas are going out (each carries the version): the
			// beats that follow a change start once they stop.
			due = false
		}
		var b []byte
		if due && !r.closed {
			s.lastBeat = now
			s.busyBeats = max(0, s.busyBeats-1)
			b = marshal(&rosterBeat{Epoch: s.epoch, Version: s.version, Size: r.linkedCount()})
		}
		r.mu.Unlock()
		if b != nil {
			r.n.publishControl(msgBeat, b)
		}
	}
}

// rosterBeatEvery is how often a server beats when nothing changes;
// rosterBusyBeats is how many beats, one every rosterBeat, follow a change.
const (
	rosterBeatEvery = 5 * time.Second
	rosterBusyBeats = 10
)

func (r *roster) linkedCount() int {
	n := 0
	for _, e := range r.entries {
		if e.linked {
			n++
		}
	}
	return n
}

// minSnapshotGap is how soon one peer may have another snapshot; sooner
// requests get the server's own record only.
const minSnapshotGap = 100 * time.Millisecond

// replyFor encodes the answer to p's roster exchange: this node's record
// and, for a server asked for it, what p lacks of its roster: nothing, the
// deltas since the version p has (if they are still kept), or a snapshot.
// It takes r.mu itself.
func (r *roster) replyFor(p ID, h *hello) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.srv
	if s == nil || !h.Want {
		return marshal(&rosterReply{Self: r.n.selfRecord()})
	}
	if h.SinceEpoch == s.epoch && h.Since <= s.version {
		if ds, ok := s.deltasSince(h.Since); ok {
			r.n.stats.deltasServed.Add(1)
			return marshal(&rosterReply{Self: r.n.selfRecord(), Epoch: s.epoch, Version: s.version, Deltas: ds})
		}
	}
	now := time.Now()
	if last, ok := s.served[p]; ok && now.Sub(last) < minSnapshotGap {
		return marshal(&rosterReply{Self: r.n.selfRecord()})
	}
	if len(s.served) >= r.n.cfg.maxRoster {
		for id, t := range s.served {
			if now.Sub(t) >= minSnapshotGap {
				delete(s.served, id)
			}
		}
	}
	s.served[p] = now
	r.n.stats.snapshotsServed.Add(1)
	if s.snapValid && s.snapVersion == s.version {
		return s.snap
	}
	reply := rosterReply{Self: r.n.selfRecord(), Epoch: s.epoch, Version: s.version, Full: true}
	reply.Members = make([]record, 0, len(r.entries))
	for _, e := range r.entries {
		if e.linked {
			reply.Members = append(reply.Members, e.wire())
		}
	}
	s.snap, s.snapVersion, s.snapValid = marshal(&reply), s.version, true
	return s.snap
}

// deltasSince returns the kept deltas from version v to the current one;
// false if they are not all kept any more.
func (s *serving) deltasSince(v uint64) ([]rosterDelta, bool) {
	if v == s.version {
		return nil, true
	}
	for i, d := range s.history {
		if d.From == v {
			return s.history[i:], true
		}
	}
	return nil, false
}
