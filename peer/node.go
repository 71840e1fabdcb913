package peer

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// connProtectTag marks connections that carry live workspace streams, so
// the connection manager does not trim them.
const connProtectTag = "ceylon"

// closeWait bounds how long Close waits for each peer to acknowledge the end
// of the stream it was sent.
const closeWait = 2 * time.Second

// Node is one libp2p host in a workspace. Create it with [New] and release
// it with [Node.Close]. Its methods are safe for concurrent use.
type Node struct {
	cfg     config
	gater   *gater
	dialSem chan struct{} // bounds peer-exchange dials in flight
	host    host.Host
	ps      *pubsub.PubSub
	topic   *pubsub.Topic
	sub     *pubsub.Subscription
	mdns    interface{ Close() error }

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stats  stats

	mu         sync.Mutex
	closed     bool
	out        map[ID]*outStream
	opening    map[ID]*opening
	in         map[ID]*inStream
	topicPeers map[ID]struct{} // peers subscribed to the workspace topic
	changed    chan struct{}   // closed and replaced on every presence change
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
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.key == nil && cfg.keyFile != "" {
		k, err := LoadOrCreateIdentity(cfg.keyFile)
		if err != nil {
			return nil, err
		}
		cfg.key = k
	}
	g := &gater{}
	listen := cfg.listen
	hostOpts := []libp2p.Option{
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.DisableRelay(),
		libp2p.UserAgent("ceylon-go"),
		libp2p.ConnectionGater(g),
	}
	if cfg.secret != "" {
		hostOpts = append(hostOpts, libp2p.PrivateNetwork(derivePSK(cfg.workspace, cfg.secret)))
		listen = tcpOnly(listen)
		if len(listen) == 0 {
			return nil, fmt.Errorf("peer: a workspace secret needs a TCP listen address (private networks cannot use QUIC)")
		}
	} else {
		hostOpts = append(hostOpts, libp2p.Transport(quic.NewTransport))
	}
	hostOpts = append(hostOpts, libp2p.ListenAddrStrings(listen...))
	if cfg.key != nil {
		hostOpts = append(hostOpts, libp2p.Identity(cfg.key))
	}
	h, err := libp2p.New(hostOpts...)
	if err != nil {
		return nil, fmt.Errorf("peer: start host: %w", err)
	}
	nctx, cancel := context.WithCancel(context.Background())
	n := &Node{
		cfg: cfg, host: h, ctx: nctx, cancel: cancel, gater: g, dialSem: make(chan struct{}, 8),
		out:        make(map[ID]*outStream),
		opening:    make(map[ID]*opening),
		in:         make(map[ID]*inStream),
		topicPeers: make(map[ID]struct{}),
		changed:    make(chan struct{}),
	}
	if err := n.startGossip(); err != nil {
		n.abortStart()
		return nil, err
	}
	h.SetStreamHandler(ProtocolID, n.handleStream)
	h.Network().Notify(&notifiee{n})
	if cfg.mdns {
		if err := n.startMDNS(); err != nil {
			n.abortStart()
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		n.abortStart()
		return nil, err
	}
	return n, nil
}

func (n *Node) abortStart() {
	n.cancel()
	_ = n.host.Close()
	n.wg.Wait()
}

// ID returns the node's peer ID.
func (n *Node) ID() ID { return n.host.ID() }

// Workspace returns the workspace ID.
func (n *Node) Workspace() string { return n.cfg.workspace }

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
func (n *Node) Stats() Stats { return n.stats.snapshot() }

// PeerInfo describes a present peer.
type PeerInfo struct {
	ID    ID
	Meta  []byte
	Addrs []ma.Multiaddr
}

// Peers lists the peers present in the workspace (their hello accepted,
// their stream open), in no particular order.
func (n *Node) Peers() []PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]PeerInfo, 0, len(n.in))
	for id, s := range n.in {
		out = append(out, PeerInfo{ID: id, Meta: s.hello.Meta, Addrs: parseAddrs(s.hello.Addrs)})
	}
	return out
}

// Present reports whether p is present.
func (n *Node) Present(p ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.in[p]
	return ok
}

// WaitPresent blocks until p is present or ctx ends.
func (n *Node) WaitPresent(ctx context.Context, p ID) error {
	err := n.waitUntil(ctx, func() bool { in := n.in[p]; return in != nil && in.announced })
	if err != nil && err != ErrClosed {
		return fmt.Errorf("peer: %s did not join workspace %q (wrong workspace or secret?): %w", p, n.cfg.workspace, err)
	}
	return err
}

// waitUntil blocks until cond (called with n.mu held) holds, re-checking
// at every presence or topic change, until ctx ends or the node closes.
func (n *Node) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		n.mu.Lock()
		ok, ch, closed := cond(), n.changed, n.closed
		n.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Send queues one frame for p, opening a stream (and dialing) if needed.
// It returns once the frame is queued, not when it is delivered: frames
// still queued when the peer's connection dies are lost, and later sends
// fail until the peer is reachable again. It blocks while p's queue is full
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
	o, err := n.outFor(ctx, lim, p)
	if err != nil {
		return err
	}
	return o.enqueue(ctx, lim, frameData, data)
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
		n.mu.Unlock()
		return o, nil
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
		n.host.ConnManager().Protect(p, connProtectTag)
	}
	op.o, op.err = o, err
	close(op.done)
}

func (n *Node) openStream(ctx context.Context, p ID) (*outStream, error) {
	s, err := n.host.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotPresent, p, err)
	}
	h := hello{Version: protocolVersion, Workspace: n.cfg.workspace, Meta: n.cfg.meta, Addrs: addrBytes(n.host.Addrs())}
	_ = s.SetWriteDeadline(time.Now().Add(n.cfg.handshakeTimeout))
	if _, err := s.Write(appendFrame(nil, frameHello, encodeHello(h))); err != nil {
		_ = s.Reset()
		return nil, fmt.Errorf("%w: %s: hello: %w", ErrNotPresent, p, err)
	}
	_ = s.SetWriteDeadline(time.Time{})
	return newOutStream(n, p, s), nil
}

// dropOut forgets o if it is still p's current outbound stream.
func (n *Node) dropOut(o *outStream) {
	n.mu.Lock()
	if n.out[o.peer] == o {
		delete(n.out, o.peer)
	}
	n.mu.Unlock()
}

// presenceChanged wakes WaitPresent callers. Call with n.mu held.
func (n *Node) presenceChanged() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// Close leaves the workspace: it flushes and closes every outbound stream
// (waiting briefly for peers to acknowledge), stops GossipSub and discovery,
// closes the host and waits for every goroutine it started.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.presenceChanged()
	outs := make([]*outStream, 0, len(n.out))
	for _, o := range n.out {
		outs = append(outs, o)
	}
	n.mu.Unlock()

	var wg sync.WaitGroup
	for _, o := range outs {
		wg.Add(1)
		go func() { defer wg.Done(); o.close(closeWait) }()
	}
	wg.Wait()
	if n.mdns != nil {
		_ = n.mdns.Close()
	}
	if n.sub != nil {
		n.sub.Cancel()
	}
	// The topic goes with the PubSub instance when its context ends
	// (Topic.Close would refuse while the event handler is open).
	n.cancel()
	err := n.host.Close()
	n.wg.Wait()
	return err
}

// notifiee drops the outbound stream to a peer as soon as the last
// connection to it closes, so the next Send redials instead of writing into
// a dead stream.
type notifiee struct{ n *Node }

func (nf *notifiee) Listen(network.Network, ma.Multiaddr)      {}
func (nf *notifiee) ListenClose(network.Network, ma.Multiaddr) {}
func (nf *notifiee) Connected(network.Network, network.Conn)   {}
func (nf *notifiee) Disconnected(net network.Network, c network.Conn) {
	p := c.RemotePeer()
	if net.Connectedness(p) == network.Connected {
		return
	}
	n := nf.n
	n.mu.Lock()
	o := n.out[p]
	if o != nil {
		delete(n.out, p)
	}
	n.mu.Unlock()
	if o != nil {
		o.kill(fmt.Errorf("%w: %s: disconnected", ErrStreamClosed, p))
		n.host.ConnManager().Unprotect(p, connProtectTag)
	}
}

var _ network.Notifiee = (*notifiee)(nil)

// addrInfo builds a peer's AddrInfo from a present peer's hello.
func addrInfo(p ID, raw [][]byte) peer.AddrInfo {
	return peer.AddrInfo{ID: p, Addrs: parseAddrs(raw)}
}

// tcpOnly drops the listen addresses that are not TCP.
func tcpOnly(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			out = append(out, a) // let libp2p report it
			continue
		}
		if _, err := m.ValueForProtocol(ma.P_TCP); err == nil {
			out = append(out, a)
		}
	}
	return out
}
