package peer

import (
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// FuzzDecodeHello: hellos, roster replies and topic messages from the
// network never panic, fail only with the errors they document, and never
// keep more than their bounds allow.
func FuzzDecodeHello(f *testing.F) {
	addr, _ := ma.NewMultiaddr("/ip4/10.0.0.1/tcp/7000")
	id, _ := peer.Decode("12D3KooWMgHvgzSmATwfwN7mguUVC2JNKyhgfGdLi4W1TJykZZkC")
	rec := record{ID: []byte(id), Inc: 7, Meta: []byte{0x80}, Addrs: addrBytes([]ma.Multiaddr{addr})}
	f.Add(encodeHello(hello{Version: protocolVersion, Workspace: "ws", Self: rec}))
	f.Add(encodeHello(hello{Version: 9, Workspace: "other"}))
	f.Add(marshal(&rosterReply{Self: rec, Epoch: 1, Version: 2, Members: []record{rec, rec}}))
	f.Add(marshal(&rosterDelta{Epoch: 1, From: 2, To: 3, Add: []record{rec}, Del: [][]byte{[]byte(id)}}))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := decodeHello(data, "ws"); err != nil && !errors.Is(err, ErrHandshake) {
			t.Fatalf("hello error class: %v", err)
		} else if err == nil {
			checkBounds(t, h.Self)
		}
		rep, _, err := decodeReply(data, 4)
		if err != nil && !errors.Is(err, ErrHandshake) {
			t.Fatalf("reply error class: %v", err)
		}
		if err == nil {
			if len(rep.Members) > 4 {
				t.Fatalf("%d members kept, limit 4", len(rep.Members))
			}
			for _, m := range rep.Members {
				checkBounds(t, m)
			}
			for _, d := range rep.Deltas {
				for _, m := range d.Add {
					checkBounds(t, m)
				}
			}
		}
		var d rosterDelta
		if unmarshal(data, &d) == nil {
			d.Add, _ = keepValid(d.Add, 0)
			for _, m := range d.Add {
				checkBounds(t, m)
			}
		}
	})
}

func checkBounds(t *testing.T, r record) {
	t.Helper()
	if _, err := peer.IDFromBytes(r.ID); err != nil || r.Inc == 0 || len(r.Meta) > MaxMetaSize || len(r.Addrs) > maxRecordAddrs {
		t.Fatalf("record out of bounds kept: %+v", r)
	}
	for _, a := range r.Addrs {
		if len(a) == 0 || len(a) > maxAddrLen {
			t.Fatalf("bad address kept: %x", a)
		}
	}
}
