package peer

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
)

// After each of 200 drops (alternately cut from either side, with no leave
// grace), both sides have each other back, every leave either saw is
// followed by a join, and frames flow again both ways: the race that once
// left a peer that never saw the other come back (a dead connection's
// outbound stream kept after a new connection was up) would show here.
// (A side whose new connection is up before it notices the old one close
// sees no drop at all; that is not a leave.)
func TestRejoinAfterEveryDrop(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("200 cycles")
	}
	rs, rm := newRecorder(), newRecorder()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newTestNode(t, rs, WithServer(true), WithLeaveGrace(0), WithLogger(log.With("node", "server")))
	m := newTestNode(t, rm, WithLeaveGrace(0), WithLogger(log.With("node", "member")))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.Join(ctx, srv.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	// back: p is present to the recorder's node, and its last event about
	// p is a join.
	back := func(r *recorder, p ID) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		var last *PresenceEvent
		for i := range r.events {
			if r.events[i].Peer == p {
				last = &r.events[i]
			}
		}
		return last != nil && last.Joined
	}
	state := func() string {
		last := func(r *recorder, p ID) string {
			r.mu.Lock()
			defer r.mu.Unlock()
			j, l := 0, 0
			for _, ev := range r.events {
				if ev.Peer == p {
					if ev.Joined {
						j++
					} else {
						l++
					}
				}
			}
			return fmt.Sprintf("%d joins %d leaves", j, l)
		}
		m.mu.Lock()
		k := m.keep[srv.ID()].running
		mo := m.out[srv.ID()] != nil
		m.mu.Unlock()
		srv.mu.Lock()
		so := srv.out[m.ID()] != nil
		srv.mu.Unlock()
		return fmt.Sprintf("server sees member: %s, present %v, conns %d, out %v; member sees server: %s, present %v, conns %d, out %v, rejoining %v",
			last(rs, m.ID()), srv.Present(m.ID()), len(srv.host.Network().ConnsToPeer(m.ID())), so,
			last(rm, srv.ID()), m.Present(srv.ID()), len(m.host.Network().ConnsToPeer(srv.ID())), mo, k)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(state())
			t.Logf("server %+v\nmember %+v", srv.Stats(), m.Stats())
			if os.Getenv("REJOIN_DUMP") != "" {
				t.Log(logs.String())
				buf := make([]byte, 1<<22)
				t.Log(string(buf[:runtime.Stack(buf, true)]))
			}
		}
	})
	for i := 1; i <= 200; i++ {
		from := srv
		if i%2 == 0 {
			from = m
		}
		other := m
		if from == m {
			other = srv
		}
		if err := from.host.Network().ClosePeer(other.ID()); err != nil {
			t.Fatal(err)
		}
		// (Node methods are not called under the recorder's lock: the
		// node calls HandlePresence under its own.)
		testutil.Eventually(t, fmt.Sprintf("cycle %d: the server seeing the member again", i), func() bool {
			return back(rs, m.ID()) && srv.Present(m.ID()) && srv.connected(m.ID())
		})
		testutil.Eventually(t, fmt.Sprintf("cycle %d: the member seeing the server again", i), func() bool {
			return back(rm, srv.ID()) && m.Present(srv.ID()) && m.connected(srv.ID())
		})
		// Frames queued on a connection as it dies are lost (Send says
		// so, and a side learns that the other closed a connection only
		// when it reads the close); once things settle, frames go
		// through both ways.
		through(t, i, m, srv, rs)
		through(t, i, srv, m, rm)
	}
	t.Logf("frames resent after a drop: %d of %d", resent.Load(), 2*200)
}

var resent atomic.Int64

// through sends from a to b until b's recorder has a frame from a that it
// did not have before.
func through(t *testing.T, cycle int, a, b *Node, rb *recorder) {
	t.Helper()
	rb.mu.Lock()
	had := len(rb.direct[a.ID()])
	rb.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := a.Send(ctx, b.ID(), []byte("hi"))
		cancel()
		if err == nil {
			arrived := time.Now().Add(250 * time.Millisecond)
			for time.Now().Before(arrived) {
				rb.mu.Lock()
				n := len(rb.direct[a.ID()])
				rb.mu.Unlock()
				if n > had {
					if try > 0 {
						resent.Add(1)
					}
					return
				}
				time.Sleep(time.Millisecond)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cycle %d: no frame from %s through to %s (last error %v)", cycle, a.ID(), b.ID(), err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// adminGone starts a member joined to an admin on a simulated network,
// and closes the admin once the member knows it; restart brings the admin
// back at the same address with the same identity.
func adminGone(t *testing.T) (m *Node, admin ID, restart func(Handler) *Node) {
	net := newSimNet(t)
	key, _ := GenerateIdentity()
	srv := net.nodeAt(200, key, NopHandler{}, WithServer(true))
	m = net.node(NopHandler{})
	net.join(m, srv)
	_ = srv.Close()
	for m.connected(srv.ID()) {
		time.Sleep(time.Millisecond)
	}
	return m, srv.ID(), func(h Handler) *Node { return net.nodeAt(200, key, h, WithServer(true)) }
}

// A restarted admin has the members that joined it back within half a
// second of listening again after a restart of seconds, over QUIC, whose
// dials to a peer that is down hang rather than fail (the redials of a
// joined peer are short attempts, 200 ms apart at most, that clear
// libp2p's own dial backoff). After a longer outage, when redials have
// backed off, it is back within the handshake timeout and one backoff.
func TestSimRejoinWithinHalfASecondOfARestart(t *testing.T) {
	t.Parallel()
	skipUnderRace(t)
	for _, down := range []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 5 * time.Second, 6 * time.Second, 7 * time.Second, 8 * time.Second, 9 * time.Second, time.Minute} {
		synctest.Test(t, func(t *testing.T) {
			m, _, restart := adminGone(t)
			time.Sleep(down)
			srv2 := restart(NopHandler{})
			start := time.Now()
			for !srv2.Present(m.ID()) || !m.connected(srv2.ID()) {
				time.Sleep(5 * time.Millisecond)
			}
			limit := 500 * time.Millisecond
			if down > 9*time.Second { // redials back off after 10 s (5 s apart at most)
				limit = DefaultHandshakeTimeout + 5*time.Second
			}
			if el := time.Since(start); el > limit {
				t.Fatalf("down %v: the member was back %v after the restart", down, el)
			}
		})
	}
}

// Sends with long deadlines to a restarting admin do not slow its
// members' return. A send to a peer with no connection dials it, and
// libp2p's swarm joins the member's own short redials to that dial, which
// over QUIC hangs until a retransmission reaches the admin: such a dial
// is as short as a redial. Sends made during the outage fail (as Send
// says), and go through once the admin is back.
func TestSimSendsToALostAdminDoNotDelayTheRejoin(t *testing.T) {
	t.Parallel()
	skipUnderRace(t)
	// (Outage lengths between the retransmissions of a QUIC dial begun
	// as the admin went down: 0.2, 0.6, 1.4, 3.0, 6.2 s.)
	for _, down := range []time.Duration{1500 * time.Millisecond, 3500 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			m, admin, restart := adminGone(t)
			stop := make(chan struct{})
			sent := make(chan struct{})
			defer func() { close(stop); <-sent }()
			go func() { // a heartbeat to the admin, each beat with a minute to go
				defer close(sent)
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					err := m.Send(ctx, admin, []byte("beat"))
					cancel()
					if err != nil {
						time.Sleep(20 * time.Millisecond)
					}
				}
			}()
			time.Sleep(down)
			rec := newRecorder()
			srv2 := restart(rec)
			start := time.Now()
			for !srv2.Present(m.ID()) || !m.connected(srv2.ID()) {
				time.Sleep(5 * time.Millisecond)
			}
			el := time.Since(start)
			if el > 500*time.Millisecond {
				t.Fatalf("down %v, sends going on: the member was back %v after the restart", down, el)
			}
			// The beats go on until one arrives: stopped as soon as the
			// member was back, the loop could end in the pause after a send
			// that failed before it (1 run in 30).
			rec.awaitWithin(t, fmt.Sprintf("down %v: a beat within a second of the member's return", down), time.Second,
				func() bool { return len(rec.direct[m.ID()]) > 0 })
		})
	}
}

// A send to a joined admin whose connection just closed waits for the
// redial's short attempt only for the dial: identify and the hello on the
// new connection have the send's own deadline. Here the link got slower
// than the round trip measured before (90 ms one way, against 1 ms): the
// dial fits in the short attempt (8 round trips as measured, plus
// 250 ms), the dial and identify together do not, and the send used to
// fail with "identify failed to complete" or a timeout.
func TestSimSendRightAfterAReconnectionOnASlowerLink(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		rec := newRecorder()
		srv := net.node(rec, WithServer(true))
		m := net.node(NopHandler{})
		net.join(m, srv)
		net.setLatency(90 * time.Millisecond)
		if err := srv.Host().Network().ClosePeer(m.ID()); err != nil {
			t.Fatal(err)
		}
		for m.connected(srv.ID()) {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := m.Send(ctx, srv.ID(), []byte("right after")); err != nil {
			t.Fatalf("send right after the connection closed: %v", err)
		}
		rec.awaitWithin(t, "the send's arrival", 5*time.Second, func() bool { return len(rec.direct[m.ID()]) > 0 })
	})
}
