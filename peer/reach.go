package peer

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

// Reaching agents behind NATs is go-libp2p's: AutoNAT tells a node
// whether it is publicly reachable; a reachable node offers a circuit
// relay (v2) to the members of its workspace; a node that is not reserves
// a slot on relays among its bootstrap peers, its static relays and the
// members it is connected to, and advertises the relayed addresses
// (relays.go); DCUtR then tries to punch a direct connection through both
// NATs, and streams move to it once it exists.

// Reachability is what a node knows of its own reachability from the
// public side (libp2p's: unknown, public, private).
type Reachability = network.Reachability

// Reachabilities for [WithReachability].
const (
	ReachabilityUnknown = network.ReachabilityUnknown
	ReachabilityPublic  = network.ReachabilityPublic
	ReachabilityPrivate = network.ReachabilityPrivate
)

// Reach is how a node is connected to one peer.
type Reach string

// Reaches, best first.
const (
	// ReachDirect: a direct connection (TCP or QUIC).
	ReachDirect Reach = "direct"
	// ReachHolePunched: a direct connection that DCUtR punched through
	// NATs, after the two met over a relay.
	ReachHolePunched Reach = "hole-punched"
	// ReachRelayed: only relayed connections (circuit relay v2).
	ReachRelayed Reach = "relayed"
	// ReachNone: not connected.
	ReachNone Reach = ""
)

// relayResources are a workspace relay's limits. libp2p's defaults (two
// minutes and 128 KiB per relayed connection, 16 circuits and 8
// reservations per IP address) are made for coordinating a hole punch; a
// workspace relays its members' tasks when no hole can be punched, so a
// relayed connection has no time or data limit, and many members behind
// one NAT (one IP address) may reserve. What the relay moves still
// counts against the node's resource manager (the relay service's scope).
func relayResources(l Limits) relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = nil
	r.MaxReservations = l.MaxConns
	r.MaxCircuits = 64
	r.BufferSize = 16 << 10
	r.MaxReservationsPerIP = l.ConnsPerIP
	r.MaxReservationsPerASN = l.MaxConns
	return r
}

// relayACL lets only members of the workspace reserve a slot on this
// node's relay and be relayed to one (with a secret, nobody else can
// connect at all).
type relayACL struct{ n *Node }

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	ok := a.n.plain || (a.n.up.Load() && a.n.roster.present(p))
	if !ok {
		a.n.stats.relayRefused.Add(1)
	}
	return ok
}

func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	ok := a.n.plain || (a.n.up.Load() && a.n.roster.present(src) && a.n.roster.present(dest))
	if ok {
		a.n.stats.relayCircuits.Add(1)
	} else {
		a.n.stats.relayRefused.Add(1)
	}
	return ok
}

// punchTracer counts DCUtR's hole punches and remembers the peers one
// succeeded with.
type punchTracer struct {
	n       *Node
	mu      sync.Mutex
	punched map[ID]time.Time
}

func (t *punchTracer) Trace(evt *holepunch.Event) {
	s := &t.n.stats
	switch e := evt.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		s.punchAttempts.Add(1)
	case *holepunch.EndHolePunchEvt:
		if e.Success {
			s.punchSuccesses.Add(1)
			t.mark(evt.Remote)
		} else {
			s.punchFailures.Add(1)
		}
	case *holepunch.DirectDialEvt:
		if e.Success {
			s.directUpgrades.Add(1)
		}
	}
}

func (t *punchTracer) mark(p ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.punched == nil || len(t.punched) >= maxTracked {
		t.punched = map[ID]time.Time{}
	}
	t.punched[p] = time.Now()
}

func (t *punchTracer) wasPunched(p ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.punched[p]
	return ok
}

// Reach reports how this node is connected to p.
func (n *Node) Reach(p ID) Reach {
	conns := n.host.Network().ConnsToPeer(p)
	if len(conns) == 0 {
		return ReachNone
	}
	for _, c := range conns {
		if !isRelayed(c) {
			if n.punch.wasPunched(p) {
				return ReachHolePunched
			}
			return ReachDirect
		}
	}
	return ReachRelayed
}

// Reachability reports what the node knows of its own reachability.
func (n *Node) Reachability() Reachability {
	return Reachability(n.reachability.Load())
}

func isRelayed(c network.Conn) bool {
	_, err := c.RemoteMultiaddr().ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// watchSelf follows the node's own reachability and addresses: when its
// addresses change (a relay reservation made or lost, a mapped port), the
// peers it joined hear its new record at once, so the roster carries the
// addresses others can reach it by.
func (n *Node) watchSelf() {
	defer n.wg.Done()
	sub, err := n.host.EventBus().Subscribe([]any{new(event.EvtLocalAddressesUpdated), new(event.EvtLocalReachabilityChanged)})
	if err != nil {
		n.cfg.logger.Warn("no address events", "err", err)
		return
	}
	defer sub.Close()
	for {
		select {
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			switch e := ev.(type) {
			case event.EvtLocalReachabilityChanged:
				n.reachability.Store(int32(e.Reachability))
				n.cfg.logger.Info("reachability", "now", e.Reachability.String())
			case event.EvtLocalAddressesUpdated:
				if e.Diffs {
					n.represent()
				}
			}
		case <-n.ctx.Done():
			return
		}
	}
}

// represent presents this node again to every peer it joined.
func (n *Node) represent() {
	n.mu.Lock()
	ids := make([]ID, 0, len(n.keep))
	for p := range n.keep {
		ids = append(ids, p)
	}
	n.mu.Unlock()
	for _, p := range ids {
		n.rejoin(p)
	}
}

// preferDirect moves p's outbound stream off a relayed connection once a
// direct one exists (a hole punch succeeded, or p became reachable): the
// stream is retired (what is queued is flushed), and the next send opens
// a new one on the best connection.
func (n *Node) preferDirect(p ID, c network.Conn) {
	if isRelayed(c) {
		n.stats.relayedConns.Add(1)
		return
	}
	n.mu.Lock()
	o := n.out[p]
	if o == nil || !isRelayed(o.s.Conn()) || n.closed {
		n.mu.Unlock()
		return
	}
	delete(n.out, p)
	n.wg.Add(1)
	n.mu.Unlock()
	go func() { defer n.wg.Done(); o.close(closeWait, errRetired, false) }()
}
