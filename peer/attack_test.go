package peer

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// tcpAddr is n's loopback TCP address as host:port.
func tcpAddr(t *testing.T, n *Node) string {
	t.Helper()
	for _, a := range n.host.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			continue
		}
		na, err := manet.ToNetAddr(a)
		if err == nil {
			return na.String()
		}
	}
	t.Fatal("no TCP address")
	return ""
}

// 300 sockets that connect and never send a byte (what held every new peer
// out for as long as they were open) leave room for a real peer to join,
// with and without a workspace secret.
func TestIdleSocketsDoNotLockOutJoins(t *testing.T) {
	for _, secret := range []string{"", "s3cret"} {
		t.Run(fmt.Sprintf("secret=%v", secret != ""), func(t *testing.T) {
			var opts []Option
			if secret != "" {
				opts = append(opts, WithSecret(secret))
			}
			srv := newTestNode(t, newRecorder(), append(opts, WithServer(true))...)
			addr := tcpAddr(t, srv)
			var idle []net.Conn
			defer func() {
				for _, c := range idle {
					_ = c.Close()
				}
			}()
			for range 300 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				idle = append(idle, c)
			}
			rw := newRecorder()
			w := newTestNode(t, rw, opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if _, err := w.Connect(ctx, srv.Addrs()[0].String()); err != nil {
				t.Fatalf("a worker could not join past 300 idle sockets: %v", err)
			}
			t.Logf("joined in %v past 300 idle sockets", time.Since(start).Round(time.Millisecond))
			if err := w.Send(ctx, srv.ID(), []byte("work")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// What one peer sends cannot grow a node's goroutines or memory without
// bound: thousands of hellos with fake addresses, frames of the old
// peer-exchange type, and garbage broadcasts. The peer is banned for what
// is garbage; the node keeps serving others.
func TestFloodsStayBounded(t *testing.T) {
	// A socket that accepts and never answers: where the fake addresses
	// point (dialing them would hang until the dial timeout).
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	fake, _ := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + fmt.Sprint(hole.Addr().(*net.TCPAddr).Port))

	srv := newTestNode(t, newRecorder(), WithServer(true))
	victim := newTestNode(t, newRecorder())
	connect(t, victim, srv)
	settle := func() (int, uint64) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}
	evil, evil2 := newTestNode(t, NopHandler{}), newTestNode(t, NopHandler{})
	g0, m0 := settle()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := evil.host.Connect(ctx, peerInfo(Member{ID: victim.ID(), Addrs: victim.host.Addrs()})); err != nil {
		t.Fatal(err)
	}
	// 2,000 hellos (roster exchanges) from one peer, 16 fake addresses each.
	var addrs [][]byte
	for range maxRecordAddrs {
		addrs = append(addrs, fake.Bytes())
	}
	for i := range 2000 {
		s, err := evil.host.NewStream(ctx, victim.ID(), RosterProtocolID)
		if err != nil {
			t.Fatalf("hello %d: %v", i, err)
		}
		h := hello{Version: protocolVersion, Workspace: "test", Self: record{ID: []byte(evil.ID()), Inc: 1, Addrs: addrs}, Want: true}
		_, _ = s.Write(appendFrame(nil, frameHello, encodeHello(h)))
		_ = s.CloseWrite()
		_ = s.Close()
	}
	// 2,000 frames of the old peer-exchange type on a direct stream: the
	// peer is banned long before the end.
	if s, err := evil.host.NewStream(ctx, victim.ID(), ProtocolID); err == nil {
		h := hello{Version: protocolVersion, Workspace: "test", Self: record{ID: []byte(evil.ID()), Inc: 1}}
		frames := appendFrame(nil, frameHello, encodeHello(h))
		for range 2000 {
			frames = appendFrame(frames, 3, make([]byte, 64*20))
		}
		_, _ = s.Write(frames)
		_ = s.Close()
	}
	waitStats(t, victim, "the ban", func(s Stats) bool { return s.Bans >= 1 })
	if victim.host.Network().Connectedness(evil.ID()) == network.Connected {
		t.Fatal("banned peer still connected")
	}
	// 2,000 broadcasts of no known type from another peer on the topic.
	if err := evil2.host.Connect(ctx, peerInfo(Member{ID: victim.ID(), Addrs: victim.host.Addrs()})); err != nil {
		t.Fatal(err)
	}
	if err := evil2.waitTopicPeer(ctx, victim.ID()); err != nil {
		t.Fatal(err)
	}
	evil2.waitMesh(ctx)
	for range 2000 {
		if evil2.topic.Publish(ctx, []byte{99, 1, 2, 3}) != nil || !evil2.connected(victim.ID()) {
			break
		}
	}
	waitStats(t, victim, "the second ban", func(s Stats) bool { return s.Bans >= 2 && s.GossipRejected >= 1 })
	// Whatever the floods started ends: goroutines and memory come back
	// within bounds.
	var g1 int
	var m1 uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		g1, m1 = settle()
		if g1 <= 2*g0 && m1 <= m0+50<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines %d -> %d, heap %d -> %d bytes", g0, g1, m0, m1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("goroutines %d -> %d, heap %.1f -> %.1f MB", g0, g1, float64(m0)/(1<<20), float64(m1)/(1<<20))
	if n := len(victim.Members()); n > 3 {
		t.Fatalf("%d members after the flood", n)
	}
	// Others are still served.
	other := newTestNode(t, newRecorder())
	connect(t, other, victim)
}
