package peer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// The roster is who is in the workspace as this node knows it. A member is
// in it while at least one source vouches for it:
//
//   - the member itself, over a connection on which it presented its record
//     (a hello on a direct stream, or a roster exchange): the link. When the
//     last connection to it closes the link lingers for the leave grace
//     period, so a blip is not a leave; a bye (direct frame) or a leave note
//     (signed broadcast) from the member ends it at once;
//   - a roster server this node follows (one it connected to on purpose,
//     e.g. the manager it joined): a server lists the members linked to it,
//     publishes changes as deltas on the workspace topic and serves
//     snapshots. When a server goes away, what it listed stays for the
//     orphan period, so a restarting server does not make everyone leave.
//
// Records from a link win over records from servers; a record with a newer
// incarnation is a restart, reported as a leave and a join.

// Member is an agent of the workspace as this node knows it.
type Member struct {
	ID    ID
	Meta  []byte
	Addrs []ma.Multiaddr
	// Incarnation changes every time the member's process starts.
	Incarnation uint64
	// Server reports whether the member serves a roster.
	Server bool
	// Linked reports whether the member presented itself to this node on
	// a connection (rather than being known through a roster server).
	Linked bool
}

// entry is one member. Owned by roster.mu.
type entry struct {
	id     ID
	rec    record
	linked bool
	linger *time.Timer // the link was lost: it ends when this fires
	via    []ID        // servers that list it (usually one)
}

func (e *entry) vouched() bool { return e.linked || len(e.via) > 0 }

// wire is e's record as sent to others.
func (e *entry) wire() record {
	r := e.rec
	r.ID = []byte(e.id)
	return r
}

// compact copies what a record holds into one allocation and leaves out
// its ID (the entry has it): a roster holds one record per member of the
// workspace, in every agent.
func compact(r record) record {
	n := len(r.Meta)
	for _, a := range r.Addrs {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	out := record{Inc: r.Inc, Server: r.Server}
	if len(r.Meta) > 0 {
		buf = append(buf, r.Meta...)
		out.Meta = buf[:len(buf):len(buf)]
	}
	if len(r.Addrs) > 0 {
		out.Addrs = make([][]byte, len(r.Addrs))
		for i, a := range r.Addrs {
			start := len(buf)
			buf = append(buf, a...)
			out.Addrs[i] = buf[start:len(buf):len(buf)]
		}
	}
	return out
}

// tomb remembers a member that said it left, so a server that still lists
// it does not bring it back.
type tomb struct {
	inc   uint64
	until time.Time
}

// serverView is what this node knows of a roster server it follows.
type serverView struct {
	epoch, version uint64
	orphans        map[ID]struct{} // listed by an earlier life or a gone server
	orphanT        *time.Timer
	full           bool // the next fetch asks for a snapshot, not deltas
	fetching       bool // a snapshot fetch is in flight
	again          bool // fetch again when it ends
	lastFetch      time.Time
	heard          time.Time // last delta, beat or answer from the server
}

// serving is this node's own roster service.
type serving struct {
	epoch, version uint64
	pending        map[ID]*record // changes since the last delta; nil = removal
	flushArmed     bool
	beatVersion    uint64 // version the beats are about
	busyBeats      int    // beats still due, one a rosterBeat, after a change
	lastBeat       time.Time
	lastDelta      time.Time     // when the last delta went out
	history        []rosterDelta // the last deltas, for followers that missed some
	snap           []byte        // encoded reply at snapVersion
	snapVersion    uint64
	snapValid      bool
	served         map[ID]time.Time // last snapshot per requester
}

type roster struct {
	n *Node

	mu      sync.Mutex
	closed  bool
	entries map[ID]*entry
	tombs   map[ID]tomb
	trusted map[ID]bool
	views   map[ID]*serverView
	srv     *serving
	changed chan struct{} // closed and replaced on every membership change
}

func newRoster(n *Node) *roster {
	r := &roster{
		n:       n,
		entries: map[ID]*entry{},
		tombs:   map[ID]tomb{},
		trusted: map[ID]bool{},
		views:   map[ID]*serverView{},
		changed: make(chan struct{}),
	}
	if n.cfg.server {
		r.srv = &serving{epoch: n.inc, pending: map[ID]*record{}, served: map[ID]time.Time{}}
	}
	return r
}

// notify wakes waiters. Call with r.mu held.
func (r *roster) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// emit reports a join or leave to the handler, in order. Call with r.mu
// held: HandlePresence must not block.
func (r *roster) emit(e *entry, joined bool) {
	if joined {
		r.n.stats.joins.Add(1)
	} else {
		r.n.stats.leaves.Add(1)
	}
	r.n.cfg.handler.HandlePresence(r.n.ctx, PresenceEvent{Peer: e.id, Joined: joined, Meta: e.rec.Meta})
	r.notify()
}

// upsert applies a record about id from its own link (linked) or from the
// server via. It reports false when the record was refused.
func (r *roster) upsert(id ID, rec record, linked bool, via ID) bool {
	if r.closed || id == r.n.ID() {
		return false
	}
	e := r.entries[id]
	if e == nil {
		if t, ok := r.tombs[id]; ok && rec.Inc <= t.inc {
			// It said it left: a server that has not caught up, or a
			// last exchange of its process racing with its goodbye.
			return false
		}
		if len(r.entries) >= r.n.cfg.maxRoster {
			r.n.stats.rosterRefused.Add(1)
			return false
		}
		delete(r.tombs, id)
		e = &entry{id: id, rec: compact(rec)}
		r.entries[id] = e
		r.vouch(e, linked, via)
		r.emit(e, true)
		return true
	}
	switch {
	case rec.Inc > e.rec.Inc: // it restarted
		if !linked && e.linked {
			// A server saw the new process first: the old link is dead.
			r.endLink(e)
		}
		r.emit(e, false)
		e.rec = compact(rec)
		r.vouch(e, linked, via)
		r.emit(e, true)
		r.served(e)
	case rec.Inc == e.rec.Inc:
		if linked || !e.linked {
			if !sameRecord(&e.rec, &rec) {
				e.rec = compact(rec)
				r.served(e)
			}
		}
		r.vouch(e, linked, via)
	default: // an earlier life of it: stale news
		return false
	}
	return true
}

// vouch records a source for e. Call with r.mu held.
func (r *roster) vouch(e *entry, linked bool, via ID) {
	if linked {
		if e.linger != nil {
			e.linger.Stop()
			e.linger = nil
		}
		if !e.linked {
			e.linked = true
			r.served(e)
		}
		return
	}
	if !slices.Contains(e.via, via) {
		e.via = append(e.via, via)
	}
}

// served queues e for the next delta if this node serves a roster and e
// is linked to it.
func (r *roster) served(e *entry) {
	if r.srv == nil || !e.linked {
		return
	}
	rec := e.wire()
	r.srv.pending[e.id] = &rec
	r.armFlush()
}

// endLink drops e's link without dropping e. Call with r.mu held.
func (r *roster) endLink(e *entry) {
	if e.linger != nil {
		e.linger.Stop()
		e.linger = nil
	}
	if !e.linked {
		return
	}
	e.linked = false
	if r.srv != nil {
		r.srv.pending[e.id] = nil
		r.armFlush()
	}
}

// drop removes e and reports the leave. Call with r.mu held.
func (r *roster) drop(e *entry) {
	r.endLink(e)
	delete(r.entries, e.id)
	r.emit(e, false)
	if v := r.views[e.id]; v != nil {
		r.orphan(e.id, v) // a server we follow left: what it listed ages out
	}
}

// dropIfUnvouched removes e when no source vouches for it any more.
func (r *roster) dropIfUnvouched(e *entry) {
	if !e.vouched() {
		r.drop(e)
	}
}

// link records that p presented rec on a connection.
func (r *roster) link(p ID, rec record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.entries[p] != nil && r.entries[p].linked
	r.upsert(p, rec, true, "")
	if e := r.entries[p]; !was && e != nil && e.linked {
		r.n.mesh.joined() // a new link; lock order: roster, then mesh
	}
}

// linkLost starts the leave grace period of p's link.
func (r *roster) linkLost(p ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[p]
	if r.closed || e == nil || !e.linked || e.linger != nil {
		return
	}
	if r.n.cfg.leaveGrace == 0 { // no grace: the link ends with the connection
		r.endLink(e)
		r.dropIfUnvouched(e)
		return
	}
	var t *time.Timer
	t = time.AfterFunc(r.n.cfg.leaveGrace, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed || r.entries[p] != e || e.linger != t {
			return
		}
		e.linger = nil
		if r.n.connected(p) {
			return // back, without a new hello: the link holds
		}
		r.endLink(e)
		r.dropIfUnvouched(e)
	})
	e.linger = t
}

// linkBack ends p's grace period: a connection to it is open again.
func (r *roster) linkBack(p ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.entries[p]; e != nil && e.linger != nil {
		e.linger.Stop()
		e.linger = nil
	}
}

// left handles a bye or a leave note: p's incarnation inc is leaving.
func (r *roster) left(p ID, inc uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.bury(p, inc)
	if e := r.entries[p]; e != nil && inc >= e.rec.Inc {
		r.drop(e)
	}
}

// bury remembers that p (incarnation inc) left, for the orphan period.
func (r *roster) bury(p ID, inc uint64) {
	now := time.Now()
	if len(r.tombs) >= r.n.cfg.maxRoster {
		for id, t := range r.tombs {
			if now.After(t.until) {
				delete(r.tombs, id)
			}
		}
		if len(r.tombs) >= r.n.cfg.maxRoster {
			return
		}
	}
	r.tombs[p] = tomb{inc: inc, until: now.Add(r.n.cfg.orphanTTL)}
}

// linkedUpTo counts the members linked to this node, up to max.
func (r *roster) linkedUpTo(max int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.entries {
		if n >= max {
			break
		}
		if e.linked && e.linger == nil { // not in its leave grace
			n++
		}
	}
	return n
}

// linkedPeers lists the members linked to this node.
func (r *roster) linkedPeers() []ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ID
	for id, e := range r.entries {
		if e.linked {
			out = append(out, id)
		}
	}
	return out
}

// linkedServers lists the roster servers this node is linked to.
func (r *roster) linkedServers() []ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ID
	for id := range r.trusted {
		if e := r.entries[id]; e != nil && e.linked && e.rec.Server {
			out = append(out, id)
		}
	}
	return out
}

// trust makes p a source this node follows if it serves a roster.
func (r *roster) trust(p ID) {
	r.mu.Lock()
	r.trusted[p] = true
	r.mu.Unlock()
}

// present reports whether p is a member.
func (r *roster) present(p ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries[p] != nil
}

// addrs returns the addresses the roster holds for p.
func (r *roster) addrs(p ID) []ma.Multiaddr {
	r.mu.Lock()
	e := r.entries[p]
	var raw [][]byte
	if e != nil {
		raw = e.rec.Addrs
	}
	r.mu.Unlock()
	return parseAddrs(raw)
}

// sameRecord reports whether two records of one member say the same.
func sameRecord(a, b *record) bool {
	return a.Inc == b.Inc && a.Server == b.Server && string(a.Meta) == string(b.Meta) &&
		slices.EqualFunc(a.Addrs, b.Addrs, func(x, y []byte) bool { return string(x) == string(y) })
}

func (e *entry) member() Member {
	return Member{ID: e.id, Meta: e.rec.Meta, Addrs: parseAddrs(e.rec.Addrs), Incarnation: e.rec.Inc, Server: e.rec.Server, Linked: e.linked}
}

// sample returns up to k members, chosen at random, for which keep holds.
func (r *roster) sample(k int, keep func(ID) bool) []Member {
	r.mu.Lock()
	ids := make([]ID, 0, len(r.entries))
	for id := range r.entries {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var out []Member
	for _, id := range ids {
		if len(out) == k {
			break
		}
		if !keep(id) {
			continue
		}
		r.mu.Lock()
		e := r.entries[id]
		var m Member
		if e != nil {
			m = e.member()
		}
		r.mu.Unlock()
		if e != nil && len(m.Addrs) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// waitUntil blocks until cond (called with r.mu held) holds, re-checking
// at every membership change, until ctx ends or the node closes.
func (r *roster) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		r.mu.Lock()
		ok, ch, closed := cond(), r.changed, r.closed
		r.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// close stops every timer; later calls change nothing.
func (r *roster) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, e := range r.entries {
		if e.linger != nil {
			e.linger.Stop()
		}
	}
	for _, v := range r.views {
		if v.orphanT != nil {
			v.orphanT.Stop()
		}
	}
	r.notify()
}

// Members lists the workspace's members as this node knows them (not
// itself), sorted by ID.
func (n *Node) Members() []Member {
	r := n.roster
	r.mu.Lock()
	out := make([]Member, 0, len(r.entries))
	for _, e := range r.entries {
		out = append(out, e.member())
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Member returns what this node knows of p.
func (n *Node) Member(p ID) (Member, bool) {
	r := n.roster
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[p]
	if e == nil {
		return Member{}, false
	}
	return e.member(), true
}

// Present reports whether p is a member of the workspace, as this node
// knows it.
func (n *Node) Present(p ID) bool { return n.roster.present(p) }

// WaitPresent blocks until p is a member or ctx ends.
func (n *Node) WaitPresent(ctx context.Context, p ID) error {
	r := n.roster
	err := r.waitUntil(ctx, func() bool { return r.entries[p] != nil })
	if err != nil && err != ErrClosed {
		return fmt.Errorf("peer: %s did not join workspace %q: %w", p, n.cfg.workspace, err)
	}
	return err
}

// WaitMembers blocks until the roster holds at least k members or ctx
// ends.
func (n *Node) WaitMembers(ctx context.Context, k int) error {
	r := n.roster
	return r.waitUntil(ctx, func() bool { return len(r.entries) >= k })
}
