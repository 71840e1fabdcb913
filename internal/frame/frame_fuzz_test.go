package frame

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadFrame: the frame reader never panics, never allocates more than
// the limit for one frame, and reads back what appendFrame wrote.
func FuzzReadFrame(f *testing.F) {
	f.Add(Append(Append(nil, 2, []byte("hello")), 4, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x00})
	f.Add([]byte{0x03, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 16
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			typ, payload, err := Read(r, max)
			if err != nil {
				var big TooLargeError
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrMalformed) && !errors.As(err, &big) {
					t.Fatalf("unexpected error class: %v", err)
				}
				return
			}
			if len(payload) >= max {
				t.Fatalf("payload of %d bytes over the limit", len(payload))
			}
			again := bufio.NewReader(bytes.NewReader(Append(nil, typ, payload)))
			gt, gp, err := Read(again, max)
			if err != nil || gt != typ || !bytes.Equal(gp, payload) {
				t.Fatalf("round trip: %v %v %x", err, gt, gp)
			}
		}
	})
}
