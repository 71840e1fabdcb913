package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/vmihailenco/msgpack/v5"
)

// ProtocolID is the direct-stream protocol.
const ProtocolID = "/ceylon/direct/1.0.0"

// protocolVersion is checked in every hello.
const protocolVersion = 1

// Frame types: the first byte of every frame's payload.
const (
	frameHello byte = 1 // first frame of a stream: hello
	frameData  byte = 2 // application data for the Handler
	framePeers byte = 3 // peer exchange: peers the sender knows
)

// appendFrame appends a length-prefixed frame of type typ to b.
func appendFrame(b []byte, typ byte, payload []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(payload)+1))
	b = append(b, typ)
	return append(b, payload...)
}

// errFrameTooLarge carries the size of an oversized inbound frame so the
// reader can decide between skipping it and dropping the stream.
type errFrameTooLarge struct{ size uint64 }

func (e errFrameTooLarge) Error() string {
	return fmt.Sprintf("%v: %d bytes", ErrFrameTooLarge, e.size)
}

func (e errFrameTooLarge) Unwrap() error { return ErrFrameTooLarge }

// readFrame reads one frame and returns its type and payload (freshly
// allocated). A frame over max fails with errFrameTooLarge before its body
// is read; an empty frame is malformed.
func readFrame(r *bufio.Reader, max int) (byte, []byte, error) {
	n, err := readLength(r)
	if err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: empty frame", ErrHandshake)
	}
	if n > uint64(max) {
		return 0, nil, errFrameTooLarge{n}
	}
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	payload := make([]byte, n-1)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return typ, payload, nil
}

// errWrongWorkspace marks a well-formed hello from another workspace (or
// protocol version): a misconfigured peer, not an attacker.
var errWrongWorkspace = errors.New("other workspace or version")

// readLength reads a frame's uvarint length. A stream that ends inside it
// ends with io.EOF; a length over 64 bits is a protocol violation.
func readLength(r *bufio.Reader) (uint64, error) {
	var x uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, err
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return x | uint64(b)<<(7*i), nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, fmt.Errorf("%w: frame length overflows 64 bits", ErrHandshake)
}

// hello opens every direct stream.
type hello struct {
	Version   int      `msgpack:"v"`
	Workspace string   `msgpack:"ws"`
	Meta      []byte   `msgpack:"meta,omitempty"`
	Addrs     [][]byte `msgpack:"addrs,omitempty"`
}

// peerRecord is one entry of a peer-exchange frame.
type peerRecord struct {
	ID    []byte   `msgpack:"id"`
	Addrs [][]byte `msgpack:"addrs"`
}

const (
	maxHelloAddrs = 64
	maxPeerList   = 1024
)

func encodeHello(h hello) []byte {
	b, err := msgpack.Marshal(&h)
	if err != nil {
		panic(err) // plain struct of bytes and strings: cannot fail
	}
	return b
}

// decodeHello parses and checks a hello payload against the local
// workspace. Failures wrap ErrHandshake.
func decodeHello(payload []byte, workspace string) (hello, error) {
	var h hello
	if err := safeUnmarshal(payload, &h); err != nil {
		return h, fmt.Errorf("%w: malformed hello: %w", ErrHandshake, err)
	}
	switch {
	case h.Version != protocolVersion:
		return h, fmt.Errorf("%w: %w: protocol version %d, want %d", ErrHandshake, errWrongWorkspace, h.Version, protocolVersion)
	case h.Workspace != workspace:
		return h, fmt.Errorf("%w: %w: %q, want %q", ErrHandshake, errWrongWorkspace, h.Workspace, workspace)
	case len(h.Addrs) > maxHelloAddrs:
		return h, fmt.Errorf("%w: %d addresses", ErrHandshake, len(h.Addrs))
	}
	return h, nil
}

// decodePeers parses a peer-exchange payload, skipping records that do not
// parse. Failures wrap ErrHandshake.
func decodePeers(payload []byte) ([]peer.AddrInfo, error) {
	var recs []peerRecord
	if err := safeUnmarshal(payload, &recs); err != nil {
		return nil, fmt.Errorf("%w: malformed peer list: %w", ErrHandshake, err)
	}
	if len(recs) > maxPeerList {
		recs = recs[:maxPeerList]
	}
	out := make([]peer.AddrInfo, 0, len(recs))
	for _, r := range recs {
		id, err := peer.IDFromBytes(r.ID)
		if err != nil {
			continue
		}
		out = append(out, peer.AddrInfo{ID: id, Addrs: parseAddrs(r.Addrs)})
	}
	return out, nil
}

func encodePeers(infos []peer.AddrInfo) []byte {
	recs := make([]peerRecord, 0, len(infos))
	for _, ai := range infos {
		recs = append(recs, peerRecord{ID: []byte(ai.ID), Addrs: addrBytes(ai.Addrs)})
	}
	b, err := msgpack.Marshal(recs)
	if err != nil {
		panic(err)
	}
	return b
}

func addrBytes(addrs []ma.Multiaddr) [][]byte {
	out := make([][]byte, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Bytes())
	}
	return out
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

// safeUnmarshal decodes network input: bounded (see messages.Unmarshal)
// and panic-free.
func safeUnmarshal(b []byte, v any) error {
	return messages.Unmarshal(b, v)
}
