package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// topicName is the GossipSub topic of a workspace.
func topicName(workspace string) string { return "ceylon/ws/" + workspace }

// startGossip joins the workspace topic with flood publishing (so messages
// published before the mesh forms are not lost) and queues raised well
// above GossipSub's 32-message defaults; drops that still happen are
// counted by the tracer.
func (n *Node) startGossip() error {
	ps, err := pubsub.NewGossipSub(n.ctx, n.host,
		pubsub.WithFloodPublish(true),
		pubsub.WithPeerOutboundQueueSize(n.cfg.gossipQueue),
		pubsub.WithValidateQueueSize(n.cfg.gossipQueue),
		pubsub.WithMaxMessageSize(n.cfg.maxBroadcast+16<<10),
		pubsub.WithRawTracer(&gossipTracer{n}),
	)
	if err != nil {
		return fmt.Errorf("peer: start gossipsub: %w", err)
	}
	n.ps = ps
	topic, err := ps.Join(topicName(n.cfg.workspace))
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
		n.mu.Lock()
		if ev.Type == pubsub.PeerJoin {
			n.topicPeers[ev.Peer] = struct{}{}
		} else {
			delete(n.topicPeers, ev.Peer)
		}
		n.presenceChanged()
		n.mu.Unlock()
	}
}

// waitTopicPeer blocks until p is subscribed to the workspace topic, as
// seen from this node, or ctx ends.
func (n *Node) waitTopicPeer(ctx context.Context, p ID) error {
	err := n.waitUntil(ctx, func() bool { _, ok := n.topicPeers[p]; return ok })
	if err != nil && err != ErrClosed {
		return fmt.Errorf("peer: %s did not subscribe to the workspace topic: %w", p, err)
	}
	return err
}

// Publish broadcasts data to every peer of the workspace. GossipSub is
// best-effort: a broadcast may be lost under load or before peers connect,
// so use [Node.Send] for anything that must arrive.
func (n *Node) Publish(ctx context.Context, data []byte) error {
	if len(data) > n.cfg.maxBroadcast {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrBroadcastTooLarge, len(data), n.cfg.maxBroadcast)
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	// GossipSub keeps the slice after Publish returns (it signs and sends
	// it asynchronously), so it must not share the caller's buffer.
	if err := n.topic.Publish(ctx, bytes.Clone(data)); err != nil {
		return fmt.Errorf("peer: publish: %w", err)
	}
	n.stats.broadcastOut.Add(1)
	return nil
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
		if from == self {
			continue
		}
		n.stats.broadcastIn.Add(1)
		n.cfg.handler.HandleBroadcast(n.ctx, from, msg.Data)
	}
}

// gossipTracer counts GossipSub's drops; everything else is ignored.
type gossipTracer struct{ n *Node }

func (t *gossipTracer) DropRPC(*pubsub.RPC, ID)              { t.n.stats.gossipDropped.Add(1) }
func (t *gossipTracer) UndeliverableMessage(*pubsub.Message) { t.n.stats.gossipDropped.Add(1) }
func (t *gossipTracer) RejectMessage(_ *pubsub.Message, r string) {
	t.n.stats.gossipRejected.Add(1)
}
func (t *gossipTracer) OnNewOutboundStream(ID, protocol.ID)             {}
func (t *gossipTracer) OnClosedOutboundStream(ID)                       {}
func (t *gossipTracer) AddPeer(ID, protocol.ID)                         {}
func (t *gossipTracer) RemovePeer(ID)                                   {}
func (t *gossipTracer) Join(string)                                     {}
func (t *gossipTracer) Leave(string)                                    {}
func (t *gossipTracer) Graft(ID, string)                                {}
func (t *gossipTracer) Prune(ID, string)                                {}
func (t *gossipTracer) ValidateMessage(*pubsub.Message)                 {}
func (t *gossipTracer) DeliverMessage(*pubsub.Message)                  {}
func (t *gossipTracer) DuplicateMessage(*pubsub.Message)                {}
func (t *gossipTracer) ThrottlePeer(ID)                                 {}
func (t *gossipTracer) RecvRPC(*pubsub.RPC)                             {}
func (t *gossipTracer) SendRPC(*pubsub.RPC, ID)                         {}
func (t *gossipTracer) SendRPCCompleted(*pubsub.RPC, ID, time.Duration) {}

var _ pubsub.RawTracer = (*gossipTracer)(nil)
