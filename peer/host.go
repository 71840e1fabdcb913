package peer

import (
	"fmt"
	"io"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// newHost builds the node's libp2p host: TCP and QUIC (TCP only with a
// secret: a private network), the workspace's limits (connection manager,
// resource manager), the ban list as connection gater. With
// WithTransportOptions, those options replace the transports and listen
// addresses (a simulated network in tests). The returned closer releases
// the resource manager after the host has closed.
func newHost(cfg *config, g *gater) (host.Host, io.Closer, error) {
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
		libp2p.DisableRelay(),
		libp2p.UserAgent("ceylon-go"),
		libp2p.ConnectionGater(g),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
	}
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
