package peer

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
)

// startMDNS advertises the node on the local network under a service name
// derived from the workspace, and connects to every peer it finds there
// (following it, if it serves a roster).
func (n *Node) startMDNS() error {
	svc := mdns.NewMdnsService(n.host, "ceylon-"+n.cfg.workspace, &mdnsNotifee{n})
	if err := svc.Start(); err != nil {
		return err
	}
	n.mdns = svc
	return nil
}

type mdnsNotifee struct{ n *Node }

// HandlePeerFound connects to a discovered peer in the background.
func (m *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if ai.ID == n.ID() || n.Present(ai.ID) {
		return
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
		defer cancel()
		if err := n.ConnectInfo(ctx, ai); err != nil {
			n.cfg.logger.Debug("mdns: connect failed", "peer", ai.ID, "err", err)
		}
	}()
}
