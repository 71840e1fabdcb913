// Package peer is one libp2p node in a ceylon workspace: a host listening on
// TCP and QUIC, an identity (optionally persisted to a key file), the
// workspace's GossipSub topic for broadcasts, a direct-stream protocol for
// point-to-point frames, the workspace's roster, a bounded overlay,
// discovery (a join address, mDNS) and limits.
//
// The package moves opaque frames; it knows nothing of actors or tasks. What
// it receives goes to a [Handler]; what it cannot accept it counts in
// [Stats] and drops.
//
// # The roster: who is in the workspace
//
// Every node knows every member of the workspace (its ID, metadata and
// addresses) without being connected to it. A member is in a node's roster
// while a source vouches for it:
//
//   - the member itself, over a connection on which it presented its record
//     (the hello of a direct stream, or a roster exchange, [RosterProtocolID]).
//     When the last connection to it closes, this link lingers for the leave
//     grace ([WithLeaveGrace], 2 s), so a blip is not a leave; a goodbye (a
//     bye frame, or a leave note on the topic, both sent by [Node.Close])
//     ends it at once;
//   - a roster server the node follows: one it connected to on purpose
//     ([Node.Connect], [Node.Join], mDNS) that was started [WithServer] (an
//     admin, a task manager). A server lists the members linked to it,
//     publishes each batch of changes as a delta on the workspace topic,
//     beats its version so a follower that missed a delta fetches a
//     snapshot, and hands a snapshot to each newcomer. When a server goes
//     away (or restarts), what it listed stays for the orphan time
//     ([WithOrphanTime], 30 s) unless a source lists it again, so a
//     restarting manager does not make the whole workspace leave.
//
// [PresenceEvent] therefore means joined and left the workspace, as this
// node knows it, not connected and disconnected. A member whose process
// restarts (a new incarnation) is reported as a leave and a join. Leaves
// are seen without a connection to the leaver: its goodbye, or its server
// seeing its link go. What one peer can contribute is bounded: one record
// of its own ([MaxMetaSize] of metadata, 16 addresses), a roster of at most
// [WithMaxMembers], snapshots of at most 16 MiB.
//
// Servers are trusted by the nodes that joined them; a record a server
// sends about a member never overrides what the member said itself, and a
// record of an earlier incarnation is ignored.
//
// # The overlay: bounded connections
//
// A node holds the connections it needs, not one to every member: its
// joined peers (protected from trimming, redialed when lost), the peers it
// exchanges direct frames with (protected while in use; [WithIdleTimeout]
// retires idle streams), and a few members picked at random
// ([WithOverlayDegree], 6) so that GossipSub builds its mesh among all
// members instead of a star around the server. libp2p's connection manager
// trims the rest ([Limits]). [Node.Send] to a member with no connection
// dials it on demand from the addresses in the roster. Broadcasts travel
// over the GossipSub mesh: a sender hands each to its mesh peers (GossipSub's
// degree), never to everyone it is connected to.
//
// # Limits
//
// libp2p's defaults suit a desktop peer; [DefaultLimits] are sized for a
// workspace (one node serving thousands) and against idle or
// unauthenticated sockets: see [Limits]. Offences (undecodable frames,
// broadcasts that fail validation, see [WithBroadcastValidator]) are
// counted per peer ([Node.Penalize]), and a peer past [WithMaxBadFrames]
// is banned for [DefaultBan].
//
// # Direct streams
//
// Between two nodes A and B there are up to two streams on protocol
// [ProtocolID]: A writes only to the one it opened and reads only from the
// one B opened. Each stream starts with a hello frame (protocol version,
// workspace ID, the node's record). Frames are uvarint length-prefixed with
// a hard maximum size. Writes are queued per peer and flushed by one writer
// goroutine when its queue empties, so bursts become few large writes; a
// full queue blocks [Node.Send] until there is room or its context ends
// (back-pressure, not silent loss).
package peer
