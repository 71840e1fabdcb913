package peer

import (
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// newHost builds the node's libp2p host: TCP and QUIC (TCP only with a
// secret: a private network), the workspace's limits (connection manager,
// resource manager), the ban list as connection gater, and NAT traversal
// (see reachOptions). With
// WithTransportOptions, those options replace the transports and listen
// addresses (a simulated network in tests). The returned closer releases
// the resource manager after the host has closed.
func newHost(cfg *config, n *Node) (host.Host, io.Closer, error) {
	rm, err := cfg.limits.resourceManager()
	if err != nil {
		return nil, nil, fmt.Errorf("peer: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.limits.ConnsLow, cfg.limits.ConnsHigh, connmgr.WithGracePeriod(cfg.limits.GracePeriod))
	if err != nil {
		_ = rm.Close()
		return nil, nil, fmt.Errorf("peer: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.UserAgent("ceylon-go"),
		libp2p.ConnectionGater(n.gater),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
	}
	opts = append(opts, reachOptions(cfg, n)...)
	if cfg.transport != nil {
		opts = append(opts, cfg.transport...)
	} else {
		listen := cfg.listen
		opts = append(opts, libp2p.Transport(tcp.NewTCPTransport))
		if cfg.secret != "" {
			listen = tcpOnly(listen)
			if len(listen) == 0 {
				_ = rm.Close()
				return nil, nil, fmt.Errorf("peer: a workspace secret needs a TCP listen address (private networks cannot use QUIC)")
			}
		} else {
			opts = append(opts, libp2p.Transport(quic.NewTransport))
		}
		opts = append(opts, libp2p.ListenAddrStrings(listen...))
	}
	if cfg.secret != "" {
		opts = append(opts, libp2p.PrivateNetwork(derivePSK(cfg.workspace, cfg.secret)))
	}
	if cfg.key != nil {
		opts = append(opts, libp2p.Identity(cfg.key))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		_ = rm.Close()
		return nil, nil, fmt.Errorf("peer: start host: %w", err)
	}
	return h, rm, nil
}

// tcpOnly drops the listen addresses that are not TCP.
func tcpOnly(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			out = append(out, a) // let libp2p report it
			continue
		}
		if _, err := m.ValueForProtocol(ma.P_TCP); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// reachOptions are the host's NAT traversal: the relay transport (to dial
// and be dialed over circuits), AutoNAT (v1, client and service with rate
// limits, on every node that listens beyond loopback; v2 on such
// managers and bootstrap nodes, see WithAutoNATv2), a relay service for
// the workspace's members once the node is publicly reachable, the relayed addresses of the reservations the node
// holds while it is not (relays.go), DCUtR hole punching, and port
// mapping on request.
func reachOptions(cfg *config, n *Node) []libp2p.Option {
	opts := []libp2p.Option{libp2p.EnableRelay()}
	if cfg.transport != nil {
		// A simulated network (tests): AutoNAT's dial-back hosts would
		// listen on real sockets, and nothing there is behind a NAT.
		return opts
	}
	if cfg.reachability != ReachabilityPrivate && !cfg.loopbackOnly() {
		// (AutoNAT runs no service on a node declared private, or one
		// listening on loopback only: its dial-back host would only be
		// built.)
		opts = append(opts,
			libp2p.EnableNATService(),
			libp2p.AutoNATServiceRateLimit(60, 6, time.Minute),
		)
	}
	if cfg.autoNATv2On(n.plain) {
		opts = append(opts, libp2p.EnableAutoNATv2())
	}
	switch cfg.reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.relayService {
		opts = append(opts, libp2p.EnableRelayService(
			relayv2.WithResources(relayResources(cfg.limits)),
			relayv2.WithACL(relayACL{n}),
		))
	}
	if cfg.autoRelay {
		// Relayed addresses (see relays.go) go out with the others.
		opts = append(opts, libp2p.AddrsFactory(func(addrs []ma.Multiaddr) []ma.Multiaddr {
			return append(addrs, n.circuitAddrs()...)
		}))
	}
	if cfg.holePunching {
		opts = append(opts, libp2p.EnableHolePunching(holepunch.WithTracer(n.punch)))
	}
	if cfg.natPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	return opts
}
