// Package peer is one libp2p node in a ceylon workspace: a host listening on
// TCP and QUIC, an identity (optionally persisted to a key file), the
// workspace's GossipSub topic for broadcasts, a direct-stream protocol for
// point-to-point frames, discovery (a bootstrap address, peer exchange,
// mDNS), presence events, and limits.
//
// The package moves opaque frames; it knows nothing of actors or tasks. What
// it receives goes to a [Handler]; what it cannot accept it counts in
// [Stats] and drops.
//
// # Direct streams
//
// Between two nodes A and B there are two streams on protocol
// [ProtocolID]: A writes only to the one it opened and reads only from the
// one B opened. Each stream starts with a hello frame (protocol version,
// workspace ID, the node's opaque metadata and listen addresses). A peer is
// present from the moment its hello is accepted until its stream ends, and
// the [Handler] sees the join, then its frames in order, then the leave, all
// from one goroutine. Frames are uvarint length-prefixed with a hard maximum
// size. Writes are queued per peer and flushed by one writer goroutine when
// its queue empties, so bursts become few large writes; a full queue blocks
// [Node.Send] until there is room or its context ends (back-pressure, not
// silent loss).
package peer
