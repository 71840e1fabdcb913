package agent

import (
	"context"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// nodeHandler receives from the agent's node and feeds the actor. Its
// methods run on the node's reader goroutines.
type nodeHandler struct{ a *Agent }

var _ peer.Handler = nodeHandler{}

func (h nodeHandler) HandlePresence(_ context.Context, ev peer.PresenceEvent) {
	a := h.a
	if ev.Joined {
		m := &member{pid: ev.Peer, detail: decodeMeta(ev.Peer.String(), ev.Meta)}
		a.roster.add(m)
		a.log.Debug("agent connected", "who", m.detail)
		a.system.Root.Send(a.pid, &presence{m: m, joined: true})
		return
	}
	if m := a.roster.remove(ev.Peer); m != nil {
		a.log.Debug("agent disconnected", "who", m.detail)
		a.system.Root.Send(a.pid, &presence{m: m})
	}
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
		return
	}
	sender := AgentDetail{}
	if m := a.roster.byPeer(from); m != nil {
		sender = m.detail
	} else {
		sender.ID = from.String()
	}
	if env.From != "" && env.From != sender.ID {
		a.stats.droppedSpoofed.Add(1)
		a.log.Warn("envelope from another sender than its connection", "claimed", env.From, "peer", sender.ID)
		return
	}
	if env.ReplyTo != 0 && !broadcast && a.replies.deliver(a, env, sender) {
		return
	}
	select {
	case a.credits <- struct{}{}:
	case <-ctx.Done():
		return
	}
	a.system.Root.Send(a.pid, &delivery{
		Context: a.ctx, a: a, from: from, sender: sender, env: env, broadcast: broadcast, credited: true,
	})
}
