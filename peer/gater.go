package peer

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	ma "github.com/multiformats/go-multiaddr"
)

// DefaultBan is how long a peer that broke the protocol stays banned.
const DefaultBan = time.Minute

// gater refuses connections to and from banned peers.
type gater struct {
	mu     sync.Mutex
	banned map[ID]time.Time // until
}

func (g *gater) ban(p ID, d time.Duration) {
	g.mu.Lock()
	if g.banned == nil {
		g.banned = map[ID]time.Time{}
	}
	g.banned[p] = time.Now().Add(d)
	g.mu.Unlock()
}

func (g *gater) allowed(p ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	until, ok := g.banned[p]
	if !ok {
		return true
	}
	if time.Now().After(until) {
		delete(g.banned, p)
		return true
	}
	return false
}

func (g *gater) InterceptPeerDial(p ID) bool                 { return g.allowed(p) }
func (g *gater) InterceptAddrDial(p ID, _ ma.Multiaddr) bool { return g.allowed(p) }
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}
func (g *gater) InterceptSecured(_ network.Direction, p ID, _ network.ConnMultiaddrs) bool {
	return g.allowed(p)
}

// Ban disconnects p and refuses its connections for d: the response to a
// peer that sends garbage. Presence shows it leave.
func (n *Node) Ban(p ID, d time.Duration, reason string) {
	if p == n.ID() {
		return
	}
	n.stats.bans.Add(1)
	n.cfg.logger.Warn("banning peer", "peer", p, "for", d, "reason", reason)
	n.gater.ban(p, d)
	_ = n.host.Network().ClosePeer(p)
}
