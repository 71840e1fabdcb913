package peer

import "sync/atomic"

// Stats counts a node's traffic and everything it refused. Drops are never
// silent: each has a counter here.
type Stats struct {
	FramesIn     uint64 // direct frames handed to the Handler
	BytesIn      uint64 // direct payload bytes handed to the Handler
	WritesOut    uint64 // stream writes (each carries one or more frames)
	BytesOut     uint64 // bytes written to direct streams
	BroadcastIn  uint64 // broadcasts handed to the Handler
	BroadcastOut uint64 // broadcasts published

	DroppedOversize   uint64 // inbound frames over the maximum size
	DroppedUnknown    uint64 // inbound frames of an unknown type
	HandshakeFailures uint64 // streams refused: bad, late or foreign hello
	StreamResets      uint64 // inbound streams reset for protocol violations
	GossipDropped     uint64 // GossipSub queue drops (RPC or undeliverable)
	GossipRejected    uint64 // broadcasts rejected by validation
	Bans              uint64 // peers banned for breaking the protocol
}

type stats struct {
	framesIn, bytesIn, writesOut, bytesOut, broadcastIn, broadcastOut atomic.Uint64
	droppedOversize, droppedUnknown, handshakeFailures, streamResets  atomic.Uint64
	gossipDropped, gossipRejected, bans                               atomic.Uint64
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
		DroppedOversize: s.droppedOversize.Load(), DroppedUnknown: s.droppedUnknown.Load(),
		HandshakeFailures: s.handshakeFailures.Load(), StreamResets: s.streamResets.Load(),
		GossipDropped: s.gossipDropped.Load(), GossipRejected: s.gossipRejected.Load(),
		Bans: s.bans.Load(),
	}
}
