package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// topicName is the GossipSub topic of a workspace.
func topicName(workspace string) string { return "ceylon/ws/" + workspace }

// Topic message types: the first byte of every message on the workspace
// topic.
const (
	msgData  byte = 1 // a broadcast for the Handler
	msgDelta byte = 2 // a roster server's delta
	msgBeat  byte = 3 // a roster server's version
	msgLeave byte = 4 // its author is leaving
)

// meshWait bounds how long a broadcast waits for this node's GossipSub
// mesh to form when a peer has just joined the topic (GossipSub grafts at
// its heartbeat, every second, later on a loaded machine).
const meshWait = 5 * time.Second

// gossipParams are GossipSub's defaults with less gossip: at each
// heartbeat (every second) in which it saw messages, a node tells
// max(Dlazy, a quarter of its topic peers outside its mesh) of those peers
// their IDs (IHAVE), so that one the mesh lost can be asked for; it
// advertises the messages of the last HistoryGossip heartbeats. With the
// defaults (6 peers, 3 heartbeats) a thousand agents sent each other some
// six thousand such messages a second after every roster delta or beat;
// 2 peers and the last heartbeat cut that by up to nine times (three times
// while messages come every second). A node that missed a message now
// hears of it about twice, once, instead of three times over 3 s: the
// roster repairs itself besides (beats and fetches), and broadcasts were
// best-effort already. Measured with make bench-scale at 1,000
// workers, same hour: 59-63 % -> 67-69 % of ideal, the workers' CPU per
// task 209 -> 168-182 µs, broadcasts at everyone in 438-857 ms.
func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.Dlazy = 2
	p.HistoryGossip = 1
	return p
}

// startGossip joins the workspace topic. Broadcasts travel over the
// GossipSub mesh (no flood publishing: a sender hands a message to its
// mesh peers, not to everyone it is connected to), with queues raised well
// above GossipSub's 32-message defaults; drops that still happen are
// counted by the tracer. Every message is checked by validate before it is
// delivered or forwarded.
func (n *Node) startGossip() error {
	ps, err := pubsub.NewGossipSub(n.ctx, n.host,
		pubsub.WithGossipSubParams(gossipParams()),
		pubsub.WithFloodPublish(false),
		pubsub.WithPeerOutboundQueueSize(n.cfg.gossipQueue),
		pubsub.WithValidateQueueSize(n.cfg.gossipQueue),
		pubsub.WithMaxMessageSize(n.cfg.maxBroadcast+16<<10),
		pubsub.WithRawTracer(&gossipTracer{n}),
	)
	if err != nil {
		return fmt.Errorf("peer: start gossipsub: %w", err)
	}
	n.ps = ps
	name := topicName(n.cfg.workspace)
	if err := ps.RegisterTopicValidator(name, n.validate, pubsub.WithValidatorInline(true)); err != nil {
		return fmt.Errorf("peer: topic validator: %w", err)
	}
	topic, err := ps.Join(name)
	if err != nil {
		return fmt.Errorf("peer: join topic: %w", err)
	}
	n.topic = topic
	sub, err := topic.Subscribe(pubsub.WithBufferSize(n.cfg.gossipQueue))
	if err != nil {
		return fmt.Errorf("peer: subscribe: %w", err)
	}
	n.sub = sub
	events, err := topic.EventHandler()
	if err != nil {
		return fmt.Errorf("peer: topic events: %w", err)
	}
	n.wg.Add(2)
	go n.gossipLoop()
	go n.topicPeersLoop(events)
	return nil
}

// validate checks a topic message before GossipSub delivers or forwards
// it: its type, its size and, for roster messages, that it decodes. A
// message that fails is rejected (not forwarded) and counts against its
// author, who signed it.
func (n *Node) validate(_ context.Context, _ ID, msg *pubsub.Message) pubsub.ValidationResult {
	author := msg.GetFrom()
	if author == n.ID() {
		return pubsub.ValidationAccept
	}
	data := msg.GetData()
	var err error
	switch {
	case len(data) == 0:
		err = errors.New("empty message")
	case data[0] == msgData:
		if v := n.cfg.validator; v != nil {
			err = v(author, data[1:])
		}
	case data[0] == msgDelta:
		var d rosterDelta
		if err = unmarshal(data[1:], &d); err == nil {
			if len(d.Add) > maxDeltaRecords || len(d.Del) > maxDeltaRecords || d.To != d.From+1 {
				err = errors.New("delta out of bounds")
			} else {
				d.Add, _ = keepValid(d.Add, 0)
				msg.ValidatorData = &d
			}
		}
	case data[0] == msgBeat:
		var b rosterBeat
		if err = unmarshal(data[1:], &b); err == nil {
			msg.ValidatorData = &b
		}
	case data[0] == msgLeave:
		var l leaveNote
		if err = unmarshal(data[1:], &l); err == nil {
			msg.ValidatorData = &l
		}
	default:
		err = fmt.Errorf("unknown message type %d", data[0])
	}
	if err != nil {
		n.Penalize(author, "bad broadcast: "+err.Error())
		return pubsub.ValidationReject
	}
	return pubsub.ValidationAccept
}

// topicPeersLoop tracks which peers are subscribed to the workspace topic,
// so Connect can wait until broadcasts will reach a new peer.
func (n *Node) topicPeersLoop(events *pubsub.TopicEventHandler) {
	defer n.wg.Done()
	defer events.Cancel()
	for {
		ev, err := events.NextPeerEvent(n.ctx)
		if err != nil {
			return
		}
		n.mesh.mu.Lock()
		if ev.Type == pubsub.PeerJoin {
			n.mesh.topic[ev.Peer] = struct{}{}
			n.mesh.lastJoin = time.Now()
		} else {
			delete(n.mesh.topic, ev.Peer)
		}
		n.mesh.notify()
		n.mesh.mu.Unlock()
		if ev.Type != pubsub.PeerJoin {
			n.kickOverlay()
		}
	}
}

// meshState is this node's view of the workspace topic: who is subscribed
// and who is in its own GossipSub mesh (from the tracer).
type meshState struct {
	mu       sync.Mutex
	topic    map[ID]struct{}
	mesh     map[ID]struct{}
	lastJoin time.Time
	changed  chan struct{}
}

func (m *meshState) init() {
	m.topic, m.mesh, m.changed = map[ID]struct{}{}, map[ID]struct{}{}, make(chan struct{})
}

// joined notes that a member linked to this node: a topic peer soon.
func (m *meshState) joined() {
	m.mu.Lock()
	m.lastJoin = time.Now()
	m.notify()
	m.mu.Unlock()
}

// notify wakes waiters. Call with m.mu held.
func (m *meshState) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// waitUntil blocks until cond (called with m.mu held) holds or ctx ends.
func (m *meshState) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		m.mu.Lock()
		ok, ch := cond(), m.changed
		m.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// topicPeers counts the peers subscribed to the workspace topic.
func (n *Node) topicPeers() int {
	n.mesh.mu.Lock()
	defer n.mesh.mu.Unlock()
	return len(n.mesh.topic)
}

// waitTopicPeer blocks until p is subscribed to the workspace topic, as
// seen from this node, or ctx ends.
func (n *Node) waitTopicPeer(ctx context.Context, p ID) error {
	err := n.mesh.waitUntil(ctx, func() bool { _, ok := n.mesh.topic[p]; return ok || n.ctx.Err() != nil })
	if err == nil && n.ctx.Err() != nil {
		return ErrClosed
	}
	if err != nil {
		return fmt.Errorf("peer: %s did not subscribe to the workspace topic: %w", p, err)
	}
	return nil
}

// meshLow is GossipSub's low mesh degree (Dlo): below it a node grafts
// more peers at its next heartbeat.
const meshLow = 5

// waitMesh gives GossipSub a moment to put newly joined topic peers in
// this node's mesh, so that a broadcast right after a join reaches them
// directly rather than only by later gossip (which a loaded machine can
// delay for good). It waits only while the mesh is smaller than it will
// be (fewer than Dlo peers, or than the topic or the linked members have)
// and a topic peer or a linked member joined less than meshWait ago.
func (n *Node) waitMesh(ctx context.Context) {
	// Members linked to this node subscribe to the topic soon after they
	// present themselves (GossipSub learns of it a moment later).
	linked := n.roster.linkedUpTo(meshLow)
	n.mesh.mu.Lock()
	short := func() bool { return len(n.mesh.mesh) < min(meshLow, max(linked, len(n.mesh.topic))) }
	waiting := short()
	until := n.mesh.lastJoin.Add(meshWait)
	n.mesh.mu.Unlock()
	if !waiting || !time.Now().Before(until) {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	_ = n.mesh.waitUntil(ctx, func() bool { return !short() || n.ctx.Err() != nil })
}

// Publish broadcasts data to every member of the workspace over the
// GossipSub mesh. GossipSub is best-effort: a broadcast may be lost under
// load, so use [Node.Send] for anything that must arrive.
func (n *Node) Publish(ctx context.Context, data []byte) error {
	if len(data) > n.cfg.maxBroadcast {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBroadcastTooLarge, len(data), n.cfg.maxBroadcast)
	}
	if n.isClosed() {
		return ErrClosed
	}
	n.waitMesh(ctx)
	// GossipSub keeps the slice after Publish returns (it signs and sends
	// it asynchronously), so it must not share the caller's buffer.
	buf := make([]byte, 1+len(data))
	buf[0] = msgData
	copy(buf[1:], data)
	if err := n.topic.Publish(ctx, buf); err != nil {
		return fmt.Errorf("peer: publish: %w", err)
	}
	n.stats.broadcastOut.Add(1)
	return nil
}

// publishControl broadcasts a roster message; failures are logged only.
func (n *Node) publishControl(typ byte, payload []byte) {
	buf := make([]byte, 1+len(payload))
	buf[0] = typ
	copy(buf[1:], payload)
	if err := n.topic.Publish(n.ctx, buf); err != nil && n.ctx.Err() == nil {
		n.cfg.logger.Debug("publish roster message", "type", typ, "err", err)
	}
}

func (n *Node) gossipLoop() {
	defer n.wg.Done()
	self := n.ID()
	for {
		msg, err := n.sub.Next(n.ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, pubsub.ErrSubscriptionCancelled) {
				n.cfg.logger.Warn("gossip subscription ended", "err", err)
			}
			return
		}
		from := msg.GetFrom()
		if from == self || len(msg.Data) == 0 {
			continue
		}
		switch v := msg.ValidatorData.(type) {
		case *rosterDelta:
			n.roster.applyDelta(from, v)
		case *rosterBeat:
			n.roster.applyBeat(from, v)
		case *leaveNote:
			n.roster.left(from, v.Inc)
		default:
			if msg.Data[0] == msgData {
				n.stats.broadcastIn.Add(1)
				n.cfg.handler.HandleBroadcast(n.ctx, from, msg.Data[1:])
			}
		}
	}
}

// gossipTracer counts GossipSub's drops and tracks this node's mesh;
// everything else is ignored.
type gossipTracer struct{ n *Node }

func (t *gossipTracer) DropRPC(*pubsub.RPC, ID)              { t.n.stats.gossipDropped.Add(1) }
func (t *gossipTracer) UndeliverableMessage(*pubsub.Message) { t.n.stats.gossipDropped.Add(1) }
func (t *gossipTracer) RejectMessage(_ *pubsub.Message, r string) {
	t.n.stats.gossipRejected.Add(1)
}
func (t *gossipTracer) Graft(p ID, _ string) { t.setMesh(p, true) }
func (t *gossipTracer) Prune(p ID, _ string) { t.setMesh(p, false) }
func (t *gossipTracer) RemovePeer(p ID)      { t.setMesh(p, false) }

func (t *gossipTracer) setMesh(p ID, in bool) {
	m := &t.n.mesh
	m.mu.Lock()
	if in {
		m.mesh[p] = struct{}{}
	} else {
		delete(m.mesh, p)
	}
	m.notify()
	m.mu.Unlock()
}

func (t *gossipTracer) OnNewOutboundStream(ID, protocol.ID)             {}
func (t *gossipTracer) OnClosedOutboundStream(ID)                       {}
func (t *gossipTracer) AddPeer(ID, protocol.ID)                         {}
func (t *gossipTracer) Join(string)                                     {}
func (t *gossipTracer) Leave(string)                                    {}
func (t *gossipTracer) ValidateMessage(*pubsub.Message)                 {}
func (t *gossipTracer) DeliverMessage(*pubsub.Message)                  {}
func (t *gossipTracer) DuplicateMessage(*pubsub.Message)                {}
func (t *gossipTracer) ThrottlePeer(ID)                                 {}
func (t *gossipTracer) RecvRPC(*pubsub.RPC)                             {}
func (t *gossipTracer) SendRPC(*pubsub.RPC, ID)                         {}
func (t *gossipTracer) SendRPCCompleted(*pubsub.RPC, ID, time.Duration) {}

var _ pubsub.RawTracer = (*gossipTracer)(nil)
