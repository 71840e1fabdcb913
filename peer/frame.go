package peer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ProtocolID is the direct-stream protocol.
const ProtocolID = "/ceylon/direct/2.0.0"

// Frame types: the first byte of every frame's payload.
const (
	frameHello byte = 1 // first frame of a stream: hello
	frameData  byte = 2 // application data for the Handler
	// 3 was the peer-exchange frame of protocol 1; it is unknown now.
	frameBye byte = 4 // the sender is leaving the workspace
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
