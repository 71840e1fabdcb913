package peer

import "sync/atomic"

// Stats counts a node's traffic, its workspace view and everything it
// refused. Drops are never silent: each has a counter here.
type Stats struct {
	FramesIn     uint64 // direct frames handed to the Handler
	BytesIn      uint64 // direct payload bytes handed to the Handler
	WritesOut    uint64 // stream writes (each carries one or more frames)
	BytesOut     uint64 // bytes written to direct streams
	BroadcastIn  uint64 // broadcasts handed to the Handler
	BroadcastOut uint64 // broadcasts published

	Members    int    // members in the roster now
	Joins      uint64 // members that joined, as this node saw it
	Leaves     uint64 // members that left, as this node saw it
	Conns      int    // open connections now
	TopicPeers int    // connected peers on the workspace topic now
	MeshPeers  int    // peers in this node's GossipSub mesh now

	DeltasOut        uint64 // roster deltas published (a roster server)
	DeltasApplied    uint64 // roster deltas applied from servers followed
	SnapshotsServed  uint64 // roster snapshots sent (a roster server)
	DeltasServed     uint64 // missed deltas sent instead of a snapshot (a roster server)
	SnapshotsFetched uint64 // roster snapshot fetches after a gap
	SnapshotsApplied uint64 // roster snapshots applied
	OverlayDials     uint64 // dials to random members for the mesh
	ConnectFailures  uint64 // failed attempts of Connect, Join and rejoins
	IdleClosed       uint64 // direct streams closed after the idle timeout

	DroppedOversize   uint64 // inbound frames over the maximum size
	DroppedUnknown    uint64 // inbound frames of an unknown type
	HandshakeFailures uint64 // streams refused: bad, late or foreign hello
	StreamResets      uint64 // inbound streams reset for protocol violations
	GossipDropped     uint64 // GossipSub queue drops (RPC or undeliverable)
	GossipRejected    uint64 // broadcasts rejected by validation
	RosterRefused     uint64 // roster records refused (bounds, roster full)
	Penalties         uint64 // offences counted toward bans
	Bans              uint64 // peers banned for breaking the protocol

	// Discovery by workspace ID and reachability (see [WithBootstrap]).
	Reachability      string // what AutoNAT (or WithReachability) says of this node
	DHTPeers          int    // peers in the DHT's routing table now
	Advertised        uint64 // rendezvous advertisements made (a roster server)
	AdvertiseFailures uint64 // rendezvous advertisements that failed (retried)
	ServersFound      uint64 // servers found under the rendezvous key
	RelayedConns      uint64 // connections opened over a relay, either way
	RelayCircuits     uint64 // circuits this node's relay opened for members
	RelayRefused      uint64 // relay reservations or circuits refused (not members)
	RelayReservations uint64 // relay slots this node reserved or renewed
	RelayReserveFails uint64 // reservations a relay refused or that failed
	PunchAttempts     uint64 // DCUtR hole punches started
	PunchSuccesses    uint64 // hole punches that made a direct connection
	PunchFailures     uint64 // hole punches that failed (the relay stays)
	DirectUpgrades    uint64 // relayed peers dialed directly instead (reachable after all)
}

type stats struct {
	framesIn, bytesIn, writesOut, bytesOut, broadcastIn, broadcastOut atomic.Uint64
	joins, leaves                                                     atomic.Uint64
	deltasOut, deltasApplied, snapshotsServed, snapshotsFetched       atomic.Uint64
	deltasServed                                                      atomic.Uint64
	snapshotsApplied, overlayDials, idleClosed, connectFailures       atomic.Uint64
	droppedOversize, droppedUnknown, handshakeFailures, streamResets  atomic.Uint64
	gossipDropped, gossipRejected, rosterRefused, penalties, bans     atomic.Uint64
	advertised, advertiseFailures, found                              atomic.Uint64
	relayedConns, relayCircuits, relayRefused                         atomic.Uint64
	relayReservations, relayReserveFailures                           atomic.Uint64
	punchAttempts, punchSuccesses, punchFailures, directUpgrades      atomic.Uint64
}

func (s *stats) framesOutBytes(n int) {
	s.writesOut.Add(1)
	s.bytesOut.Add(uint64(n))
}

func (s *stats) snapshot() Stats {
	return Stats{
		FramesIn: s.framesIn.Load(), BytesIn: s.bytesIn.Load(),
		WritesOut: s.writesOut.Load(), BytesOut: s.bytesOut.Load(),
		BroadcastIn: s.broadcastIn.Load(), BroadcastOut: s.broadcastOut.Load(),
		Joins: s.joins.Load(), Leaves: s.leaves.Load(),
		DeltasOut: s.deltasOut.Load(), DeltasApplied: s.deltasApplied.Load(),
		SnapshotsServed: s.snapshotsServed.Load(), SnapshotsFetched: s.snapshotsFetched.Load(),
		DeltasServed:     s.deltasServed.Load(),
		SnapshotsApplied: s.snapshotsApplied.Load(), OverlayDials: s.overlayDials.Load(),
		ConnectFailures: s.connectFailures.Load(),
		IdleClosed:      s.idleClosed.Load(),
		DroppedOversize: s.droppedOversize.Load(), DroppedUnknown: s.droppedUnknown.Load(),
		HandshakeFailures: s.handshakeFailures.Load(), StreamResets: s.streamResets.Load(),
		GossipDropped: s.gossipDropped.Load(), GossipRejected: s.gossipRejected.Load(),
		RosterRefused: s.rosterRefused.Load(), Penalties: s.penalties.Load(),
		Bans:       s.bans.Load(),
		Advertised: s.advertised.Load(), AdvertiseFailures: s.advertiseFailures.Load(),
		ServersFound: s.found.Load(), RelayedConns: s.relayedConns.Load(),
		RelayCircuits: s.relayCircuits.Load(), RelayRefused: s.relayRefused.Load(),
		RelayReservations: s.relayReservations.Load(), RelayReserveFails: s.relayReserveFailures.Load(),
		PunchAttempts: s.punchAttempts.Load(), PunchSuccesses: s.punchSuccesses.Load(),
		PunchFailures: s.punchFailures.Load(), DirectUpgrades: s.directUpgrades.Load(),
	}
}
