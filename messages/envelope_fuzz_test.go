package messages

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeEnvelope feeds arbitrary bytes to the envelope decoder and the
// registry: they must never panic, must fail only with the package's
// sentinels, and whatever decodes must re-encode to an equivalent envelope.
func FuzzDecodeEnvelope(f *testing.F) {
	reg := NewRegistry()
	for _, m := range []Message{
		Task{ID: "t1", Type: "w", Description: "d", Difficulty: 3, Dependencies: []string{"a"}},
		TaskResult{TaskID: "t1", Attempt: 1, Worker: "w", Success: true, Output: []byte("out")},
		TaskAck{TaskID: "t", Attempt: 2},
		Heartbeat{InFlight: 3},
	} {
		e, err := NewEnvelope(9, "peer", m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Encode())
	}
	f.Add([]byte{})
	f.Add([]byte{0x97, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := DecodeEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		again, err := DecodeEnvelope(e.Encode())
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.ID != e.ID || again.ReplyTo != e.ReplyTo || again.Kind != e.Kind || again.From != e.From ||
			!bytes.Equal(again.Body, e.Body) || !again.SentAt.Equal(e.SentAt) && !(again.SentAt.IsZero() && e.SentAt.Equal(time.Unix(0, 0))) {
			t.Fatalf("re-encode changed the envelope: %+v vs %+v", again, e)
		}
		if _, err := reg.Decode(e.Kind, e.Body); err != nil &&
			!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKind) {
			t.Fatalf("unexpected body error class: %v", err)
		}
	})
}
