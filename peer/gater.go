package peer

import (
	"fmt"
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
	bad    map[ID]int       // offences so far (see Penalize)
}

func (g *gater) ban(p ID, d time.Duration) {
	g.mu.Lock()
	if g.banned == nil {
		g.banned = map[ID]time.Time{}
	}
	if len(g.banned) >= maxTracked {
		now := time.Now()
		for id, until := range g.banned {
			if now.After(until) {
				delete(g.banned, id)
			}
		}
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

// maxTracked bounds the peers whose offences a node remembers; past it the
// tally starts over (an attacker with many identities gains nothing: each
// identity still needs MaxBadFrames offences before the reset).
const maxTracked = 4096

// Penalize counts one offence of p (undecodable input, a broadcast that
// failed validation, a spoofed sender) and bans p for [DefaultBan] once it
// has [WithMaxBadFrames] of them. It works for peers that are not
// connected (the author of a bad broadcast): their next connection is
// refused.
func (n *Node) Penalize(p ID, reason string) {
	if p == n.ID() {
		return
	}
	n.stats.penalties.Add(1)
	g := n.gater
	if !g.allowed(p) {
		return // banned already
	}
	g.mu.Lock()
	if g.bad == nil || len(g.bad) >= maxTracked {
		g.bad = map[ID]int{}
	}
	g.bad[p]++
	ban := g.bad[p] >= n.cfg.maxBadFrames
	if ban {
		delete(g.bad, p)
	}
	g.mu.Unlock()
	if ban {
		n.Ban(p, DefaultBan, fmt.Sprintf("%d offences, the last: %s", n.cfg.maxBadFrames, reason))
	}
}
