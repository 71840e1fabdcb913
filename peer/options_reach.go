package peer

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Options for discovery by workspace ID and for reaching nodes behind
// NATs (discovery.go, reach.go).

// reachConfig is the part of a node's config these options set.
type reachConfig struct {
	bootstrap    []peer.AddrInfo
	relays       []peer.AddrInfo
	dhtServerSet bool // WithDHTServer was given
	dhtServerOn  bool
	reachability Reachability
	relayService bool
	autoRelay    bool
	holePunching bool
	natPortMap   bool
	autoNATv2    *bool // WithAutoNATv2, if given
}

func defaultReach() reachConfig {
	return reachConfig{relayService: true, autoRelay: true, holePunching: true}
}

// dhtOn reports whether the node runs a DHT: it has bootstrap peers, is a
// roster server (a task manager), or was told to serve one.
func (c *config) dhtOn() bool {
	return len(c.bootstrap) > 0 || c.server || c.dhtServerOn
}

// dhtServer reports whether the node's DHT answers queries (so that any
// member running one can be another's bootstrap peer): yes unless told
// otherwise or declared behind a NAT. (kad-dht's automatic mode would
// serve only once AutoNAT finds a public address, never on a private
// network.)
func (c *config) dhtServer() bool {
	if c.dhtServerSet {
		return c.dhtServerOn
	}
	return c.reachability != ReachabilityPrivate
}

// autoNATv2On reports whether the node runs AutoNAT v2: as told
// (WithAutoNATv2), or by default if it is a roster server (a task
// manager) or a bootstrap node, the nodes the others join or find the
// workspace through, unless it listens on loopback only.
func (c *config) autoNATv2On(bootstrap bool) bool {
	if c.autoNATv2 != nil {
		return *c.autoNATv2
	}
	return (c.server || bootstrap) && !c.loopbackOnly()
}

// loopbackOnly reports whether every address the node listens on is a
// loopback address: such a node (agents embedded in one program, or on
// one machine) has nothing for AutoNAT to find out, and AutoNAT dials
// back public addresses only, so it serves nobody either; its dial-back
// hosts (a second libp2p host each, built at start) are not made.
func (c *config) loopbackOnly() bool {
	if len(c.listen) == 0 {
		return false
	}
	for _, s := range c.listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil || !manet.IsIPLoopback(a) {
			return false
		}
	}
	return true
}

// findsServers reports whether the node looks up the workspace's roster
// servers under the rendezvous key: any node with bootstrap peers that is
// not one itself.
func (c *config) findsServers() bool { return len(c.bootstrap) > 0 && !c.server }

func parseAddrInfos(what string, addrs []string) ([]peer.AddrInfo, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("peer: no %s addresses", what)
	}
	out := make([]peer.AddrInfo, 0, len(addrs))
	for _, a := range addrs {
		ai, err := ParseAddr(a)
		if err != nil {
			return nil, err
		}
		out = append(out, ai)
	}
	return out, nil
}

// WithBootstrap names DHT entry points (multiaddrs ending in /p2p/<id>):
// any member of the workspace, a task manager, or a plain [Bootstrap]
// node. A node with bootstrap peers joins the workspace's DHT and, unless
// it is a roster server, finds the workspace's roster servers (its task
// managers) under the workspace's [RendezvousKey] and joins them: a
// worker needs only the workspace ID (and secret) and one such address.
func WithBootstrap(addrs ...string) Option {
	return func(c *config) error {
		ais, err := parseAddrInfos("bootstrap", addrs)
		if err != nil {
			return err
		}
		c.bootstrap = ais
		return nil
	}
}

// WithDHTServer sets whether the node's DHT answers queries (serves as a
// bootstrap peer for others). By default it does, unless the node was
// declared behind a NAT ([WithReachability]); with on, a node without
// bootstrap peers that is no roster server runs a DHT too.
func WithDHTServer(on bool) Option {
	return func(c *config) error { c.dhtServerSet, c.dhtServerOn = true, on; return nil }
}

// WithReachability declares the node's reachability instead of asking
// AutoNAT: ReachabilityPublic for a machine others can dial (it then
// offers a relay and answers DHT queries at once), ReachabilityPrivate for
// one behind a NAT (it then reserves relay slots at once). Without it,
// AutoNAT decides; it only ever finds public addresses public, so on a
// private network (10.0.0.0/8, …) a machine that others can dial should
// declare it.
func WithReachability(r Reachability) Option {
	return func(c *config) error {
		switch r {
		case ReachabilityUnknown, ReachabilityPublic, ReachabilityPrivate:
			c.reachability = r
			return nil
		}
		return fmt.Errorf("peer: unknown reachability %d", r)
	}
}

// WithRelays names static relays (multiaddrs ending in /p2p/<id>) the node
// reserves a slot on while it is not publicly reachable, besides its
// bootstrap peers and the reachable members it is connected to.
func WithRelays(addrs ...string) Option {
	return func(c *config) error {
		ais, err := parseAddrInfos("relay", addrs)
		if err != nil {
			return err
		}
		c.relays = ais
		return nil
	}
}

// WithRelayService sets whether the node relays for members of its
// workspace while it is publicly reachable (default true). The relay
// serves members only (see relayResources for its limits).
func WithRelayService(on bool) Option {
	return func(c *config) error { c.relayService = on; return nil }
}

// WithAutoRelay sets whether the node reserves relay slots while it is
// not publicly reachable (default true).
func WithAutoRelay(on bool) Option {
	return func(c *config) error { c.autoRelay = on; return nil }
}

// WithHolePunching sets whether the node tries DCUtR hole punching to
// peers it reaches over a relay (default true).
func WithHolePunching(on bool) Option {
	return func(c *config) error { c.holePunching = on; return nil }
}

// WithAutoNATv2 sets whether the node runs AutoNAT v2, which checks each
// of the node's addresses on its own with peers that run v2 too (and
// stops announcing those found unreachable), and answers their checks
// from a dial-back host of its own. That host costs every one of a
// thousand agents memory, goroutines and CPU, so by default only roster
// servers (task managers) and bootstrap nodes run v2, for one another,
// and none that listens on loopback only (WithListenAddrs).
//
// Every node runs AutoNAT v1 whatever this says (its service, too, dials
// back from a host of its own, unless the node is declared behind a NAT
// with WithReachability or listens on loopback only): it asks its peers whether it is reachable,
// which decides whether it relays for others or reserves relay slots, and
// answers theirs while it does not find itself behind a NAT. So a manager
// with one publicly reachable worker learns that it is public; one whose
// workers are all behind NATs may not (they stop answering once they know
// where they are), and should be declared public with WithReachability.
// Without v2, a node behind a NAT may also announce the public address its
// NAT showed its peers; a peer dialing it then tries the relay after
// libp2p's short delay.
func WithAutoNATv2(on bool) Option {
	return func(c *config) error { c.autoNATv2 = &on; return nil }
}

// WithNATPortMap asks the local router for a port mapping (UPnP, NAT-PMP)
// so the node is reachable without a relay (default off).
func WithNATPortMap(on bool) Option {
	return func(c *config) error { c.natPortMap = on; return nil }
}
