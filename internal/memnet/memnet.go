// Package memnet is an in-memory workspace network for tests, in the
// manner of memberlist's MockNetwork: agents started with
// agent.WithNetwork(net.Factory()) talk through it instead of libp2p, so
// a test needs no sockets, runs under testing/synctest (its delays and
// every timer of the agents above it are then virtual), and can drop,
// delay or cut traffic between chosen agents. Fault injection lives here,
// not in the production types.
//
// Semantics follow peer.Node's where agents depend on them: a member's
// join is reported before any of its frames; frames between two members
// arrive in order; a send to a member that is not present (never joined,
// left, cut off) fails with peer.ErrNotPresent; a frame over the size
// limit fails with peer.ErrFrameTooLarge; a dropped frame is lost
// silently, as on a connection that dies with it queued. Membership is
// one roster per workspace: a node is a member once it has joined anyone
// (a roster server, an admin, is one from its start), and then sees every
// other member it is not cut off from.
package memnet

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// DropFunc decides whether one frame from one agent to another is lost;
// kind is the kind of the message it carries ("" when it does not decode).
type DropFunc func(from, to peer.ID, kind string) bool

// Network connects the in-memory nodes of one test.
type Network struct {
	mu       sync.Mutex
	nodes    map[peer.ID]*Node
	cut      map[[2]peer.ID]bool
	drops    []DropFunc
	delay    time.Duration
	maxFrame int
	changed  *sync.Cond // a node started or stopped
}

// New returns an empty network; frames may be up to
// peer.DefaultMaxFrameSize bytes.
func New() *Network {
	n := &Network{nodes: map[peer.ID]*Node{}, cut: map[[2]peer.ID]bool{}, maxFrame: peer.DefaultMaxFrameSize}
	n.changed = sync.NewCond(&n.mu)
	return n
}

// Factory is the agent.NetworkFactory that starts nodes on n.
func (n *Network) Factory() agent.NetworkFactory {
	return func(_ context.Context, c agent.NetworkConfig) (agent.Network, error) {
		id, err := peer.IDFromKey(c.Key)
		if err != nil {
			return nil, err
		}
		nd := &Node{net: n, id: id, cfg: c, wake: make(chan struct{}, 1), done: make(chan struct{})}
		nd.ctx, nd.cancel = context.WithCancel(context.Background())
		n.mu.Lock()
		n.nodes[id] = nd
		if c.Server {
			n.admitLocked(nd)
		}
		n.changed.Broadcast()
		n.mu.Unlock()
		go nd.deliver()
		return nd, nil
	}
}

// Drop adds a rule: frames for which f reports true are lost. Rules apply
// in the order added; one that wants to drop a frame once keeps its own
// count.
func (n *Network) Drop(f DropFunc) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drops = append(n.drops, f)
}

// DropNext loses the next count frames carrying messages of kind, from
// any agent to any other.
func (n *Network) DropNext(kind string, count int) {
	var mu sync.Mutex
	n.Drop(func(_, _ peer.ID, k string) bool {
		mu.Lock()
		defer mu.Unlock()
		if k != kind || count == 0 {
			return false
		}
		count--
		return true
	})
}

// SetDelay makes every frame (and presence change) take d to arrive.
func (n *Network) SetDelay(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.delay = d
}

// Cut severs a and b: each sees the other leave, and sends between them
// fail until Heal.
func (n *Network) Cut(a, b peer.ID) { n.setCut(a, b, true) }

// Heal undoes Cut: each sees the other join again.
func (n *Network) Heal(a, b peer.ID) { n.setCut(a, b, false) }

func (n *Network) setCut(a, b peer.ID, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	k := pairKey(a, b)
	if n.cut[k] == cut {
		return
	}
	na, nb := n.nodes[a], n.nodes[b]
	both := na != nil && nb != nil && na.member && nb.member
	if cut {
		n.cut[k] = true
	} else {
		delete(n.cut, k)
	}
	if both {
		na.pushLocked(item{from: b, presence: true, joined: !cut, meta: nb.cfg.Meta})
		nb.pushLocked(item{from: a, presence: true, joined: !cut, meta: na.cfg.Meta})
	}
}

func pairKey(a, b peer.ID) [2]peer.ID {
	if a > b {
		a, b = b, a
	}
	return [2]peer.ID{a, b}
}

// admitLocked makes nd a member of its workspace: it and every other
// member it is not cut off from see each other join.
func (n *Network) admitLocked(nd *Node) {
	if nd.member {
		return
	}
	nd.member = true
	for id, o := range n.nodes {
		if o == nd || !o.member || o.cfg.Workspace != nd.cfg.Workspace || n.cut[pairKey(id, nd.id)] {
			continue
		}
		o.pushLocked(item{from: nd.id, presence: true, joined: true, meta: nd.cfg.Meta})
		nd.pushLocked(item{from: id, presence: true, joined: true, meta: o.cfg.Meta})
	}
}

// sees reports whether a and b are members of one workspace, not cut off.
func (n *Network) seesLocked(a, b *Node) bool {
	return a != nil && b != nil && a != b && a.member && b.member && !a.closed && !b.closed &&
		a.cfg.Workspace == b.cfg.Workspace && !n.cut[pairKey(a.id, b.id)]
}

func (n *Network) dropped(from, to peer.ID, data []byte) bool {
	n.mu.Lock()
	drops := n.drops
	n.mu.Unlock()
	if len(drops) == 0 {
		return false
	}
	kind := ""
	if env, err := messages.DecodeEnvelope(data); err == nil {
		kind = env.Kind
	}
	for _, f := range drops {
		if f(from, to, kind) {
			return true
		}
	}
	return false
}

// item is one thing a node hears: a frame or a presence change.
type item struct {
	from      peer.ID
	data      []byte
	broadcast bool
	presence  bool
	joined    bool
	meta      []byte
	due       time.Time
}

// Node is one agent's end of the network; it implements agent.Network.
type Node struct {
	net *Network
	id  peer.ID
	cfg agent.NetworkConfig

	ctx    context.Context
	cancel context.CancelFunc

	// Guarded by net.mu.
	member bool
	closed bool
	queue  []item

	wake chan struct{} // capacity 1: the queue has something
	done chan struct{} // closed when deliver has returned

	penalties int
}

var _ agent.Network = (*Node)(nil)

func (nd *Node) pushLocked(it item) {
	if nd.closed {
		return
	}
	it.due = time.Now().Add(nd.net.delay)
	nd.queue = append(nd.queue, it)
	select {
	case nd.wake <- struct{}{}:
	default:
	}
}

// deliver hands the node's queue to its handler, in order, each item no
// sooner than it is due.
func (nd *Node) deliver() {
	defer close(nd.done)
	for {
		nd.net.mu.Lock()
		var it item
		ok := len(nd.queue) > 0
		if ok {
			it = nd.queue[0]
			nd.queue[0] = item{}
			nd.queue = nd.queue[1:]
		}
		nd.net.mu.Unlock()
		if !ok {
			select {
			case <-nd.wake:
				continue
			case <-nd.ctx.Done():
				return
			}
		}
		if d := time.Until(it.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-nd.ctx.Done():
				t.Stop()
				return
			}
		}
		h := nd.cfg.Handler
		switch {
		case it.presence:
			h.HandlePresence(nd.ctx, peer.PresenceEvent{Peer: it.from, Joined: it.joined, Meta: it.meta})
		case it.broadcast:
			h.HandleBroadcast(nd.ctx, it.from, it.data)
		default:
			h.HandleDirect(nd.ctx, it.from, it.data)
		}
	}
}

// ID implements agent.Network.
func (nd *Node) ID() peer.ID { return nd.id }

// Addrs implements agent.Network: an address that names the node (there
// is nothing to dial).
func (nd *Node) Addrs() []ma.Multiaddr {
	a, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/1/p2p/" + nd.id.String())
	if err != nil {
		return nil
	}
	return []ma.Multiaddr{a}
}

// Join implements agent.Network: it waits until the node at addr runs,
// then both are members of the workspace.
func (nd *Node) Join(ctx context.Context, addr string) (peer.ID, error) {
	ai, err := peer.ParseAddr(addr)
	if err != nil {
		return "", err
	}
	if ai.ID == nd.id {
		return "", peer.ErrSelf
	}
	n := nd.net
	stop := context.AfterFunc(ctx, func() { n.mu.Lock(); n.changed.Broadcast(); n.mu.Unlock() })
	defer stop()
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		if nd.closed {
			return "", peer.ErrClosed
		}
		if o := n.nodes[ai.ID]; o != nil && !o.closed {
			if o.cfg.Workspace != nd.cfg.Workspace {
				return "", fmt.Errorf("memnet: %s is in workspace %q, not %q", ai.ID, o.cfg.Workspace, nd.cfg.Workspace)
			}
			n.admitLocked(o)
			n.admitLocked(nd)
			return ai.ID, nil
		}
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("memnet: join %s: %w", ai.ID, err)
		}
		n.changed.Wait()
	}
}

// Connect implements agent.Network (as Join: nothing here is redialed).
func (nd *Node) Connect(ctx context.Context, addr string) (peer.ID, error) { return nd.Join(ctx, addr) }

// Send implements agent.Network.
func (nd *Node) Send(_ context.Context, p peer.ID, data []byte) error { return nd.send(p, data, false) }

// SendWithin implements agent.Network.
func (nd *Node) SendWithin(p peer.ID, data []byte, _ time.Duration) error {
	return nd.send(p, data, false)
}

func (nd *Node) send(p peer.ID, data []byte, broadcast bool) error {
	n := nd.net
	if len(data)+1 > n.maxFrame {
		return fmt.Errorf("%w: %d bytes, limit %d", peer.ErrFrameTooLarge, len(data)+1, n.maxFrame)
	}
	n.mu.Lock()
	to := n.nodes[p]
	ok := n.seesLocked(nd, to)
	closed := nd.closed
	n.mu.Unlock()
	switch {
	case closed:
		return peer.ErrClosed
	case !ok:
		return fmt.Errorf("%w: %s", peer.ErrNotPresent, p)
	case n.dropped(nd.id, p, data):
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seesLocked(nd, to) {
		to.pushLocked(item{from: nd.id, data: append([]byte(nil), data...), broadcast: broadcast})
	}
	return nil
}

// Publish implements agent.Network: every other member it sees gets it.
func (nd *Node) Publish(_ context.Context, data []byte) error {
	n := nd.net
	n.mu.Lock()
	var to []peer.ID
	for id, o := range n.nodes {
		if n.seesLocked(nd, o) {
			to = append(to, id)
		}
	}
	n.mu.Unlock()
	for _, p := range to {
		_ = nd.send(p, data, true)
	}
	return nil
}

// MaxFrameSize implements agent.Network.
func (nd *Node) MaxFrameSize() int { return nd.net.maxFrame - 1 }

// Member implements agent.Network.
func (nd *Node) Member(p peer.ID) (peer.Member, bool) {
	n := nd.net
	n.mu.Lock()
	defer n.mu.Unlock()
	o := n.nodes[p]
	if !n.seesLocked(nd, o) {
		return peer.Member{}, false
	}
	return peer.Member{ID: p, Meta: o.cfg.Meta, Server: o.cfg.Server, Linked: true, Addrs: o.Addrs()}, true
}

// Members implements agent.Network.
func (nd *Node) Members() []peer.Member {
	n := nd.net
	n.mu.Lock()
	var ids []peer.ID
	for id, o := range n.nodes {
		if n.seesLocked(nd, o) {
			ids = append(ids, id)
		}
	}
	n.mu.Unlock()
	out := make([]peer.Member, 0, len(ids))
	for _, id := range ids {
		if m, ok := nd.Member(id); ok {
			out = append(out, m)
		}
	}
	return out
}

// Present implements agent.Network.
func (nd *Node) Present(p peer.ID) bool {
	_, ok := nd.Member(p)
	return ok
}

// Penalize implements agent.Network: it counts.
func (nd *Node) Penalize(peer.ID, string) {
	nd.net.mu.Lock()
	nd.penalties++
	nd.net.mu.Unlock()
}

// Penalties reports how many offences the node counted.
func (nd *Node) Penalties() int {
	nd.net.mu.Lock()
	defer nd.net.mu.Unlock()
	return nd.penalties
}

// Close implements agent.Network: the others see the node leave.
func (nd *Node) Close() error {
	n := nd.net
	n.mu.Lock()
	if nd.closed {
		n.mu.Unlock()
		return nil
	}
	for _, o := range n.nodes {
		if n.seesLocked(nd, o) {
			o.pushLocked(item{from: nd.id, presence: true, joined: false, meta: nd.cfg.Meta})
		}
	}
	nd.closed = true
	delete(n.nodes, nd.id)
	n.changed.Broadcast()
	n.mu.Unlock()
	nd.cancel()
	<-nd.done
	return nil
}
