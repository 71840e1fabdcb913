package peer

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
)

// A reachable member relays for members only: a member reserves a slot,
// a host that connects without presenting itself to the workspace is
// refused, and the refusal is counted.
func TestRelayServesMembersOnly(t *testing.T) {
	t.Parallel()
	relay := newTestNode(t, NopHandler{}, WithServer(true), WithReachability(ReachabilityPublic))
	testutil.Eventually(t, "the relay service", func() bool {
		return slices.Contains(relay.Host().Mux().Protocols(), proto.ProtoIDv2Hop)
	})
	ai := peer.AddrInfo{ID: relay.ID(), Addrs: relay.Host().Addrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	member := newTestNode(t, NopHandler{}, WithAutoRelay(false))
	connect(t, member, relay)
	if _, err := client.Reserve(ctx, member.Host(), ai); err != nil {
		t.Fatalf("a member was refused a reservation: %v", err)
	}

	outsider, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer outsider.Close()
	if err := outsider.Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, outsider, ai); err == nil {
		t.Fatal("a host that is no member got a reservation")
	}
	if s := relay.Stats(); s.RelayRefused == 0 {
		t.Fatalf("the refusal is not counted: %+v", s)
	}
}

// A node behind a NAT (or not known to be reachable) reserves a slot on
// its bootstrap peer's relay and announces the circuit in its addresses
// and its roster record.
func TestRelayReservationAnnounced(t *testing.T) {
	t.Parallel()
	boot := newTestBootstrap(t, WithReachability(ReachabilityPublic))
	srv := newTestNode(t, NopHandler{}, WithServer(true), WithBootstrap(boot.Addrs()[0].String()), WithReachability(ReachabilityPublic))
	n := newTestNode(t, NopHandler{}, WithBootstrap(boot.Addrs()[0].String()))
	testutil.Eventually(t, "the relayed address", func() bool { return len(n.circuitAddrs()) > 0 })
	testutil.Eventually(t, "the relayed address in the server's roster", func() bool {
		m, ok := srv.Member(n.ID())
		return ok && slices.ContainsFunc(m.Addrs, isCircuit)
	})
	if s := n.Stats(); s.RelayReservations == 0 {
		t.Fatalf("reservation not counted: %+v", s)
	}
}
