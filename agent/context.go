package agent

import (
	"context"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// Context is what a handler gets with each message: a context.Context that
// ends when the agent stops, who sent the message and when, and a way to
// answer.
type Context interface {
	context.Context
	// Agent is the agent running the handler.
	Agent() *Agent
	// Sender is the agent that sent the message (for a connect or
	// disconnect event, the agent that joined or left).
	Sender() AgentDetail
	// SenderID is the sender's peer ID (Sender().ID is its text form),
	// authenticated by the connection the message came over.
	SenderID() peer.ID
	// SentAt is the sender's clock when it sent the message.
	SentAt() time.Time
	// MessageID is the sender's ID for the message (0 for events).
	MessageID() uint64
	// Broadcast reports whether the message came as a broadcast.
	Broadcast() bool
	// Reply sends msg back to the sender, marked as the answer to this
	// message (what [Agent.Request] waits for).
	Reply(msg messages.Message) error
}

// delivery is one message for the actor; it is also the handler's Context.
type delivery struct {
	context.Context
	a         *Agent
	from      peer.ID
	sender    AgentDetail
	env       messages.Envelope
	broadcast bool
	credited  bool    // holds a mailbox credit to give back
	member    *member // holds a credit of this peer to give back
}

var _ Context = (*delivery)(nil)

func (d *delivery) Agent() *Agent       { return d.a }
func (d *delivery) Sender() AgentDetail { return d.sender }
func (d *delivery) SenderID() peer.ID   { return d.from }
func (d *delivery) SentAt() time.Time   { return d.env.SentAt }
func (d *delivery) MessageID() uint64   { return d.env.ID }
func (d *delivery) Broadcast() bool     { return d.broadcast }

func (d *delivery) Reply(msg messages.Message) error {
	if d.from == "" {
		return ErrNoReplyTarget
	}
	return d.a.sendBounded(d.from, msg, d.env.ID)
}

// presence is a join or leave for the actor.
type presence struct {
	pid    peer.ID
	detail AgentDetail
	joined bool
}
