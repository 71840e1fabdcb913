package peer

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/discovery/routing"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Connection-manager tags.
const (
	// activeTag protects peers with a direct stream in use, so the
	// connection manager does not trim them; the janitor lifts it once the
	// streams have been idle for the idle timeout.
	activeTag = "ceylon-active"
	// keepTag protects peers joined with [Node.Join].
	keepTag = "ceylon-keep"
)

// closeWait bounds how long Close waits for each peer to acknowledge the end
// of the stream it was sent.
const closeWait = 2 * time.Second

// Node is one libp2p host in a workspace. Create it with [New] and release
// it with [Node.Close]. Its methods are safe for concurrent use.
type Node struct {
	cfg   config
	gater *gater
	host  host.Host
	rcmgr io.Closer
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	mdns  interface{ Close() error }
	dht   *dht.IpfsDHT              // nil without discovery by workspace ID
	disc  *routing.RoutingDiscovery // rendezvous over dht
	punch *punchTracer
	// up is set once the node is built: libp2p's services (relay ACL,
	// autorelay's peer source) may call in before.
	up           atomic.Bool
	plain        bool // a Bootstrap's: no roster, relays for anyone who can connect
	reachability atomic.Int32
	discoverKick chan struct{}
	relaySet     relaySet
	relayKick    chan struct{} // capacity 1
	inc          uint64        // this process's incarnation
	roster       *roster
	mesh         meshState

	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	stats   stats
	overlay chan struct{} // capacity 1: ask the overlay loop to look now

	mu      sync.Mutex
	closed  bool
	out     map[ID]*outStream
	opening map[ID]*opening
	in      map[ID]*inStream
	keep    map[ID]*keeper // peers joined with Join

	dialFailed map[ID]time.Time // last failed on-demand dial (guarded by mu)
}

// opening is an outbound stream being opened; concurrent senders wait on it.
type opening struct {
	done chan struct{}
	o    *outStream
	err  error
}

// New starts a node: it listens, joins the workspace topic and starts
// discovery. ctx bounds only the start-up; the node runs until Close.
func New(ctx context.Context, opts ...Option) (*Node, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	nctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg, ctx: nctx, cancel: cancel, gater: &gater{},
		inc:          uint64(time.Now().UnixNano()),
		out:          make(map[ID]*outStream),
		opening:      make(map[ID]*opening),
		in:           make(map[ID]*inStream),
		keep:         make(map[ID]*keeper),
		overlay:      make(chan struct{}, 1),
		discoverKick: make(chan struct{}, 2),
		relayKick:    make(chan struct{}, 1),
		dialFailed:   make(map[ID]time.Time),
	}
	n.punch = &punchTracer{n: n}
	h, rm, err := newHost(&n.cfg, n)
	if err != nil {
		cancel()
		return nil, err
	}
	n.host, n.rcmgr = h, rm
	n.reachability.Store(int32(cfg.reachability))
	n.mesh.init()
	n.roster = newRoster(n)
	n.up.Store(true)
	if err := n.startGossip(); err != nil {
		n.abortStart()
		return nil, err
	}
	h.SetStreamHandler(ProtocolID, n.handleStream)
	h.SetStreamHandler(RosterProtocolID, n.handleRoster)
	h.Network().Notify(&notifiee{n})
	n.wg.Add(4)
	go n.watchSelf()
	go n.janitor()
	go n.overlayLoop()
	go n.roster.pollLoop()
	if n.roster.srv != nil {
		n.wg.Add(1)
		go n.roster.beatLoop()
	}
	if cfg.autoRelay && cfg.transport == nil {
		n.wg.Add(1)
		go n.relayLoop()
	}
	if cfg.mdns {
		if err := n.startMDNS(); err != nil {
			n.abortStart()
			return nil, err
		}
	}
	if err := n.startDHT(); err != nil {
		n.abortStart()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		n.abortStart()
		return nil, err
	}
	return n, nil
}

func (n *Node) abortStart() {
	n.roster.close()
	n.cancel()
	if n.dht != nil {
		_ = n.dht.Close()
	}
	_ = n.host.Close()
	n.wg.Wait()
	_ = n.rcmgr.Close()
}

// track registers a goroutine serving the node, unless it is closing.
func (n *Node) track() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	return true
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// ID returns the node's peer ID.
func (n *Node) ID() ID { return n.host.ID() }

// Workspace returns the workspace ID.
func (n *Node) Workspace() string { return n.cfg.workspace }

// Private reports whether the workspace has a secret ([WithSecret]): then
// every connection of the node, on any protocol, is with a holder of it.
func (n *Node) Private() bool { return n.cfg.secret != "" }

// Addrs returns the node's dialable addresses, each ending in /p2p/<id>,
// non-loopback addresses first.
func (n *Node) Addrs() []ma.Multiaddr {
	self, err := ma.NewComponent("p2p", n.ID().String())
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		out = append(out, a.Encapsulate(self.Multiaddr()))
	}
	slices.SortStableFunc(out, func(a, b ma.Multiaddr) int {
		la, lb := manet.IsIPLoopback(a), manet.IsIPLoopback(b)
		switch {
		case la == lb:
			return 0
		case lb:
			return -1
		default:
			return 1
		}
	})
	return out
}

// Host exposes the libp2p host, for tests and advanced use. Streams opened
// on it bypass the node's limits and accounting.
func (n *Node) Host() host.Host { return n.host }

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	s := n.stats.snapshot()
	n.roster.mu.Lock()
	s.Members = len(n.roster.entries)
	n.roster.mu.Unlock()
	s.Conns = len(n.host.Network().Conns())
	s.TopicPeers = n.topicPeers()
	n.mesh.mu.Lock()
	s.MeshPeers = len(n.mesh.mesh)
	n.mesh.mu.Unlock()
	s.Reachability = n.Reachability().String()
	if n.dht != nil {
		s.DHTPeers = n.dht.RoutingTable().Size()
	}
	return s
}

// connected reports whether a connection to p is open.
func (n *Node) connected(p ID) bool {
	return n.host.Network().Connectedness(p) == network.Connected
}

// Send queues one frame for p, opening a stream (and dialing it on the
// addresses the roster holds, if no connection is open) as needed. It
// returns once the frame is queued, not when it is delivered: frames still
// queued when the peer's connection dies are lost, and later sends fail
// until the peer is reachable again. It blocks while p's queue is full
// (back-pressure) until ctx ends.
func (n *Node) Send(ctx context.Context, p ID, data []byte) error {
	return n.send(ctx, nil, p, data)
}

// SendWithin is Send that blocks (for a full queue, or to open a stream)
// for at most d, failing with [ErrTimeout]: for callers, such as an actor,
// that must not stall on one slow peer. It costs nothing extra when it
// does not block.
func (n *Node) SendWithin(p ID, data []byte, d time.Duration) error {
	lim := &limit{d: d}
	defer lim.stop()
	return n.send(n.ctx, lim, p, data)
}

func (n *Node) send(ctx context.Context, lim *limit, p ID, data []byte) error {
	if len(data)+1 > n.cfg.maxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(data)+1, n.cfg.maxFrame)
	}
	for {
		o, err := n.outFor(ctx, lim, p)
		if err != nil {
			return err
		}
		if err := o.enqueue(ctx, lim, frameData, data); err != errRetired {
			return err
		}
	}
}

// limit bounds a blocking wait; its timer starts only if something waits.
// A nil limit never fires.
type limit struct {
	d time.Duration
	t *time.Timer
}

func (l *limit) c() <-chan time.Time {
	if l == nil {
		return nil
	}
	if l.t == nil {
		l.t = time.NewTimer(l.d)
	}
	return l.t.C
}

func (l *limit) stop() {
	if l.t != nil {
		l.t.Stop()
	}
}

// MaxFrameSize is the largest payload [Node.Send] accepts.
func (n *Node) MaxFrameSize() int { return n.cfg.maxFrame - 1 }

// outFor returns the open outbound stream to p, opening it if needed.
// Concurrent callers share one attempt.
func (n *Node) outFor(ctx context.Context, lim *limit, p ID) (*outStream, error) {
	if p == n.ID() {
		return nil, ErrSelf
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if o := n.out[p]; o != nil {
		if !o.s.Conn().IsClosed() {
			n.mu.Unlock()
			return o, nil
		}
		// Its connection is gone and the notification not in yet: a new
		// stream (on a new connection), not a write into a dead one.
		delete(n.out, p)
		o.kill(fmt.Errorf("%w: %s: connection closed", ErrStreamClosed, p))
	}
	op, busy := n.opening[p]
	if !busy {
		op = &opening{done: make(chan struct{})}
		n.opening[p] = op
		n.wg.Add(1)
		go n.open(p, op)
	}
	n.mu.Unlock()
	select {
	case <-op.done:
		return op.o, op.err
	case <-ctx.Done():
		return nil, fmt.Errorf("peer: open stream to %s: %w", p, ctx.Err())
	case <-lim.c():
		return nil, fmt.Errorf("peer: open stream to %s: %w", p, ErrTimeout)
	}
}

// open dials p if needed and opens the outbound stream, whose first frame
// is this node's hello. Its result is shared by every waiter on op.
func (n *Node) open(p ID, op *opening) {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
	defer cancel()
	o, err := n.openStream(ctx, p)
	n.mu.Lock()
	delete(n.opening, p)
	if err == nil && n.closed {
		err = ErrClosed
	}
	if err == nil {
		n.out[p] = o
		n.wg.Add(1)
		go func() { defer n.wg.Done(); o.run() }()
	}
	n.mu.Unlock()
	if err != nil && o != nil {
		_ = o.s.Reset()
		o = nil
	}
	if err == nil {
		n.host.ConnManager().Protect(p, activeTag)
	}
	op.o, op.err = o, err
	close(op.done)
}

func (n *Node) openStream(ctx context.Context, p ID) (*outStream, error) {
	dialed := !n.connected(p)
	if dialed {
		// Dial on demand from what the roster knows, paced by our own
		// short backoff rather than libp2p's (which refuses a peer for
		// 5 s and more after one failed dial: a member reachable again,
		// say through a relay that came back, would stay unreachable).
		addrs := n.roster.addrs(p)
		if len(addrs) > 0 {
			n.host.Peerstore().AddAddrs(p, addrs, peerstore.TempAddrTTL)
		}
		n.dialDue(p, addrs)
	}
	sctx, err := n.dialLost(ctx, p)
	var s network.Stream
	if err == nil {
		s, err = n.host.NewStream(sctx, p, ProtocolID)
	}
	if dialed {
		n.dialDone(p, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotPresent, p, err)
	}
	_ = s.SetWriteDeadline(time.Now().Add(n.cfg.handshakeTimeout))
	if _, err := s.Write(appendFrame(nil, frameHello, encodeHello(n.selfHello(false)))); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("%w: %s: hello: %w", ErrNotPresent, p, err)
	}
	_ = s.SetWriteDeadline(time.Time{})
	return newOutStream(n, p, s), nil
}

// onDemandRetry is how soon after a failed on-demand dial a send may dial
// the peer again.
const onDemandRetry = 250 * time.Millisecond

// dialDue clears libp2p's dial backoff for p, and for the relays of its
// relayed addresses, once onDemandRetry has passed since the last failed
// on-demand dial to it.
func (n *Node) dialDue(p ID, addrs []ma.Multiaddr) {
	n.mu.Lock()
	last, failed := n.dialFailed[p]
	n.mu.Unlock()
	if failed && time.Since(last) < onDemandRetry {
		return
	}
	sw, ok := n.host.Network().(*swarm.Swarm)
	if !ok {
		return
	}
	sw.Backoff().Clear(p)
	for _, a := range addrs {
		if relay, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT }); len(relay) > 0 {
			if ai, err := peer.AddrInfoFromP2pAddr(relay); err == nil {
				sw.Backoff().Clear(ai.ID)
			}
		}
	}
}

// dialDone records how an on-demand dial to p went.
func (n *Node) dialDone(p ID, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		delete(n.dialFailed, p)
		return
	}
	if len(n.dialFailed) >= maxTracked {
		clear(n.dialFailed)
	}
	n.dialFailed[p] = time.Now()
}

// sayBye tells p, over a stream of its own, that this node is leaving.
func (n *Node) sayBye(p ID) {
	ctx, cancel := context.WithTimeout(network.WithNoDial(n.ctx, "goodbye"), closeWait)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return
	}
	_ = s.SetDeadline(time.Now().Add(closeWait))
	b := appendFrame(nil, frameHello, encodeHello(n.selfHello(false)))
	if _, err := s.Write(appendFrame(b, frameBye, nil)); err != nil || s.CloseWrite() != nil {
		_ = s.Reset()
		return
	}
	_, _ = io.Copy(io.Discard, s)
	_ = s.Close()
}

// dropOut forgets o if it is still p's current outbound stream.
func (n *Node) dropOut(o *outStream) {
	n.mu.Lock()
	if n.out[o.peer] == o {
		delete(n.out, o.peer)
	}
	n.mu.Unlock()
}

// Close leaves the workspace: it tells the workspace (a leave note on the
// topic, a bye on every direct stream), flushes and closes every outbound
// stream (waiting briefly for peers to acknowledge), stops GossipSub and
// discovery, closes the host and waits for every goroutine it started.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	outs := make([]*outStream, 0, len(n.out))
	hasOut := make(map[ID]bool, len(n.out))
	for p, o := range n.out {
		outs = append(outs, o)
		hasOut[p] = true
	}
	n.mu.Unlock()

	// Everyone that holds this node as linked hears the goodbye at once:
	// over the direct stream to it, or a short one opened for the purpose.
	n.publishControl(msgLeave, marshal(&leaveNote{Inc: n.inc}))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, o := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); o.close(closeWait, ErrClosed, true) }()
	}
	for _, p := range n.roster.linkedPeers() {
		if hasOut[p] || !n.connected(p) {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); defer func() { <-sem }(); n.sayBye(p) }()
	}
	wg.Wait()
	n.roster.close()
	if n.mdns != nil {
		_ = n.mdns.Close()
	}
	if n.sub != nil {
		n.sub.Cancel()
	}
	// The topic goes with the PubSub instance when its context ends
	// (Topic.Close would refuse while the event handler is open).
	n.cancel()
	if n.dht != nil {
		_ = n.dht.Close()
	}
	err := n.host.Close()
	n.wg.Wait()
	_ = n.rcmgr.Close()
	return err
}

// notifiee follows the node's connections: a closed connection kills the
// outbound stream that ran on it (so the next Send redials instead of
// writing into a dead stream) and starts the leave grace period of the
// peer's link when it was the last one; a new connection ends that period
// and redials nothing. Peers joined with Join are redialed when lost.
type notifiee struct{ n *Node }

func (nf *notifiee) Listen(network.Network, ma.Multiaddr)      {}
func (nf *notifiee) ListenClose(network.Network, ma.Multiaddr) {}
func (nf *notifiee) Connected(_ network.Network, c network.Conn) {
	nf.n.roster.linkBack(c.RemotePeer())
	nf.n.preferDirect(c.RemotePeer(), c)
	nf.n.kickRelays()
	// A joined peer that dialed us (or a connection that came up while
	// another went down) may have lost us: present ourselves again.
	nf.n.rejoin(c.RemotePeer())
}

func (nf *notifiee) Disconnected(net network.Network, c network.Conn) {
	p := c.RemotePeer()
	n := nf.n
	n.mu.Lock()
	o := n.out[p]
	if o != nil && o.s.Conn() == c {
		delete(n.out, p)
	} else {
		o = nil
	}
	n.mu.Unlock()
	if o != nil {
		o.kill(fmt.Errorf("%w: %s: disconnected", ErrStreamClosed, p))
	}
	if net.Connectedness(p) == network.Connected {
		// Another connection is up: a joined peer may still have seen
		// this one as its last and dropped us.
		n.rejoin(p)
		return
	}
	n.host.ConnManager().Unprotect(p, activeTag)
	n.roster.linkLost(p)
	n.rejoin(p)
}

var _ network.Notifiee = (*notifiee)(nil)
