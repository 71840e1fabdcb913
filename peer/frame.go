package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

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
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, io.EOF
		}
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
		return h, fmt.Errorf("%w: protocol version %d, want %d", ErrHandshake, h.Version, protocolVersion)
	case h.Workspace != workspace:
		return h, fmt.Errorf("%w: workspace %q, want %q", ErrHandshake, h.Workspace, workspace)
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

func safeUnmarshal(b []byte, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while decoding: %v", r)
		}
	}()
	return msgpack.Unmarshal(b, v)
}
