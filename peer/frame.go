package peer

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/ceylon-go/ceylon/internal/frame"
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
func appendFrame(b []byte, typ byte, payload []byte) []byte { return frame.Append(b, typ, payload) }

// errFrameTooLarge is an oversized inbound frame, with its size.
type errFrameTooLarge = frame.TooLargeError

// readFrame reads one frame (see frame.Read); a malformed one is a
// protocol violation, ErrHandshake.
func readFrame(r *bufio.Reader, max int) (byte, []byte, error) {
	typ, payload, err := frame.Read(r, max)
	if errors.Is(err, frame.ErrMalformed) {
		err = fmt.Errorf("%w: %w", ErrHandshake, err)
	}
	return typ, payload, err
}
