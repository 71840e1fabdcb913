package peer

import (
	"context"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// This file is a follower's side of a roster server: it applies the
// server's snapshots, deltas and beats, fetches a snapshot when it notices
// a gap, and lets the members of a server that went away age out. Only
// servers this node trusts (ones it connected to on purpose) are followed.
// Every function here runs with r.mu held unless it says otherwise.

// minFetchGap spaces the snapshot fetches from one server.
const minFetchGap = 250 * time.Millisecond

// A follower that hears nothing from a server (no delta, no beat) for
// silenceLimit asks it for what it lacks: a server beats at least every
// rosterBeatEvery, so silence means this node is outside GossipSub's mesh
// for now (or the server is gone). The check runs every pollEvery.
const (
	silenceLimit = rosterBeatEvery + time.Second
	pollEvery    = 2 * time.Second
)

// pollLoop asks silent servers for what this node lacks, until the node
// closes. It runs in its own goroutine.
func (r *roster) pollLoop() {
	defer r.n.wg.Done()
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.n.ctx.Done():
			return
		}
		r.mu.Lock()
		now := time.Now()
		for s, v := range r.views {
			if r.entries[s] != nil && !v.fetching && now.Sub(v.heard) > silenceLimit {
				v.heard = now // one ask per silence limit
				r.fetch(s, v)
			}
		}
		r.mu.Unlock()
	}
}

func (r *roster) view(s ID) *serverView {
	if !r.trusted[s] || r.closed {
		return nil
	}
	v := r.views[s]
	if v == nil {
		v = &serverView{orphans: map[ID]struct{}{}, heard: time.Now()}
		r.views[s] = v
	}
	return v
}

// applySnapshot replaces what s lists with its snapshot. It takes r.mu.
func (r *roster) applySnapshot(s ID, rep *rosterReply) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.view(s)
	if v == nil {
		return
	}
	switch {
	case v.epoch != 0 && v.epoch != rep.Epoch:
		// A new life of the server: what the old one listed ages out
		// unless the new one lists it too.
		r.orphan(s, v)
	case v.epoch == rep.Epoch && rep.Version < v.version:
		return // older than what we have
	}
	listed := make(map[ID]struct{}, len(rep.Members))
	for i := range rep.Members {
		id, err := peer.IDFromBytes(rep.Members[i].ID)
		if err != nil || id == r.n.ID() {
			continue
		}
		if e := r.entries[id]; e != nil {
			id = e.id // one copy of each ID in memory
		}
		listed[id] = struct{}{}
		delete(v.orphans, id)
		r.upsert(id, rep.Members[i], false, s)
	}
	for id, e := range r.entries {
		_, ok := listed[id]
		_, orphan := v.orphans[id] // ages out on its own clock
		if !ok && !orphan && slices.Contains(e.via, s) {
			r.unvouch(s, id)
		}
	}
	v.epoch, v.version, v.full, v.heard = rep.Epoch, rep.Version, false, time.Now()
	r.n.stats.snapshotsApplied.Add(1)
	r.n.kickOverlay()
}

// applyDelta applies one delta from s, or fetches what this node lacks
// when it does not follow on from what it has.
func (r *roster) applyDelta(s ID, d *rosterDelta) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.view(s) // a trusted server whose snapshot never came: it is followed from now on
	if v == nil {
		return
	}
	if !r.deltaLocked(s, v, d) {
		r.fetch(s, v)
		return
	}
	if len(v.orphans) > 0 {
		r.fetch(s, v) // orphans it still lists are adopted again
	}
}

// snapshotRefused follows s, a trusted server that answered an exchange
// without its roster (it had served this node one moments before, whose
// answer was lost: a reset stream, a timeout): a snapshot is fetched
// after the fetch gap. Without it the node would wait for a delta or beat
// that gossip may not bring it, and never ask again. It takes r.mu.
func (r *roster) snapshotRefused(s ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.view(s); v != nil && v.epoch == 0 {
		v.full = true
		v.lastFetch = time.Now() // the server serves again after minSnapshotGap
		r.fetch(s, v)
	}
}

// applyReply applies a server's answer to a roster exchange: a snapshot,
// or the deltas this node missed. It takes r.mu.
func (r *roster) applyReply(s ID, rep *rosterReply) {
	if rep.Full {
		r.applySnapshot(s, rep)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.view(s)
	if v == nil {
		return
	}
	for i := range rep.Deltas {
		if !r.deltaLocked(s, v, &rep.Deltas[i]) {
			v.full = true // they do not fit: take a snapshot
			r.fetch(s, v)
			return
		}
	}
}

// deltaLocked applies d from s if it follows on from the version this node
// has; it reports false for a gap (or another life of the server). A
// delta already seen is no gap.
func (r *roster) deltaLocked(s ID, v *serverView, d *rosterDelta) bool {
	switch {
	case d.Epoch == v.epoch && d.To <= v.version:
		v.heard = time.Now() // seen: the server is still heard
		return true
	case d.Epoch != v.epoch || d.From != v.version:
		return false
	}
	for i := range d.Add {
		id, err := peer.IDFromBytes(d.Add[i].ID)
		if err != nil || id == r.n.ID() {
			continue
		}
		if e := r.entries[id]; e != nil {
			id = e.id
		}
		delete(v.orphans, id)
		r.upsert(id, d.Add[i], false, s)
	}
	for _, raw := range d.Del {
		id, err := peer.IDFromBytes(raw)
		if err != nil {
			continue
		}
		delete(v.orphans, id)
		r.unvouch(s, id)
	}
	v.version, v.heard = d.To, time.Now()
	r.n.stats.deltasApplied.Add(1)
	r.n.kickOverlay()
	return true
}

// applyBeat fetches a snapshot when s is ahead of this node.
func (r *roster) applyBeat(s ID, b *rosterBeat) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.view(s)
	if v == nil {
		return
	}
	v.heard = time.Now()
	if b.Epoch != v.epoch || b.Version > v.version || len(v.orphans) > 0 {
		r.fetch(s, v)
	}
}

// unvouch drops s as a source of id.
func (r *roster) unvouch(s, id ID) {
	if e := r.entries[id]; e != nil {
		if i := slices.Index(e.via, s); i >= 0 {
			e.via = slices.Delete(e.via, i, i+1)
			r.dropIfUnvouched(e)
		}
	}
}

// orphan moves what s lists to its orphans, which age out after the
// orphan period unless s lists them again.
func (r *roster) orphan(s ID, v *serverView) {
	for id, e := range r.entries {
		if slices.Contains(e.via, s) {
			v.orphans[id] = struct{}{}
		}
	}
	if len(v.orphans) == 0 || v.orphanT != nil {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(r.n.cfg.orphanTTL, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed || v.orphanT != t {
			return
		}
		v.orphanT = nil
		orphans := v.orphans
		v.orphans = map[ID]struct{}{}
		for id := range orphans {
			r.unvouch(s, id)
		}
	})
	v.orphanT = t
}

// fetch starts a snapshot fetch from s unless one is in flight (then it
// runs again when that one ends), at most one per minFetchGap.
func (r *roster) fetch(s ID, v *serverView) {
	if v.fetching {
		v.again = true
		return
	}
	if r.closed {
		return
	}
	v.fetching = true
	wait := time.Until(v.lastFetch.Add(minFetchGap))
	n := r.n
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-n.ctx.Done():
				t.Stop()
			}
		}
		var err error
		if n.ctx.Err() == nil {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
			var sctx context.Context
			if sctx, err = n.dialLost(ctx, s); err == nil {
				err = n.exchange(sctx, s, true)
			}
			cancel()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		v.fetching = false
		v.lastFetch = time.Now()
		n.stats.snapshotsFetched.Add(1)
		if err != nil {
			n.cfg.logger.Debug("roster fetch failed", "server", s, "err", err)
		}
		if v.again && !r.closed {
			v.again = false
			r.fetch(s, v)
		}
	}()
}
