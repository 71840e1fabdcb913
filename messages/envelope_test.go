package messages

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	long := string(bytes.Repeat([]byte("k"), 300))
	cases := []Envelope{
		{ID: 1, Kind: "a", From: "peer", SentAt: time.Unix(0, 12345), Body: []byte{0x80}},
		{ID: math.MaxUint64, ReplyTo: 1 << 40, Kind: long, From: "", Body: nil},
		{ID: 200, ReplyTo: 70000, Kind: "k", From: "p", SentAt: time.Unix(1, 0), Body: bytes.Repeat([]byte{1}, 70000)},
		{ID: 0, Kind: "neg", SentAt: time.Unix(0, -5)},
	}
	for _, want := range cases {
		got, err := DecodeEnvelope(want.Encode())
		if err != nil {
			t.Fatalf("decode %q: %v", want.Kind, err)
		}
		if got.ID != want.ID || got.ReplyTo != want.ReplyTo || got.Kind != want.Kind || got.From != want.From ||
			!got.SentAt.Equal(want.SentAt) || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	t.Parallel()
	good := (&Envelope{ID: 1, Kind: "k", From: "f", Body: []byte{0xc0}}).Encode()
	v2 := bytes.Clone(good)
	v2[1] = 2 // version field
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"not an array", []byte{0x01}, ErrMalformed},
		{"too few fields", []byte{0x92, 0x01, 0x01}, ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"future version", v2, ErrUnsupportedVersion},
		{"empty kind", (&Envelope{ID: 1}).Encode(), ErrMalformed},
		{"bad utf8 kind", []byte{0x97, 0x01, 0x01, 0x00, 0xa1, 0xff, 0xa0, 0x00, 0xc0}, ErrMalformed},
		{"huge string length", []byte{0x97, 0x01, 0x01, 0x00, 0xdb, 0xff, 0xff, 0xff, 0xff}, ErrMalformed},
	}
	for _, c := range cases {
		if _, err := DecodeEnvelope(c.in); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

func TestEnvelopeIgnoresTrailingFields(t *testing.T) {
	t.Parallel()
	e := Envelope{ID: 7, Kind: "k", Body: []byte{0xc0}}
	b := e.Encode()
	b[0] = 0x98              // 8 fields
	b = append(b, 0xa1, 'x') // a field from a later version
	got, err := DecodeEnvelope(b)
	if err != nil || got.ID != 7 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func BenchmarkEnvelopeEncode(b *testing.B) {
	e := Envelope{ID: 123456, Kind: "ceylon.task.result", From: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", SentAt: time.Now(), Body: make([]byte, 64)}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendEncode(buf[:0])
	}
}

func BenchmarkEnvelopeDecode(b *testing.B) {
	e := Envelope{ID: 123456, Kind: "ceylon.task.result", From: "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo", SentAt: time.Now(), Body: make([]byte, 64)}
	data := e.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEnvelope(data); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAppendMarshalMatchesMarshal(t *testing.T) {
	t.Parallel()
	m := TaskResult{TaskID: "t", Attempt: 2, Worker: "w", Success: true, Output: []byte("x")}
	want, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendMarshal([]byte("prefix"), m)
	if err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendMarshal = %q, %v; want prefix+%q", got, err, want)
	}
}
