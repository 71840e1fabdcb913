package peer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/ceylon-go/ceylon/internal/backoff"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// connectBackoff paces the retries of Connect and of a first Join: 100 ms
// doubling to 5 s, ±20% so that many nodes that lost one peer do not
// redial in step.
var connectBackoff = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: 0.2}

// rejoinBackoff paces the redials of a peer joined on purpose (an admin)
// once it was lost: 50 ms doubling to 150 ms (180 ms with jitter), so a
// restarted admin has its members back within half a second of listening
// again (with the short attempts of redialTimeout). Such peers are few (the admins a node
// joined), and a refused or unanswered dial costs a packet or two.
var rejoinBackoff = backoff.Policy{Base: 50 * time.Millisecond, Max: 150 * time.Millisecond, Factor: 2, Jitter: 0.2}

// rejoinFastFor is how long a lost peer is redialed at rejoinBackoff's
// pace (a restart takes seconds); after it, connectBackoff's, so a peer
// gone for good is not redialed twice a second by every member for ever.
const rejoinFastFor = 10 * time.Second

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
// returns once both have presented themselves (each is a member of the
// other's roster) and the peer has joined the workspace topic. When the
// peer serves a roster, this node follows it: it takes the peer's snapshot
// now and its deltas from then on. Failed attempts are retried with capped
// exponential backoff until ctx ends. Connect does not redial the peer
// when the connection is lost later; [Node.Join] does.
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
	return n.connect(ctx, ai)
}

// Join is [Node.Connect] to a peer this node keeps: its connection is
// protected from trimming, and whenever it is lost the node redials (with
// libp2p's dial backoff cleared, so a peer that is back is reached at
// once) and presents itself again, until Close.
func (n *Node) Join(ctx context.Context, addr string) (ID, error) {
	ai, err := ParseAddr(addr)
	if err != nil {
		return "", err
	}
	if ai.ID == n.ID() {
		return "", ErrSelf
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return "", ErrClosed
	}
	if n.keep[ai.ID] == nil {
		n.keep[ai.ID] = &keeper{ai: ai}
	}
	n.mu.Unlock()
	n.host.ConnManager().Protect(ai.ID, keepTag)
	return ai.ID, n.connect(ctx, ai)
}

// joinInfo is Join for a peer found by discovery: it is kept only once
// it was reached, so a stale record does not leave a redial loop behind.
func (n *Node) joinInfo(ctx context.Context, ai peer.AddrInfo) error {
	if ai.ID == n.ID() {
		return ErrSelf
	}
	if err := n.connect(ctx, ai); err != nil {
		return err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	if n.keep[ai.ID] == nil {
		n.keep[ai.ID] = &keeper{ai: ai}
	}
	n.mu.Unlock()
	n.host.ConnManager().Protect(ai.ID, keepTag)
	n.rejoin(ai.ID) // lost meanwhile: redial; else one more presentation
	return nil
}

// keeper is a peer joined with Join.
type keeper struct {
	ai      peer.AddrInfo
	running bool // a redial loop runs (guarded by n.mu)
	again   bool // something happened meanwhile: run once more (n.mu)
}

// dialLost prepares a stream to p (a send, a roster fetch) and returns
// the context to open it with. To a peer joined with Join that was lost,
// the dial is one of the redial loop's short attempts: libp2p's swarm
// joins every dial to a peer to the one in flight, and a dial with a
// deadline of seconds to a peer that is down over QUIC (where it hangs
// rather than fails) would carry the loop's attempts along with it, so
// that a restarted admin would see its members back only when that
// dial's next retransmission reached it, seconds later. Only the dial is
// bounded so: what the stream then does on the connection (identify, the
// hello, a roster snapshot) keeps the caller's deadline, which a loaded
// machine may need (a send right after a reconnection used to fail when
// identify took longer than the short attempt). To a joined peer the
// stream dials nothing more (WithNoDial): a connection that closes in
// between fails the stream at once, and the redial loop reaches the peer
// again. Any other peer is dialed by the stream, within ctx.
func (n *Node) dialLost(ctx context.Context, p ID) (context.Context, error) {
	n.mu.Lock()
	kept := n.keep[p] != nil
	n.mu.Unlock()
	if !kept {
		return ctx, nil
	}
	if !n.connected(p) {
		dctx, cancel := context.WithTimeout(ctx, n.redialTimeout(p, 1, true, 0))
		_, err := n.host.Network().DialPeer(dctx, p)
		cancel()
		if err != nil {
			return ctx, err
		}
	}
	return network.WithNoDial(ctx, "a joined peer: dialed within a redial attempt"), nil
}

func (n *Node) connect(ctx context.Context, ai peer.AddrInfo) error {
	n.roster.trust(ai.ID)
	for attempt := 1; ; attempt++ {
		err := n.dialAndExchange(ctx, ai)
		if err == nil {
			// Broadcasts reach the peer once GossipSub has its
			// subscription; a connection on which that never comes
			// (GossipSub's stream refused) is dropped and tried again.
			wctx, cancel := context.WithTimeout(ctx, n.cfg.handshakeTimeout)
			err = n.waitTopicPeer(wctx, ai.ID)
			cancel()
			if err == nil || errors.Is(err, ErrClosed) {
				return err
			}
			_ = n.host.Network().ClosePeer(ai.ID)
		}
		n.stats.connectFailures.Add(1)
		if ctx.Err() != nil {
			return n.connectError(ai.ID, ctx.Err(), err)
		}
		log := n.cfg.logger.Debug
		if attempt == 1 || attempt%10 == 0 {
			log = n.cfg.logger.Info
		}
		log("cannot reach peer yet, retrying", "peer", ai.ID, "attempt", attempt, "err", err)
		t := time.NewTimer(connectBackoff.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return n.connectError(ai.ID, ctx.Err(), err)
		case <-n.ctx.Done():
			t.Stop()
			return ErrClosed
		}
	}
}

// connectError explains a connect that ran out of time, with a hint that
// fits its last failure.
func (n *Node) connectError(p ID, ctxErr, last error) error {
	hint := "same workspace on both sides? (a private workspace also needs its secret)"
	switch {
	case errors.Is(last, syscall.ECONNREFUSED) || strings.Contains(last.Error(), "connection refused"):
		hint = "is the peer running, at that address?"
	case n.cfg.secret != "":
		hint = "same workspace and secret on both sides?"
	}
	return fmt.Errorf("peer: connect %s: %w (last error: %v; %s)", p, ctxErr, last, hint)
}

// dialAndExchange dials p now (clearing libp2p's dial backoff, which
// would otherwise refuse redials for seconds after a failure) and presents
// this node to it.
func (n *Node) dialAndExchange(ctx context.Context, ai peer.AddrInfo) error {
	if sw, ok := n.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(ai.ID)
	}
	if err := n.host.Connect(ctx, ai); err != nil {
		return err
	}
	if err := n.exchange(ctx, ai.ID, true); err != nil {
		return err
	}
	// The direct stream to a peer joined on purpose is opened now, so the
	// first Send does not wait for it and a goodbye has a way to go.
	_, err := n.outFor(ctx, nil, ai.ID)
	return err
}

// redialTimeout bounds one attempt to reach a joined peer again. A dial
// to a peer that is down may hang (QUIC, a host that drops packets)
// rather than be refused, and a peer back up is only found by the next
// attempt, so attempts are short: eight round trips as last measured plus
// 250 ms. Once the peer has been unreachable for rejoinFastFor, every
// eighth attempt gets the full handshake timeout, in case the link itself
// got slower.
func (n *Node) redialTimeout(p ID, attempt int, lost bool, failingFor time.Duration) time.Duration {
	full := n.cfg.handshakeTimeout
	if !lost || (failingFor > rejoinFastFor && attempt%8 == 0) {
		return full
	}
	return min(full, 8*n.host.Peerstore().LatencyEWMA(p)+250*time.Millisecond)
}

// rejoin makes sure a peer joined with Join has this node: it redials p
// if it is not connected, and presents this node to it again (a roster
// exchange), which costs one stream when it is. It is called when a
// connection to p opens or closes, and does not block.
func (n *Node) rejoin(p ID) {
	n.mu.Lock()
	k := n.keep[p]
	if k == nil || n.closed {
		n.mu.Unlock()
		return
	}
	if k.running {
		k.again = true
		n.mu.Unlock()
		return
	}
	k.running, k.again = true, false
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		wasLost := !n.connected(p)
		var failingSince time.Time
		for attempt := 1; ; attempt++ {
			lost := !n.connected(p)
			var failingFor time.Duration
			if !failingSince.IsZero() {
				failingFor = time.Since(failingSince)
			}
			ctx, cancel := context.WithTimeout(n.ctx, n.redialTimeout(p, attempt, lost, failingFor))
			err := n.dialAndExchange(ctx, k.ai)
			cancel()
			if err == nil {
				n.mu.Lock()
				done := (n.connected(p) && !k.again) || n.closed
				k.again = false
				if done {
					k.running = false
				}
				n.mu.Unlock()
				if done {
					if wasLost {
						n.cfg.logger.Info("rejoined", "peer", p, "attempts", attempt)
					}
					return
				}
				continue // lost again, or a connection came or went, while presenting
			}
			if n.ctx.Err() != nil {
				return
			}
			n.stats.connectFailures.Add(1)
			n.cfg.logger.Debug("rejoin failed, retrying", "peer", p, "attempt", attempt, "err", err)
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			delay := rejoinBackoff.Delay(attempt)
			if time.Since(failingSince) > rejoinFastFor {
				delay = connectBackoff.Delay(attempt) // gone a while: back off, as Connect does
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-n.ctx.Done():
				t.Stop()
				return
			}
		}
	}()
}
