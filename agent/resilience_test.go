package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/network"
)

// A flooding peer holds at most its in-flight limit of the mailbox, so a
// message from another peer is handled after at most that many of the
// flood's.
func TestPeerInflightLimitKeepsFloodersFair(t *testing.T) {
	// Not parallel: the bound below counts what the admin handles while the
	// polite message is on its way, which other tests' load stretches.
	const limit = 16
	c := testutil.NewCond()
	var order []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error {
			if ctx.Sender().Name == "flooder" {
				time.Sleep(time.Millisecond) // slow enough that the polite message's trip is short beside it
			}
			c.Update(func() { order = append(order, ctx.Sender().Name) })
			return nil
		})
	}, WithPeerInflight(limit))
	flooder := startClient(t, "flooder", admin, nil)
	polite := startClient(t, "polite", admin, nil)
	ctx := testutil.Context(t)
	go func() {
		for i := range 3000 {
			if flooder.Send(ctx, admin.ID(), note{N: i}) != nil {
				return
			}
		}
	}()
	c.Await(t, "the flood to start", 10*time.Second, func() bool { return len(order) >= 2*limit })
	c.Lock()
	before := len(order)
	c.Unlock()
	if err := polite.Send(ctx, admin.ID(), note{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	c.Await(t, "the polite message", 20*time.Second, func() bool {
		for _, who := range order {
			if who == "polite" {
				return true
			}
		}
		return false
	})
	c.Lock()
	defer c.Unlock()
	pos := 0
	for i, who := range order {
		if who == "polite" {
			pos = i
		}
	}
	// Between sending and handling, at most the flooder's in-flight
	// messages (plus a few already being handed over) went first.
	if waited := pos - before; waited > limit+8 {
		t.Fatalf("polite message waited behind %d flood messages (limit %d)", waited, limit)
	}
}

// A peer that keeps sending undecodable envelopes is banned: disconnected,
// and refused when it comes back.
func TestGarbageSenderIsBanned(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	var left []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		a.OnDisconnect(func(_ Context, who AgentDetail) { c.Update(func() { left = append(left, who.Name) }) })
	}, WithMaxBadMessages(5))
	evil := startClient(t, "evil", admin, func(a *Agent) {
		a.OnDisconnect(func(_ Context, who AgentDetail) { c.Update(func() { left = append(left, "evil saw "+who.Name) }) })
	}, WithReconnect(false))
	ctx := testutil.Context(t)
	for range 5 {
		if err := evil.Node().Send(ctx, admin.Node().ID(), []byte("not an envelope")); err != nil {
			t.Fatal(err)
		}
	}
	c.Await(t, "the ban, seen from both sides", 10*time.Second, func() bool { return len(left) == 2 })
	if admin.Node().Stats().Bans != 1 || admin.Stats().DroppedBad != 5 {
		t.Fatalf("stats: node %+v agent %+v", admin.Node().Stats(), admin.Stats())
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := evil.Node().Connect(short, admin.Addrs()[0]); err == nil {
		t.Fatal("banned peer reconnected")
	}
}

// A client whose connection to the admin drops reconnects by itself. A
// blip shorter than the leave grace is not a leave: neither side sees the
// other leave and join again.
func TestClientReconnects(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	joins, leaves := 0, 0
	var got []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		a.OnConnect(func(Context, AgentDetail) { c.Update(func() { joins++ }) })
		a.OnDisconnect(func(Context, AgentDetail) { c.Update(func() { leaves++ }) })
		On(a, func(ctx Context, m note) error { c.Update(func() { got = append(got, m.Text) }); return nil })
	}, WithPeerOptions(peer.WithLeaveGrace(time.Minute)))
	client := startClient(t, "client", admin, nil)
	c.Await(t, "first join", 10*time.Second, func() bool { return joins == 1 })
	// Cut every connection between them, from the admin's side.
	if err := admin.Node().Host().Network().ClosePeer(client.Node().ID()); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the client back", func() bool {
		return admin.Node().Host().Network().Connectedness(client.Node().ID()) == network.Connected
	})
	if err := client.Send(testutil.Context(t), admin.ID(), note{Text: "back"}); err != nil {
		t.Fatal(err)
	}
	c.Await(t, "a message after reconnecting", 10*time.Second, func() bool { return len(got) == 1 })
	c.Lock()
	defer c.Unlock()
	if joins != 1 || leaves != 0 {
		t.Fatalf("a blip showed as %d joins and %d leaves", joins, leaves)
	}
}

// With no leave grace, a dropped connection is a leave, and the client
// that comes back joins again.
func TestClientRejoinsAfterALeave(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	joins, leaves := 0, 0
	grace := WithPeerOptions(peer.WithLeaveGrace(0))
	admin := startAdmin(t, "admin", func(a *Agent) {
		a.OnConnect(func(Context, AgentDetail) { c.Update(func() { joins++ }) })
		a.OnDisconnect(func(Context, AgentDetail) { c.Update(func() { leaves++ }) })
	}, grace)
	client := startClient(t, "client", admin, nil, grace)
	c.Await(t, "first join", 10*time.Second, func() bool { return joins == 1 })
	if err := admin.Node().Host().Network().ClosePeer(client.Node().ID()); err != nil {
		t.Fatal(err)
	}
	c.Await(t, "a leave and a join", 10*time.Second, func() bool { return leaves == 1 && joins == 2 })
	testutil.Eventually(t, "the client sees the admin again", func() bool { return len(client.ConnectedAgents()) == 1 })
}

// With a secret, agents without it (or with another) get nothing in and
// nothing out, while the workspace keeps working.
func TestSecretWorkspace(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	var got []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error {
			c.Update(func() { got = append(got, ctx.Sender().Name+":"+m.Text) })
			return nil
		})
	}, WithSecret("open sesame"))
	member := startClient(t, "member", admin, nil, WithSecret("open sesame"))
	ctx := testutil.Context(t)
	for _, opts := range [][]Option{nil, {WithSecret("wrong")}} {
		intruder, err := New("intruder", append([]Option{loopback, WithWorkspace("ws-" + t.Name()), WithJoin(admin.Addrs()[0])}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		// Room for the node to come up on a loaded machine (under the race
		// detector that alone took over 500 ms); the join fails in the rest.
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = intruder.Start(short)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("intruder joined, or the error does not point at the secret: %v", err)
		}
		if err := member.Send(ctx, admin.ID(), note{Text: "still working"}); err != nil {
			t.Fatal(err)
		}
	}
	c.Await(t, "members' messages", 10*time.Second, func() bool { return len(got) == 2 })
	st := admin.Stats()
	if st.Received != 2 || st.DroppedBad+st.DroppedSpoofed+st.DroppedUnknown != 0 || len(admin.ConnectedAgents()) != 1 {
		t.Fatalf("admin heard from an intruder: %+v, %v", st, admin.ConnectedAgents())
	}
}

// Envelopes of a known kind whose bodies do not decode count toward a ban
// like any other garbage.
func TestUndecodableBodiesAreBanned(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	gone := false
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error { return nil })
		a.OnDisconnect(func(_ Context, who AgentDetail) { c.Update(func() { gone = gone || who.Name == "evil" }) })
	}, WithMaxBadMessages(10), WithPeerOptions(peer.WithLeaveGrace(0)))
	evil := startClient(t, "evil", admin, nil, WithReconnect(false))
	ctx := testutil.Context(t)
	for i := range 100 {
		env := messages.Envelope{ID: uint64(i + 1), Kind: note{}.Kind(), From: evil.ID(), Body: []byte{0xc1}}
		if err := evil.Node().Send(ctx, admin.Node().ID(), env.Encode()); err != nil {
			break // banned, disconnected
		}
	}
	c.Await(t, "the ban", 10*time.Second, func() bool { return gone })
	if st := admin.Node().Stats(); st.Bans != 1 {
		t.Fatalf("node stats %+v", st)
	}
}

// Broadcast garbage counts against its author, who signed it, even one
// that never presented itself to the receiver: it is rejected (neither
// delivered nor forwarded) and the author is banned.
func TestBroadcastGarbageIsBanned(t *testing.T) {
	t.Parallel()
	admin := startAdmin(t, "admin", nil, WithMaxBadMessages(10))
	// A raw node of the workspace: it publishes on the topic without an
	// agent (so without envelopes) and never opens a direct stream.
	evil, err := peer.New(testutil.Context(t), peer.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), peer.WithWorkspace("ws-"+t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	ai, _ := peer.ParseAddr(admin.Addrs()[0])
	if err := evil.Host().Connect(testutil.Context(t), ai); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the admin on the topic", func() bool { return evil.Stats().TopicPeers == 1 })
	for i := 0; i < 100 && evil.Stats().Conns > 0; i++ {
		_ = evil.Publish(testutil.Context(t), []byte("not an envelope"))
	}
	testutil.Eventually(t, "the ban", func() bool { return admin.Node().Stats().Bans == 1 })
	// GossipSub counts a rejection (its tracer) just after the validator
	// that penalized it returned: the tenth may trail the ban.
	testutil.Eventually(t, "ten rejections", func() bool { return admin.Node().Stats().GossipRejected >= 10 })
	if st := admin.Node().Stats(); st.BroadcastIn != 0 {
		t.Fatalf("node stats %+v", st)
	}
	if admin.Stats().Received != 0 {
		t.Fatal("garbage delivered")
	}
}
