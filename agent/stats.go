package agent

import "sync/atomic"

// Stats counts an agent's messages. Every message it could not handle is
// counted in one of the Dropped or Handler fields.
type Stats struct {
	Received       uint64 // messages handed to a handler
	Sent           uint64 // direct messages sent
	Broadcasts     uint64 // broadcasts sent
	HandlerErrors  uint64 // handlers that returned an error
	HandlerPanics  uint64 // handlers that panicked (recovered)
	DroppedUnknown uint64 // messages of a kind with no handler
	DroppedBad     uint64 // undecodable envelopes or bodies
	DroppedSpoofed uint64 // envelopes whose From is not the connection's peer
	DroppedLate    uint64 // replies nobody waits for any more
}

type stats struct {
	received, sent, broadcasts, handlerErrors, handlerPanics atomic.Uint64
	droppedUnknown, droppedBad, droppedSpoofed, droppedLate  atomic.Uint64
}

// Stats returns a snapshot of the agent's counters.
func (a *Agent) Stats() Stats {
	s := &a.stats
	return Stats{
		Received: s.received.Load(), Sent: s.sent.Load(), Broadcasts: s.broadcasts.Load(),
		HandlerErrors: s.handlerErrors.Load(), HandlerPanics: s.handlerPanics.Load(),
		DroppedUnknown: s.droppedUnknown.Load(), DroppedBad: s.droppedBad.Load(),
		DroppedSpoofed: s.droppedSpoofed.Load(), DroppedLate: s.droppedLate.Load(),
	}
}
