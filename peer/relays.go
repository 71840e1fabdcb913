package peer

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	ma "github.com/multiformats/go-multiaddr"
)

// Relay reservations. libp2p's autorelay reserves slots but announces the
// relayed addresses only of relays with public IP addresses, and starts
// only once AutoNAT has judged the node, which it never does on a private
// network: a workspace behind NATs inside a company or a cloud (relays on
// 10.0.0.0/8) would get no relayed address at all. So the node keeps its
// reservations itself, with go-libp2p's circuit v2 client: while it is not
// publicly reachable, it holds a reservation on up to maxRelays of its
// relay candidates (static relays, bootstrap peers, connected members
// that offer a relay), renews each before it expires, drops it when the
// relay's connection goes, and announces <relay address>/p2p/<relay>/
// p2p-circuit for each in its addresses and roster record.

const (
	maxRelays      = 2
	relayCheck     = time.Second
	relayRedialMax = 30 * time.Second
)

type reservation struct {
	expires time.Time
	addrs   []ma.Multiaddr // the relay's addresses, as circuits to us
}

// relaySet is the node's reservations.
type relaySet struct {
	mu    sync.Mutex
	held  map[ID]reservation
	addrs []ma.Multiaddr // circuit addresses of held, sorted
	retry map[ID]time.Time
	fails map[ID]int
}

// circuitAddrs returns the relayed addresses the node can be reached by.
func (n *Node) circuitAddrs() []ma.Multiaddr {
	rs := &n.relaySet
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return slices.Clone(rs.addrs)
}

// relayLoop keeps the node's reservations while it is not publicly
// reachable.
func (n *Node) relayLoop() {
	defer n.wg.Done()
	rs := &n.relaySet
	rs.held, rs.retry, rs.fails = map[ID]reservation{}, map[ID]time.Time{}, map[ID]int{}
	t := time.NewTicker(relayCheck)
	defer t.Stop()
	for {
		if n.Reachability() != ReachabilityPublic {
			n.keepRelays()
		} else {
			n.dropRelays()
		}
		select {
		case <-t.C:
		case <-n.relayKick:
		case <-n.ctx.Done():
			return
		}
	}
}

// kickRelays asks the relay loop to look now (a connection came up: a
// relay may be back).
func (n *Node) kickRelays() {
	select {
	case n.relayKick <- struct{}{}:
	default:
	}
}

// keepRelays drops reservations whose relay is gone, renews those that
// expire soon and makes new ones up to maxRelays.
func (n *Node) keepRelays() {
	rs := &n.relaySet
	now := time.Now()
	changed := false
	rs.mu.Lock()
	for p, r := range rs.held {
		if !n.connected(p) || now.After(r.expires) {
			delete(rs.held, p)
			changed = true
		}
	}
	held := len(rs.held)
	rs.mu.Unlock()
	for _, ai := range n.relayCandidatesList() {
		rs.mu.Lock()
		r, have := rs.held[ai.ID]
		due := rs.retry[ai.ID]
		rs.mu.Unlock()
		renew := have && now.After(r.expires.Add(-r.expires.Sub(now)/2-time.Minute))
		if (have && !renew) || (!have && held >= maxRelays) || now.Before(due) {
			continue
		}
		if ok := n.reserve(ai); ok {
			changed = true
			if !have {
				held++
			}
		}
	}
	if changed {
		n.relaysChanged()
	}
}

// reserve makes or renews a reservation on ai, dialing it if needed.
func (n *Node) reserve(ai peer.AddrInfo) bool {
	rs := &n.relaySet
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
	defer cancel()
	if !n.connected(ai.ID) {
		// Our own backoff paces these dials: libp2p's would refuse the
		// relay for seconds after it is back.
		if sw, ok := n.host.Network().(*swarm.Swarm); ok {
			sw.Backoff().Clear(ai.ID)
		}
		if len(ai.Addrs) == 0 || n.host.Connect(ctx, ai) != nil {
			n.relayBackoff(ai.ID)
			return false
		}
	}
	if ok, _ := n.host.Peerstore().SupportsProtocols(ai.ID, proto.ProtoIDv2Hop); len(ok) == 0 {
		return false // not a relay (or identify has not said yet): look again later
	}
	res, err := client.Reserve(ctx, n.host, peer.AddrInfo{ID: ai.ID})
	if err != nil {
		n.stats.relayReserveFailures.Add(1)
		n.cfg.logger.Debug("relay reservation refused", "relay", ai.ID, "err", err)
		n.relayBackoff(ai.ID)
		return false
	}
	circuit, err := ma.NewMultiaddr("/p2p/" + ai.ID.String() + "/p2p-circuit")
	if err != nil {
		return false
	}
	var addrs []ma.Multiaddr
	for _, a := range n.host.Peerstore().Addrs(ai.ID) {
		if !isCircuit(a) {
			addrs = append(addrs, a.Encapsulate(circuit))
		}
	}
	rs.mu.Lock()
	rs.held[ai.ID] = reservation{expires: res.Expiration, addrs: addrs}
	delete(rs.fails, ai.ID)
	delete(rs.retry, ai.ID)
	rs.mu.Unlock()
	n.stats.relayReservations.Add(1)
	n.cfg.logger.Debug("relay reservation", "relay", ai.ID, "until", res.Expiration)
	return true
}

func (n *Node) relayBackoff(p ID) {
	rs := &n.relaySet
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.fails[p]++
	rs.retry[p] = time.Now().Add(min(retryDelay(rs.fails[p]), relayRedialMax))
}

func (n *Node) dropRelays() {
	rs := &n.relaySet
	rs.mu.Lock()
	had := len(rs.held) > 0
	clear(rs.held)
	rs.mu.Unlock()
	if had {
		n.relaysChanged()
	}
}

// relaysChanged recomputes the relayed addresses and tells the peers this
// node joined (its roster record carries them).
func (n *Node) relaysChanged() {
	rs := &n.relaySet
	rs.mu.Lock()
	var addrs []ma.Multiaddr
	for _, r := range rs.held {
		addrs = append(addrs, r.addrs...)
	}
	slices.SortFunc(addrs, func(a, b ma.Multiaddr) int { return slices.Compare(a.Bytes(), b.Bytes()) })
	same := slices.EqualFunc(addrs, rs.addrs, func(a, b ma.Multiaddr) bool { return a.Equal(b) })
	rs.addrs = addrs
	rs.mu.Unlock()
	if !same {
		n.represent()
	}
}

// relayCandidatesList is where the node looks for relays: its static
// relays, its bootstrap peers, and the roster servers (task managers) it
// is linked to: the members that may relay (those publicly reachable)
// without scanning the whole roster every second.
func (n *Node) relayCandidatesList() []peer.AddrInfo {
	seen := map[ID]bool{n.ID(): true}
	var out []peer.AddrInfo
	add := func(ai peer.AddrInfo) {
		if !seen[ai.ID] {
			seen[ai.ID] = true
			out = append(out, ai)
		}
	}
	for _, ai := range n.cfg.relays {
		add(ai)
	}
	for _, ai := range n.cfg.bootstrap {
		add(ai)
	}
	for _, p := range n.roster.linkedServers() {
		if n.connected(p) {
			add(peer.AddrInfo{ID: p})
		}
	}
	return out
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}
