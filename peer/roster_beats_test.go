package peer

import (
	"context"
	"testing"
	"time"
)

// A roster server's deltas gather longer as the workspace grows: 250 ms
// below 250 members, 250 ms more for every 250 more, 1 s at most.
func TestRosterFlushDelayGrowsWithTheWorkspace(t *testing.T) {
	cfg := defaults()
	n := &Node{cfg: cfg}
	for _, c := range []struct {
		entries int
		want    time.Duration
	}{{0, 250 * time.Millisecond}, {249, 250 * time.Millisecond}, {250, 500 * time.Millisecond}, {749, 750 * time.Millisecond}, {750, time.Second}, {5000, time.Second}} {
		r := &roster{n: n, entries: make(map[ID]*entry, c.entries)}
		for i := range c.entries {
			r.entries[ID([]byte{byte(i), byte(i >> 8), byte(i >> 16)})] = &entry{}
		}
		if got := r.flushDelay(); got != c.want {
			t.Errorf("%d entries: flush delay %v, want %v", c.entries, got, c.want)
		}
	}
}

// A follower that misses the last delta of a change hears of it from the
// beats that follow, well before its silence poll.
func TestSimMissedLastDeltaCaughtByBeat(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		srv, ms := star(t, net, 3, func(int) Handler { return NopHandler{} })
		a := ms[0]
		time.Sleep(15 * time.Second) // busy beats over
		srvVersion := func() (uint64, time.Time) {
			srv.roster.mu.Lock()
			defer srv.roster.mu.Unlock()
			return srv.roster.srv.version, srv.roster.srv.lastDelta
		}
		v0, _ := srvVersion()
		a.roster.mu.Lock()
		a.roster.trusted[srv.ID()] = false // deaf to the server's deltas and beats
		a.roster.mu.Unlock()
		m := net.node(NopHandler{}, WithOverlayDegree(0))
		net.join(m, srv)
		for {
			if v, _ := srvVersion(); v > v0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // the delta went by
		_, last := srvVersion()
		if a.Present(m.ID()) {
			t.Fatal("a saw the delta")
		}
		a.roster.mu.Lock()
		a.roster.trusted[srv.ID()] = true
		a.roster.views[srv.ID()].heard = time.Now() // no silence poll for silenceLimit
		a.roster.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.WaitPresent(ctx, m.ID()); err != nil {
			t.Fatal(err)
		}
		el := time.Since(last)
		t.Logf("caught up %v after the delta", el)
		if el > 2*time.Second+500*time.Millisecond {
			t.Fatalf("caught up %v after the missed delta: no beat?", el)
		}
	})
}

// While members keep joining, the server publishes deltas and no beats;
// the beats start once the deltas stop.
func TestSimBeatsWaitForDeltas(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		srv, ms := star(t, net, 3, func(int) Handler { return NopHandler{} })
		time.Sleep(15 * time.Second)
		state := func() (time.Time, time.Time, uint64) {
			srv.roster.mu.Lock()
			defer srv.roster.mu.Unlock()
			return srv.roster.srv.lastBeat, srv.roster.srv.lastDelta, srv.roster.srv.version
		}
		beat0, _, v0 := state()
		var joined []*Node
		for range 25 {
			m := net.node(NopHandler{}, WithOverlayDegree(0))
			net.join(m, srv)
			joined = append(joined, m)
			time.Sleep(400 * time.Millisecond)
		}
		beat1, _, v1 := state()
		if v1-v0 < 20 {
			t.Fatalf("only %d deltas in the burst", v1-v0)
		}
		// At most the idle beat due before the first delta of the burst.
		if beat1.After(beat0.Add(rosterBeatEvery)) {
			t.Fatalf("a beat %v into the burst: beats went out while deltas did", beat1.Sub(beat0))
		}
		time.Sleep(2500 * time.Millisecond)
		beat2, lastDelta2, _ := state()
		if !beat2.After(lastDelta2) {
			t.Fatalf("no beat %v after the last delta", time.Since(lastDelta2))
		}
		t.Logf("first beat %v after the last delta", beat2.Sub(lastDelta2))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, m := range ms {
			if err := m.WaitMembers(ctx, 3+len(joined)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// A member whose first roster exchange with its server came back without
// the roster (the server had served it moments before, and that answer
// was lost) still follows the server: the next delta or beat makes it
// fetch a snapshot. It used to ignore both, for ever.
func TestSimFollowerWithoutASnapshotCatchesUp(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		srv, ms := star(t, net, 3, func(int) Handler { return NopHandler{} })
		a := ms[0]
		time.Sleep(15 * time.Second)
		a.roster.mu.Lock()
		delete(a.roster.views, srv.ID()) // as if its snapshot never came
		a.roster.mu.Unlock()
		m := net.node(NopHandler{}, WithOverlayDegree(0))
		net.join(m, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.WaitPresent(ctx, m.ID()); err != nil {
			t.Fatal(err)
		}
	})
}

// A server that answers an exchange without its roster (it served this
// node a snapshot less than minSnapshotGap before) is asked again shortly.
func TestSimRefusedSnapshotIsFetchedAgain(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		srv, ms := star(t, net, 3, func(int) Handler { return NopHandler{} })
		a := ms[0]
		time.Sleep(15 * time.Second)
		a.roster.mu.Lock()
		delete(a.roster.views, srv.ID())
		a.roster.trusted[srv.ID()] = true
		a.roster.mu.Unlock()
		srv.roster.mu.Lock()
		srv.roster.srv.served[a.ID()] = time.Now() // the next snapshot is refused
		srv.roster.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.exchange(ctx, srv.ID(), true); err != nil {
			t.Fatal(err)
		}
		snapshot := func() bool {
			a.roster.mu.Lock()
			defer a.roster.mu.Unlock()
			v := a.roster.views[srv.ID()]
			return v != nil && v.epoch != 0
		}
		for deadline := time.Now().Add(time.Second); !snapshot(); time.Sleep(10 * time.Millisecond) { // virtual time
			if time.Now().After(deadline) {
				t.Fatal("no snapshot from the server a second after it refused one")
			}
		}
	})
}
