package peer

import (
	"errors"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/x/rate"
)

// Limits size a node's connections and streams. libp2p's own defaults suit
// a desktop peer, not a workspace: its connection manager trims at 160/192
// connections, its resource manager admits about 80 connections still in
// their handshake (so a few hundred idle sockets lock everyone out), and it
// accepts 8 connections and 0.2 new ones a second per IP address. These
// are sized so that one node (a task manager) serves thousands of others
// and so that unauthenticated or idle sockets cannot starve admission.
//
// Loopback addresses are never limited per IP.
type Limits struct {
	// ConnsLow and ConnsHigh are the connection manager's water marks:
	// past ConnsHigh connections it closes unprotected ones (the least
	// valuable first, none younger than GracePeriod) until ConnsLow
	// unprotected ones remain. Protected are the connections carrying
	// direct streams in use, those of peers joined with Join, and
	// GossipSub's mesh (at most 12 peers), so a node holds at most about
	// ConnsLow + 12 + its active peers.
	ConnsLow, ConnsHigh int
	// GracePeriod is how long a new connection is safe from trimming.
	GracePeriod time.Duration
	// MaxConns bounds the node's connections, in and out.
	MaxConns int
	// MaxPendingConns bounds the connections still in their handshake,
	// in each direction: what an attacker holding idle sockets must
	// exceed to lock anyone out (each costs a socket and a few KiB; libp2p
	// drops them after 15 s).
	MaxPendingConns int
	// ConnsPerPeer and StreamsPerPeer bound one peer.
	ConnsPerPeer, StreamsPerPeer int
	// ConnsPerIP bounds the connections from one IPv4 address or IPv6 /56.
	ConnsPerIP int
	// NewConnsPerIP bounds the rate of new inbound connections from one
	// address, with bursts of NewConnsBurstPerIP.
	NewConnsPerIP      float64
	NewConnsBurstPerIP int
	// Memory bounds what libp2p may reserve, in bytes; 0 scales it to the
	// machine (libp2p's default).
	Memory int64
}

// DefaultLimits are sized for a workspace of a few thousand agents with
// one manager.
func DefaultLimits() Limits {
	return Limits{
		ConnsLow: 48, ConnsHigh: 64, GracePeriod: 20 * time.Second,
		MaxConns:        8192,
		MaxPendingConns: 2048,
		ConnsPerPeer:    8, StreamsPerPeer: 512,
		ConnsPerIP:    1024,
		NewConnsPerIP: 100, NewConnsBurstPerIP: 1024,
	}
}

func (l Limits) validate() error {
	switch {
	case l.ConnsLow < 1 || l.ConnsHigh < l.ConnsLow:
		return errors.New("peer: connection water marks need 1 <= low <= high")
	case l.MaxConns < l.ConnsHigh || l.MaxPendingConns < 1:
		return errors.New("peer: max connections below the high water mark, or no pending connections")
	case l.ConnsPerPeer < 1 || l.StreamsPerPeer < 8:
		return errors.New("peer: per-peer limits too small (at least 1 connection and 8 streams)")
	case l.ConnsPerIP < 1 || l.NewConnsPerIP <= 0 || l.NewConnsBurstPerIP < 1:
		return errors.New("peer: per-IP limits must be positive")
	case l.GracePeriod < 0 || l.Memory < 0:
		return errors.New("peer: negative grace period or memory")
	}
	return nil
}

// resourceManager builds libp2p's resource manager with these limits on top
// of its scaled defaults (memory, file descriptors, per-service limits).
func (l Limits) resourceManager() (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.AutoScale()
	v := func(n int) rcmgr.LimitVal { return rcmgr.LimitVal(n) }
	system := rcmgr.ResourceLimits{
		Conns: v(l.MaxConns), ConnsInbound: v(l.MaxConns), ConnsOutbound: v(l.MaxConns),
		Streams: v(16 * l.MaxConns), StreamsInbound: v(8 * l.MaxConns), StreamsOutbound: v(8 * l.MaxConns),
		FD: v(max(base.ToPartialLimitConfig().System.FD.Build(0), l.MaxConns+256)),
	}
	if l.Memory > 0 {
		system.Memory = rcmgr.LimitVal64(l.Memory)
	}
	perProtocol := rcmgr.ResourceLimits{
		Streams: v(4 * l.MaxConns), StreamsInbound: v(4 * l.MaxConns), StreamsOutbound: v(4 * l.MaxConns),
		Memory: rcmgr.Unlimited64, // the system's limit applies
	}
	perPeer := rcmgr.ResourceLimits{
		Streams: v(l.StreamsPerPeer), StreamsInbound: v(l.StreamsPerPeer), StreamsOutbound: v(l.StreamsPerPeer),
	}
	partial := rcmgr.PartialLimitConfig{
		System: system,
		Transient: rcmgr.ResourceLimits{
			Conns: v(2 * l.MaxPendingConns), ConnsInbound: v(l.MaxPendingConns), ConnsOutbound: v(l.MaxPendingConns),
			Streams: v(2 * l.MaxPendingConns), StreamsInbound: v(l.MaxPendingConns), StreamsOutbound: v(l.MaxPendingConns),
			FD: v(l.MaxPendingConns),
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: v(l.ConnsPerPeer), ConnsInbound: v(l.ConnsPerPeer), ConnsOutbound: v(l.ConnsPerPeer),
			Streams: v(l.StreamsPerPeer), StreamsInbound: v(l.StreamsPerPeer), StreamsOutbound: v(l.StreamsPerPeer),
		},
		// libp2p's defaults admit about 1,300 inbound streams per protocol
		// (fewer on a smaller machine): a manager with a thousand workers
		// needs one direct and one GossipSub stream from each.
		ProtocolDefault:     perProtocol,
		ServiceDefault:      perProtocol,
		ProtocolPeerDefault: perPeer,
		ServicePeerDefault:  perPeer,
	}
	limiter := &rate.Limiter{
		NetworkPrefixLimits: []rate.PrefixLimit{
			{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Limit: rate.Limit{}},
			{Prefix: netip.MustParsePrefix("::1/128"), Limit: rate.Limit{}},
		},
		SubnetRateLimiter: rate.SubnetLimiter{
			IPv4SubnetLimits: []rate.SubnetLimit{{PrefixLength: 32, Limit: rate.Limit{RPS: l.NewConnsPerIP, Burst: l.NewConnsBurstPerIP}}},
			IPv6SubnetLimits: []rate.SubnetLimit{{PrefixLength: 56, Limit: rate.Limit{RPS: l.NewConnsPerIP, Burst: l.NewConnsBurstPerIP}}},
			GracePeriod:      time.Minute,
		},
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(base)),
		rcmgr.WithLimitPerSubnet(
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 32, ConnCount: l.ConnsPerIP}},
			[]rcmgr.ConnLimitPerSubnet{{PrefixLength: 56, ConnCount: l.ConnsPerIP}}),
		rcmgr.WithConnRateLimiters(limiter),
	)
}
