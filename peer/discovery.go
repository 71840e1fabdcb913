package peer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/discovery"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Discovery by workspace ID: every node that has bootstrap peers, or
// serves a roster, runs a Kademlia DHT (go-libp2p-kad-dht) of its own
// (protocol prefix [DHTProtocolPrefix], so it is not the IPFS network's).
// Roster servers (task managers) advertise themselves under the
// workspace's rendezvous key; a node started with bootstrap addresses and
// nothing else looks the key up and joins every server it finds, as if
// it had been given their addresses.

// DHTProtocolPrefix prefixes the DHT's protocol IDs: a workspace's DHT is
// its own, apart from the public IPFS DHT.
const DHTProtocolPrefix = "/ceylon"

// Discovery timings: how soon a failed advertisement or lookup is tried
// again (doubling up to the max), and how often a node that has found its
// servers looks again (for servers that start later).
const (
	discoverRetryMin = 250 * time.Millisecond
	discoverRetryMax = 30 * time.Second
	discoverRefresh  = time.Minute
	advertiseTTL     = time.Hour
	// maxFoundServers bounds the servers a node joins from one lookup.
	maxFoundServers = 8
)

// RendezvousKey is the DHT key under which a workspace's roster servers
// advertise: a hash of the workspace ID and, when one is set, its secret,
// so the key tells an outsider neither, and the same workspace ID with and
// without a secret (or with another secret) gives unrelated keys.
func RendezvousKey(workspace, secret string) string {
	h := sha256.New()
	h.Write([]byte("ceylon-go/rendezvous/v1\x00"))
	h.Write([]byte(workspace))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	return "ceylon-ws/" + hex.EncodeToString(h.Sum(nil))
}

// startDHT starts the node's DHT when it has one (see [WithBootstrap],
// [WithDHTServer]): server mode for roster servers and nodes told to
// serve, otherwise client mode until AutoNAT finds the node publicly
// reachable.
func (n *Node) startDHT() error {
	if !n.cfg.dhtOn() {
		return nil
	}
	kd, err := newDHT(n.host, &n.cfg)
	if err != nil {
		return err
	}
	n.dht = kd
	n.disc = routing.NewRoutingDiscovery(kd)
	// Look up and advertise as soon as the DHT has someone to ask (its
	// first peers arrive after identify, well after the dial): set before
	// any connection exists, so nothing reads it meanwhile.
	rt := kd.RoutingTable()
	added := rt.PeerAdded
	rt.PeerAdded = func(p peer.ID) {
		if added != nil {
			added(p)
		}
		n.kickDiscovery()
	}
	n.wg.Add(1)
	go n.bootstrapLoop()
	if n.cfg.server {
		n.wg.Add(1)
		go n.advertiseLoop()
	}
	if n.cfg.findsServers() {
		n.wg.Add(1)
		go n.findLoop()
	}
	return nil
}

func newDHT(h host.Host, cfg *config) (*dht.IpfsDHT, error) {
	mode := dht.ModeAutoServer
	if cfg.dhtServer() {
		mode = dht.ModeServer
	}
	boot := cfg.bootstrap
	kd, err := dht.New(h,
		dht.Mode(mode),
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.BootstrapPeersFunc(func() []peer.AddrInfo { return boot }),
	)
	if err != nil {
		return nil, fmt.Errorf("peer: start DHT: %w", err)
	}
	return kd, nil
}

// bootstrapLoop dials the bootstrap peers until at least one is reached
// and the DHT has a peer in its routing table, then leaves the DHT's own
// refresh to keep it filled (it falls back on the bootstrap peers when its
// table empties).
func (n *Node) bootstrapLoop() {
	defer n.wg.Done()
	for attempt := 1; ; attempt++ {
		ok := len(n.cfg.bootstrap) == 0
		for _, ai := range n.cfg.bootstrap {
			if ai.ID == n.ID() {
				ok = true
				continue
			}
			if sw, isSwarm := n.host.Network().(*swarm.Swarm); isSwarm {
				sw.Backoff().Clear(ai.ID)
			}
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
			err := n.host.Connect(ctx, ai)
			cancel()
			if err == nil {
				ok = true
			} else if n.ctx.Err() == nil {
				n.cfg.logger.Debug("bootstrap peer not reached yet", "peer", ai.ID, "attempt", attempt, "err", err)
			}
		}
		if ok {
			_ = n.dht.Bootstrap(n.ctx)
			n.kickDiscovery()
			return
		}
		if !n.sleep(retryDelay(attempt)) {
			return
		}
	}
}

// advertiseLoop keeps this roster server's record under the rendezvous
// key: again before it expires, at once when the node's addresses change
// (a relay reservation, a new listen address), and soon after a failure
// (the DHT has no peers yet).
func (n *Node) advertiseLoop() {
	defer n.wg.Done()
	sub, err := n.host.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated))
	if err != nil {
		n.cfg.logger.Warn("advertise: no address events", "err", err)
		return
	}
	defer sub.Close()
	ns := RendezvousKey(n.cfg.workspace, n.cfg.secret)
	failures := 0
	for {
		wait := advertiseTTL * 3 / 4
		ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
		_, err := n.disc.Advertise(ctx, ns, discovery.TTL(advertiseTTL))
		cancel()
		if n.ctx.Err() != nil {
			return
		}
		if err != nil {
			failures++
			wait = retryDelay(failures)
			n.stats.advertiseFailures.Add(1)
			n.cfg.logger.Debug("advertise failed, retrying", "in", wait, "err", err)
		} else {
			failures = 0
			n.stats.advertised.Add(1)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-sub.Out():
			t.Stop()
		case <-n.discoverKick:
			t.Stop()
		case <-n.ctx.Done():
			t.Stop()
			return
		}
	}
}

// findLoop looks up the rendezvous key and joins the roster servers it
// finds: soon again while it has found none, then every minute (servers
// that start later).
func (n *Node) findLoop() {
	defer n.wg.Done()
	ns := RendezvousKey(n.cfg.workspace, n.cfg.secret)
	misses := 0
	for {
		found := n.findServers(ns)
		wait := discoverRefresh
		if found == 0 {
			misses++
			wait = retryDelay(misses)
		} else {
			misses = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-n.discoverKick:
			t.Stop()
		case <-n.ctx.Done():
			t.Stop()
			return
		}
	}
}

// findServers runs one lookup and joins what it finds; it returns how
// many servers this node holds joined afterwards.
func (n *Node) findServers(ns string) int {
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	ch, err := n.disc.FindPeers(ctx, ns, discovery.Limit(maxFoundServers))
	if err != nil {
		n.cfg.logger.Debug("rendezvous lookup failed", "err", err)
		return n.joinedCount()
	}
	for ai := range ch {
		if ai.ID == n.ID() || ai.ID == "" {
			continue
		}
		n.stats.found.Add(1)
		if n.isKept(ai.ID) {
			continue
		}
		if len(ai.Addrs) == 0 {
			if pi, err := n.dht.FindPeer(ctx, ai.ID); err == nil {
				ai = pi
			}
		}
		if err := n.joinInfo(ctx, ai); err != nil {
			n.cfg.logger.Debug("found a server but cannot join it", "peer", ai.ID, "err", err)
			continue
		}
		n.cfg.logger.Info("joined a server found by workspace ID", "peer", ai.ID)
	}
	return n.joinedCount()
}

// kickDiscovery asks the advertise and find loops to run now.
func (n *Node) kickDiscovery() {
	for range 2 {
		select {
		case n.discoverKick <- struct{}{}:
		default:
		}
	}
}

func (n *Node) isKept(p ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.keep[p] != nil
}

func (n *Node) joinedCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.keep)
}

// sleep waits d, or reports false once the node closes.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-n.ctx.Done():
		return false
	}
}

func retryDelay(attempt int) time.Duration {
	d := discoverRetryMin
	for i := 1; i < attempt && d < discoverRetryMax; i++ {
		d *= 2
	}
	return min(d, discoverRetryMax)
}
