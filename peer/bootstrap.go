package peer

import (
	"context"
	"fmt"
	"io"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	ma "github.com/multiformats/go-multiaddr"
)

// Bootstrap is a plain DHT node for a workspace: an entry point that
// agents name with [WithBootstrap] to find the workspace by its ID, and a
// relay for those behind NATs. It is no member: it holds no roster, sends
// and receives no messages, and knows the workspace only by its
// rendezvous records. With the workspace's secret it admits only members
// (a private network); without one (an open workspace) anyone may use it.
// Put one on a machine that others can dial (a small cloud instance)
// when the task manager itself is not.
type Bootstrap struct {
	n     *Node // holds the config, gater and tracer the host needs
	host  host.Host
	rcmgr io.Closer
	dht   *dht.IpfsDHT
}

// NewBootstrap starts a bootstrap node. It takes the [Node] options that
// apply: WithWorkspace, WithSecret, WithListenAddrs, WithIdentity or
// WithIdentityFile, WithLimits, WithLogger, WithBootstrap (other entry
// points), WithReachability (declare it public on a private network),
// WithRelayService and WithAutoNATv2 (on by default); it answers DHT
// queries from the start.
func NewBootstrap(ctx context.Context, opts ...Option) (*Bootstrap, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	cfg.autoRelay, cfg.holePunching = false, false
	cfg.dhtServerSet, cfg.dhtServerOn = true, true
	n := &Node{cfg: cfg, gater: &gater{}, plain: true}
	n.punch = &punchTracer{n: n}
	h, rm, err := newHost(&n.cfg, n)
	if err != nil {
		return nil, err
	}
	kd, err := newDHT(h, &n.cfg)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		if kd != nil {
			_ = kd.Close()
		}
		_ = h.Close()
		_ = rm.Close()
		return nil, err
	}
	for _, ai := range cfg.bootstrap {
		if ai.ID != h.ID() {
			if err := h.Connect(ctx, ai); err != nil {
				cfg.logger.Warn("bootstrap: other entry point not reached", "peer", ai.ID, "err", err)
			}
		}
	}
	_ = kd.Bootstrap(ctx)
	return &Bootstrap{n: n, host: h, rcmgr: rm, dht: kd}, nil
}

// ID returns the node's peer ID.
func (b *Bootstrap) ID() ID { return b.host.ID() }

// Addrs returns the addresses to name it by, each ending in /p2p/<id>.
func (b *Bootstrap) Addrs() []ma.Multiaddr {
	self, err := ma.NewComponent("p2p", b.ID().String())
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range b.host.Addrs() {
		out = append(out, a.Encapsulate(self.Multiaddr()))
	}
	return out
}

// Host exposes the libp2p host, for tests and advanced use.
func (b *Bootstrap) Host() host.Host { return b.host }

// Stats returns the node's counters (relay and DHT figures; it carries no
// messages).
func (b *Bootstrap) Stats() Stats {
	s := b.n.stats.snapshot()
	s.Conns = len(b.host.Network().Conns())
	s.DHTPeers = b.dht.RoutingTable().Size()
	return s
}

// Close stops the node.
func (b *Bootstrap) Close() error {
	err := b.dht.Close()
	if cerr := b.host.Close(); err == nil {
		err = cerr
	}
	if cerr := b.rcmgr.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("peer: bootstrap: %w", cerr)
	}
	return err
}
