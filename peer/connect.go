package peer

import (
	"context"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/internal/backoff"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// maxExchangeDials bounds the dials one peer-exchange frame can start.
const maxExchangeDials = 64

// connectBackoff paces Connect's retries.
var connectBackoff = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: 0.2}

// ParseAddr parses a dialable address such as
// /ip4/10.0.0.1/tcp/7000/p2p/12D3KooW…. It fails with [ErrBadAddress] when
// the address has no /p2p/<id> part.
func ParseAddr(s string) (peer.AddrInfo, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q: %w", ErrBadAddress, s, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q: %w", ErrBadAddress, s, err)
	}
	return *ai, nil
}

// Connect dials the node at addr (a multiaddr ending in /p2p/<id>) and
// returns once both sides have exchanged hellos and the peer has joined the
// workspace topic, so the peer is present and both [Node.Send] and
// [Node.Publish] reach it. Failed dials are retried with capped exponential
// backoff until ctx ends; a peer that accepts the connection but never
// completes the handshake is reported as possibly being in another workspace
// or having another secret.
func (n *Node) Connect(ctx context.Context, addr string) (ID, error) {
	ai, err := ParseAddr(addr)
	if err != nil {
		return "", err
	}
	return ai.ID, n.ConnectInfo(ctx, ai)
}

// ConnectInfo is [Node.Connect] for an already parsed address.
func (n *Node) ConnectInfo(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == n.ID() {
		return ErrSelf
	}
	for attempt := 1; ; attempt++ {
		err := n.host.Connect(ctx, ai)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("peer: connect %s: %w (last error: %v; same workspace secret on both sides?)", ai.ID, ctx.Err(), err)
		}
		n.cfg.logger.Debug("connect failed, retrying", "peer", ai.ID, "attempt", attempt, "err", err)
		t := time.NewTimer(connectBackoff.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("peer: connect %s: %w (last error: %v; same workspace secret on both sides?)", ai.ID, ctx.Err(), err)
		case <-n.ctx.Done():
			t.Stop()
			return ErrClosed
		}
	}
	if _, err := n.outFor(ctx, nil, ai.ID); err != nil {
		return err
	}
	if err := n.WaitPresent(ctx, ai.ID); err != nil {
		return err
	}
	return n.waitTopicPeer(ctx, ai.ID)
}

// greet runs when a peer's hello is accepted: it makes sure this node's
// stream to the peer is open (so the peer sees us join too) and, with peer
// exchange on, tells the newcomer about the other present peers.
func (n *Node) greet(p ID) {
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
	defer cancel()
	o, err := n.outFor(ctx, nil, p)
	if err != nil {
		n.cfg.logger.Debug("cannot open stream back", "peer", p, "err", err)
		return
	}
	if !n.cfg.peerExchange {
		return
	}
	n.mu.Lock()
	infos := make([]peer.AddrInfo, 0, len(n.in))
	for id, s := range n.in {
		if id != p && len(s.hello.Addrs) > 0 {
			infos = append(infos, addrInfo(id, s.hello.Addrs))
		}
	}
	n.mu.Unlock()
	if len(infos) > 0 {
		_ = o.enqueue(ctx, nil, framePeers, encodePeers(infos))
	}
}

// learnPeers dials the peers of an exchange frame that are not present
// yet. It reports false for a frame that does not decode.
func (n *Node) learnPeers(payload []byte) bool {
	infos, err := decodePeers(payload)
	if err != nil {
		n.stats.droppedUnknown.Add(1)
		return false
	}
	dials := 0
	for _, ai := range infos {
		if ai.ID == n.ID() || n.Present(ai.ID) || len(ai.Addrs) == 0 {
			continue
		}
		if dials++; dials > maxExchangeDials {
			break // a peer list is a hint, not a work order
		}
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
		n.mu.Lock()
		closed := n.closed
		if !closed {
			n.wg.Add(1)
		}
		n.mu.Unlock()
		if closed {
			return true
		}
		go func() {
			defer n.wg.Done()
			select { // few dials at a time, whoever sends peer lists
			case n.dialSem <- struct{}{}:
				defer func() { <-n.dialSem }()
			case <-n.ctx.Done():
				return
			}
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
			defer cancel()
			if err := n.host.Connect(ctx, ai); err != nil {
				n.cfg.logger.Debug("peer exchange: dial failed", "peer", ai.ID, "err", err)
				return
			}
			_, _ = n.outFor(ctx, nil, ai.ID)
		}()
	}
	return true
}
