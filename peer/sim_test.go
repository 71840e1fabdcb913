package peer

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/x/simlibp2p"
	"github.com/marcopolo/simnet"
)

// simNet is a simulated network for many-peer tests under testing/synctest:
// every node listens on QUIC at its own simulated public address, links
// have one latency (1 ms unless setLatency changes it), and time is the
// bubble's.
type simNet struct {
	t       *testing.T
	router  *simnet.Simnet
	latency atomic.Int64 // one way, of every link (setLatency)
	next    int
	nodes   []*Node
}

// onSimNet runs body in a synctest bubble on a new simulated network, in
// parallel with the package's other tests, and not under the race detector
// (see race_test.go).
func onSimNet(t *testing.T, body func(t *testing.T, net *simNet)) {
	t.Helper()
	t.Parallel()
	skipUnderRace(t)
	synctest.Test(t, func(t *testing.T) { body(t, newSimNet(t)) })
}

func newSimNet(t *testing.T) *simNet {
	s := &simNet{t: t}
	s.latency.Store(int64(time.Millisecond))
	r := &simnet.Simnet{LatencyFunc: func(*simnet.Packet) time.Duration { return time.Duration(s.latency.Load()) }}
	r.Start()
	s.router = r
	t.Cleanup(func() {
		for _, n := range s.nodes {
			_ = n.Close()
		}
		r.Close()
	})
	return s
}

// setLatency sets every link's one-way latency from now on.
func (s *simNet) setLatency(d time.Duration) { s.latency.Store(int64(d)) }

var simLink = simnet.NodeBiDiLinkSettings{
	Downlink: simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
	Uplink:   simnet.LinkSettings{BitsPerSecond: 100 * simlibp2p.OneMbps},
}

// node starts a node on the next address.
func (s *simNet) node(h Handler, opts ...Option) *Node {
	s.t.Helper()
	s.next++
	return s.nodeAt(s.next, nil, h, opts...)
}

// nodeAt starts a node on address number i, with key k (nil: a fresh one).
func (s *simNet) nodeAt(i int, k crypto.PrivKey, h Handler, opts ...Option) *Node {
	s.t.Helper()
	addr := fmt.Sprintf("/ip4/%s/udp/8000/quic-v1", simnet.IntToPublicIPv4(i))
	base := []Option{
		WithWorkspace("sim"), WithHandler(h),
		WithTransportOptions(
			libp2p.Transport(quic.NewTransport),
			libp2p.ListenAddrStrings(addr),
			simlibp2p.QUICSimnet(s.router, simLink),
			libp2p.DisableIdentifyAddressDiscovery(),
		),
	}
	if k != nil {
		base = append(base, WithIdentity(k))
	}
	n, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.nodes = append(s.nodes, n)
	return n
}

func (s *simNet) join(n, to *Node) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := n.Join(ctx, to.Addrs()[0].String()); err != nil {
		s.t.Fatal(err)
	}
}
