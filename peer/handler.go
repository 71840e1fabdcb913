package peer

import (
	"context"
)

// PresenceEvent reports a member joining or leaving the workspace, as this
// node knows it (see the package documentation: joined and left the
// workspace, not connected and disconnected).
type PresenceEvent struct {
	Peer ID
	// Joined is true when the member joined, false when it left. A member
	// whose process restarted (a new incarnation) leaves and joins again.
	Joined bool
	// Meta is the opaque metadata of the member's record.
	Meta []byte
}

// Handler receives what a node hears.
//
// HandlePresence calls are made one at a time, in the order of the roster's
// changes, and run under the roster's lock: they must not block, and must
// not call the Node (nor take a lock held while calling it); hand the
// event on. A member's join is reported before any of its direct frames;
// its frames come in order, from one goroutine at a time; frames may still
// arrive after its leave (a goodbye in flight). Different peers are served
// by different goroutines, and broadcasts by another, so implementations
// must be safe for concurrent use.
//
// HandleDirect and HandleBroadcast may block: while one blocks, the node
// stops reading from that peer (or from the topic), which is how a slow
// receiver pushes back on a fast sender. They must return once ctx is done
// (the node is closing). The data slice belongs to the handler.
type Handler interface {
	HandlePresence(ctx context.Context, ev PresenceEvent)
	HandleDirect(ctx context.Context, from ID, data []byte)
	HandleBroadcast(ctx context.Context, from ID, data []byte)
}

// NopHandler drops everything.
type NopHandler struct{}

var _ Handler = NopHandler{}

// HandlePresence implements [Handler].
func (NopHandler) HandlePresence(context.Context, PresenceEvent) {}

// HandleDirect implements [Handler].
func (NopHandler) HandleDirect(context.Context, ID, []byte) {}

// HandleBroadcast implements [Handler].
func (NopHandler) HandleBroadcast(context.Context, ID, []byte) {}
