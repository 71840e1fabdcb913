package peer

import (
	"errors"
	"fmt"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/vmihailenco/msgpack/v5"
)

// protocolVersion is checked in every hello and roster request.
const protocolVersion = 2

// Bounds on what one peer may say about itself.
const (
	// MaxMetaSize bounds a node's metadata ([WithMeta]).
	MaxMetaSize = 4 << 10
	// maxRecordAddrs bounds the addresses of one record; more are cut.
	maxRecordAddrs = 16
	// maxAddrLen bounds one address; longer ones are dropped.
	maxAddrLen = 256
)

// record is what a node says about itself: its ID, the incarnation of the
// process (a new one after every restart), its opaque metadata, its
// addresses, and whether it serves a roster.
type record struct {
	ID     []byte   `msgpack:"id"`
	Inc    uint64   `msgpack:"inc"`
	Meta   []byte   `msgpack:"meta,omitempty"`
	Addrs  [][]byte `msgpack:"addrs,omitempty"`
	Server bool     `msgpack:"srv,omitempty"`
}

// hello opens every direct stream and every roster exchange.
type hello struct {
	Version   int    `msgpack:"v"`
	Workspace string `msgpack:"ws"`
	Self      record `msgpack:"self"`
	// Want asks a roster server for its roster (roster exchange only):
	// the changes since (SinceEpoch, Since) if it still has them, else a
	// snapshot.
	Want       bool   `msgpack:"want,omitempty"`
	SinceEpoch uint64 `msgpack:"since_ep,omitempty"`
	Since      uint64 `msgpack:"since,omitempty"`
}

// rosterReply answers a roster exchange: the server's own record and,
// when asked and it serves one, its roster at (Epoch, Version): the
// deltas that lead there from the version the follower named, or all its
// members.
type rosterReply struct {
	Self    record `msgpack:"self"`
	Epoch   uint64 `msgpack:"ep,omitempty"`
	Version uint64 `msgpack:"ver,omitempty"`
	// Full says Members is the whole roster (a snapshot, even when
	// empty); otherwise Deltas lead from the version asked for to Version.
	Full    bool          `msgpack:"full,omitempty"`
	Members []record      `msgpack:"members,omitempty"`
	Deltas  []rosterDelta `msgpack:"deltas,omitempty"`
}

// rosterDelta is a server's change from version From to To of its roster.
type rosterDelta struct {
	Epoch uint64   `msgpack:"ep"`
	From  uint64   `msgpack:"from"`
	To    uint64   `msgpack:"to"`
	Add   []record `msgpack:"add,omitempty"`
	Del   [][]byte `msgpack:"del,omitempty"`
}

// rosterBeat tells followers a server's current version, so a lost delta
// is noticed without waiting for the next one.
type rosterBeat struct {
	Epoch   uint64 `msgpack:"ep"`
	Version uint64 `msgpack:"ver"`
	Size    int    `msgpack:"n"`
}

// leaveNote says its author is leaving the workspace (incarnation Inc).
type leaveNote struct {
	Inc uint64 `msgpack:"inc"`
}

// maxDeltaRecords bounds the records of one delta message; maxReplyDeltas
// the deltas a server keeps to answer a follower that missed some.
const (
	maxDeltaRecords = 1024
	maxReplyDeltas  = 256
)

// errBadRecord marks a record that breaks the bounds.
var errBadRecord = errors.New("peer: bad record")

// checkRecord validates a record from the network and returns its peer ID.
// Addresses that are empty or too long are dropped, and at most
// maxRecordAddrs kept (those that do not parse are dropped when used): a
// peer's own addresses are a hint, not a command.
func checkRecord(r *record) (ID, error) {
	id, err := peer.IDFromBytes(r.ID)
	if err != nil {
		return "", fmt.Errorf("%w: id: %w", errBadRecord, err)
	}
	if r.Inc == 0 {
		return "", fmt.Errorf("%w: no incarnation", errBadRecord)
	}
	if len(r.Meta) > MaxMetaSize {
		return "", fmt.Errorf("%w: %d bytes of metadata", errBadRecord, len(r.Meta))
	}
	keep := r.Addrs[:0]
	for _, a := range r.Addrs {
		if len(keep) == maxRecordAddrs {
			break
		}
		if len(a) > 0 && len(a) <= maxAddrLen {
			keep = append(keep, a)
		}
	}
	r.Addrs = keep
	return id, nil
}

// marshal encodes a wire value; the types here are plain structs of bytes,
// strings and integers, which cannot fail to encode.
func marshal(v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// unmarshal decodes network input: bounded (see messages.Unmarshal) and
// panic-free.
func unmarshal(b []byte, v any) error { return messages.Unmarshal(b, v) }

func encodeHello(h hello) []byte { return marshal(&h) }

// decodeHello parses and checks a hello payload against the local
// workspace. Failures wrap ErrHandshake.
func decodeHello(payload []byte, workspace string) (hello, error) {
	var h hello
	if err := unmarshal(payload, &h); err != nil {
		return h, fmt.Errorf("%w: malformed hello: %w", ErrHandshake, err)
	}
	switch {
	case h.Version != protocolVersion:
		return h, fmt.Errorf("%w: %w: protocol version %d, want %d", ErrHandshake, errWrongWorkspace, h.Version, protocolVersion)
	case h.Workspace != workspace:
		return h, fmt.Errorf("%w: %w: %q, want %q", ErrHandshake, errWrongWorkspace, h.Workspace, workspace)
	}
	if _, err := checkRecord(&h.Self); err != nil {
		return h, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return h, nil
}

// errWrongWorkspace marks a well-formed hello from another workspace (or
// protocol version): a misconfigured peer, not an attacker.
var errWrongWorkspace = errors.New("other workspace or version")

// decodeReply parses a roster reply, keeping at most max members; members
// that break the bounds are dropped and counted in bad.
func decodeReply(payload []byte, max int) (r rosterReply, bad int, err error) {
	if err := unmarshal(payload, &r); err != nil {
		return r, 0, fmt.Errorf("%w: malformed roster reply: %w", ErrHandshake, err)
	}
	if _, err := checkRecord(&r.Self); err != nil {
		return r, 0, fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	if len(r.Members) > max {
		bad += len(r.Members) - max
		r.Members = r.Members[:max]
	}
	r.Members, bad = keepValid(r.Members, bad)
	if len(r.Deltas) > maxReplyDeltas {
		return r, bad, fmt.Errorf("%w: %d deltas in a roster reply", ErrHandshake, len(r.Deltas))
	}
	for i := range r.Deltas {
		d := &r.Deltas[i]
		if len(d.Add) > maxDeltaRecords || len(d.Del) > maxDeltaRecords || d.To != d.From+1 {
			return r, bad, fmt.Errorf("%w: roster reply delta out of bounds", ErrHandshake)
		}
		d.Add, bad = keepValid(d.Add, bad)
	}
	return r, bad, nil
}

// keepValid drops the records that break the bounds, counting them.
func keepValid(recs []record, bad int) ([]record, int) {
	keep := recs[:0]
	for i := range recs {
		if _, err := checkRecord(&recs[i]); err != nil {
			bad++
			continue
		}
		keep = append(keep, recs[i])
	}
	return keep, bad
}

func parseAddrs(raw [][]byte) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(raw))
	for _, b := range raw {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func addrBytes(addrs []ma.Multiaddr) [][]byte {
	out := make([][]byte, 0, len(addrs))
	for _, a := range addrs {
		if b := a.Bytes(); len(b) <= maxAddrLen && len(out) < maxRecordAddrs {
			out = append(out, b)
		}
	}
	return out
}
