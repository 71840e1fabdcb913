package agent

import (
	"context"
	"fmt"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// nodeHandler receives from the agent's node and feeds the actor. Its
// methods run on the node's reader goroutines.
type nodeHandler struct{ a *Agent }

var _ peer.Handler = nodeHandler{}

// HandlePresence hands joins and leaves to the actor; it does not block.
func (h nodeHandler) HandlePresence(_ context.Context, ev peer.PresenceEvent) {
	a := h.a
	p := &presence{pid: ev.Peer, detail: decodeMeta(ev.Peer.String(), ev.Meta), joined: ev.Joined}
	if ev.Joined {
		a.log.Debug("agent joined", "who", p.detail)
	} else {
		a.roster.remove(ev.Peer)
		a.log.Debug("agent left", "who", p.detail)
	}
	a.system.Root.Send(a.pid, p)
}

func (h nodeHandler) HandleDirect(ctx context.Context, from peer.ID, data []byte) {
	h.a.receive(ctx, from, data, false)
}

func (h nodeHandler) HandleBroadcast(ctx context.Context, from peer.ID, data []byte) {
	h.a.receive(ctx, from, data, true)
}

// receive checks an envelope and posts it to the actor, waiting for a
// mailbox credit first: a full mailbox stops this reader, which pushes back
// on the sender.
func (a *Agent) receive(ctx context.Context, from peer.ID, data []byte, broadcast bool) {
	env, err := messages.DecodeEnvelope(data)
	if err != nil {
		a.stats.droppedBad.Add(1)
		a.log.Debug("bad envelope", "from", from, "err", err)
		a.misbehaved(from, "undecodable envelope")
		return
	}
	m := a.sender(from)
	sender := AgentDetail{}
	if m != nil {
		sender = m.detail
	} else {
		sender.ID = from.String()
	}
	if env.From != "" && env.From != sender.ID {
		a.stats.droppedSpoofed.Add(1)
		a.log.Warn("envelope from another sender than its connection", "claimed", env.From, "peer", sender.ID)
		a.misbehaved(from, "spoofed envelope")
		return
	}
	if env.ReplyTo != 0 && !broadcast {
		if a.replies.deliver(a, from, env, sender) {
			return
		}
		if a.handlers.Load().kinds[env.Kind] == nil {
			a.stats.droppedLate.Add(1) // an answer to a Request that gave up
			return
		}
	}
	d := &delivery{Context: a.ctx, a: a, from: from, sender: sender, env: env, broadcast: broadcast, credited: true}
	if m != nil && !broadcast {
		// The peer's own bound first: a flooding peer waits here, on its
		// own reader, and leaves the rest of the mailbox to the others.
		select {
		case m.credits <- struct{}{}:
			d.member = m
		case <-ctx.Done():
			return
		}
	}
	select {
	case a.credits <- struct{}{}:
	case <-ctx.Done():
		if d.member != nil {
			<-d.member.credits
		}
		return
	}
	a.system.Root.Send(a.pid, d)
}

// misbehaved counts a bad message from pid toward its ban (see
// peer.Node.Penalize), whether or not it is a member.
func (a *Agent) misbehaved(pid peer.ID, what string) {
	if node := a.network(); node != nil {
		node.Penalize(pid, what)
	}
}

// checkBroadcast is the node's broadcast validator: a broadcast must be an
// envelope whose sender, if named, is its author (who signed it). One that
// is not is never delivered or forwarded, and counts against its author.
func checkBroadcast(from peer.ID, data []byte) error {
	env, err := messages.DecodeEnvelope(data)
	if err != nil {
		return err
	}
	if env.From != "" && env.From != from.String() {
		return fmt.Errorf("envelope claims sender %s", env.From)
	}
	return nil
}
