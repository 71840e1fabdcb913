package peer

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// FuzzReadFrame: the frame reader never panics, never allocates more than
// the limit for one frame, and reads back what appendFrame wrote.
func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(appendFrame(nil, frameData, []byte("hello")), framePeers, nil))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x00})
	f.Add([]byte{0x03, frameHello})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 16
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			typ, payload, err := readFrame(r, max)
			if err != nil {
				var big errFrameTooLarge
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrHandshake) && !errors.As(err, &big) {
					t.Fatalf("unexpected error class: %v", err)
				}
				return
			}
			if len(payload) >= max {
				t.Fatalf("payload of %d bytes over the limit", len(payload))
			}
			again := bufio.NewReader(bytes.NewReader(appendFrame(nil, typ, payload)))
			gt, gp, err := readFrame(again, max)
			if err != nil || gt != typ || !bytes.Equal(gp, payload) {
				t.Fatalf("round trip: %v %v %x", err, gt, gp)
			}
		}
	})
}

// FuzzDecodeHello: hellos and peer lists from the network never panic and
// fail only with ErrHandshake.
func FuzzDecodeHello(f *testing.F) {
	addr, _ := ma.NewMultiaddr("/ip4/10.0.0.1/tcp/7000")
	f.Add(encodeHello(hello{Version: protocolVersion, Workspace: "ws", Meta: []byte{0x80}, Addrs: addrBytes([]ma.Multiaddr{addr})}))
	f.Add(encodeHello(hello{Version: 9, Workspace: "other"}))
	id, _ := peer.Decode("12D3KooWMgHvgzSmATwfwN7mguUVC2JNKyhgfGdLi4W1TJykZZkC")
	f.Add(encodePeers([]peer.AddrInfo{{ID: id, Addrs: []ma.Multiaddr{addr}}}))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := decodeHello(data, "ws"); err != nil && !errors.Is(err, ErrHandshake) {
			t.Fatalf("hello error class: %v", err)
		}
		infos, err := decodePeers(data)
		if err != nil && !errors.Is(err, ErrHandshake) {
			t.Fatalf("peers error class: %v", err)
		}
		if len(infos) > maxPeerList {
			t.Fatalf("%d peers accepted", len(infos))
		}
	})
}
