package peer

import (
	"errors"

	"github.com/ceylon-go/ceylon/internal/frame"
)

var (
	// ErrClosed is returned by calls on a closed node.
	ErrClosed = errors.New("peer: node closed")
	// ErrFrameTooLarge reports a frame over the node's maximum frame size.
	ErrFrameTooLarge = frame.ErrTooLarge
	// ErrBroadcastTooLarge reports a broadcast over the maximum broadcast
	// size (kept well below GossipSub's 1 MiB hard limit, past which
	// go-libp2p silently resets the pubsub stream).
	ErrBroadcastTooLarge = errors.New("peer: broadcast too large")
	// ErrNotPresent reports a send to a peer that has not joined the
	// workspace and cannot be reached.
	ErrNotPresent = errors.New("peer: peer not present")
	// ErrStreamClosed reports that the stream to a peer ended (the peer
	// left or reset it); frames queued on it are lost.
	ErrStreamClosed = errors.New("peer: stream closed")
	// ErrBadAddress reports an address that is not a dialable
	// /…/p2p/<id> multiaddr.
	ErrBadAddress = errors.New("peer: bad address")
	// ErrHandshake reports a peer whose hello was missing, malformed, for
	// another workspace or protocol version, or late.
	ErrHandshake = errors.New("peer: handshake failed")
	// ErrBadIdentity reports an identity key file that cannot be read.
	ErrBadIdentity = errors.New("peer: bad identity key file")
	// ErrTimeout reports a SendWithin that could not queue its frame in
	// time.
	ErrTimeout = errors.New("peer: send timed out")
	// ErrSelf reports an attempt to connect or send to the node itself.
	ErrSelf = errors.New("peer: cannot connect to self")
)
