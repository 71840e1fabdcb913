// Package frame is the framing of the direct-stream protocol: each frame
// is a uvarint length, a type byte and a payload. It is apart from package
// peer, which speaks it, so its reader can be fuzzed fast, without the
// rest of libp2p in the coverage map.
package frame

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrTooLarge reports a frame over the reader's or writer's limit.
	ErrTooLarge = errors.New("peer: frame too large")
	// ErrMalformed reports a frame that is not one: an empty frame, or a
	// length that overflows 64 bits.
	ErrMalformed = errors.New("frame malformed")
)

// Append appends a length-prefixed frame of type typ to b.
func Append(b []byte, typ byte, payload []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(payload)+1))
	b = append(b, typ)
	return append(b, payload...)
}

// TooLargeError carries the size of an oversized inbound frame so the
// reader's caller can decide between skipping it and dropping the stream.
type TooLargeError struct{ Size uint64 }

// Error says how large the frame was.
func (e TooLargeError) Error() string {
	return fmt.Sprintf("%v: %d bytes", ErrTooLarge, e.Size)
}

// Unwrap makes errors.Is(err, ErrTooLarge) hold.
func (e TooLargeError) Unwrap() error { return ErrTooLarge }

// Read reads one frame and returns its type and payload (freshly
// allocated). A frame over max fails with a TooLargeError before its body
// is read; an empty frame is malformed. A stream that ends inside a
// frame's length ends with io.EOF, inside its body with
// io.ErrUnexpectedEOF.
func Read(r *bufio.Reader, max int) (byte, []byte, error) {
	n, err := readLength(r)
	if err != nil {
		return 0, nil, err
	}
	if n == 0 {
		return 0, nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if n > uint64(max) {
		return 0, nil, TooLargeError{n}
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

// readLength reads a frame's uvarint length.
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
	return 0, fmt.Errorf("%w: frame length overflows 64 bits", ErrMalformed)
}
