package messages

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// EnvelopeVersion is the version of the envelope layout written by this
// package. Decoders accept this version and reject others with
// [ErrUnsupportedVersion].
const EnvelopeVersion = 1

// envelopeFields is the number of array elements this version writes.
// Decoders ignore any elements after them, so a later version may append
// fields without breaking older readers.
const envelopeFields = 7

// Envelope carries one message: who sent it, when, what kind it is, and its
// msgpack body. On the wire it is a msgpack array
// [version, id, replyTo, kind, from, sentAt, body].
type Envelope struct {
	// ID is unique per sender (a sequence number); From+ID identify a
	// message in the workspace.
	ID uint64
	// ReplyTo is the ID of the message this one answers, or 0.
	ReplyTo uint64
	// Kind is the body's [Message.Kind].
	Kind string
	// From is the sender's agent ID (its peer ID). Receivers check it
	// against the authenticated connection it arrived on.
	From string
	// SentAt is the sender's clock when the message was sent.
	SentAt time.Time
	// Body is the msgpack encoding of the message. After [DecodeEnvelope]
	// it aliases the decoded buffer.
	Body []byte
}

// NewEnvelope encodes m into an envelope stamped with the current time.
func NewEnvelope(id uint64, from string, m Message) (Envelope, error) {
	body, err := Marshal(m)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{ID: id, Kind: m.Kind(), From: from, SentAt: time.Now(), Body: body}, nil
}

// AppendEncode appends the envelope's wire form to b.
func (e *Envelope) AppendEncode(b []byte) []byte {
	b = appendArrayHeader(b, envelopeFields)
	b = appendUint(b, EnvelopeVersion)
	b = appendUint(b, e.ID)
	b = appendUint(b, e.ReplyTo)
	b = appendString(b, e.Kind)
	b = appendString(b, e.From)
	var ns int64
	if !e.SentAt.IsZero() {
		ns = e.SentAt.UnixNano()
	}
	b = appendInt(b, ns)
	return appendBin(b, e.Body)
}

// Encode returns the envelope's wire form.
func (e *Envelope) Encode() []byte {
	return e.AppendEncode(make([]byte, 0, 32+len(e.Kind)+len(e.From)+len(e.Body)))
}

// Validate checks the fields every envelope must have.
func (e *Envelope) Validate() error {
	if e.Kind == "" {
		return ErrEmptyKind
	}
	return nil
}

// DecodeEnvelope parses an envelope. The returned Body aliases data. It never
// panics; bad input fails with an error wrapping [ErrMalformed] or
// [ErrUnsupportedVersion].
func DecodeEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	r := reader{b: data}
	n := r.arrayHeader()
	if r.err == nil && n < envelopeFields {
		return e, fmt.Errorf("%w: envelope has %d fields, want %d", ErrMalformed, n, envelopeFields)
	}
	v := r.uint64()
	if r.err == nil && v != EnvelopeVersion {
		return e, fmt.Errorf("%w: %d", ErrUnsupportedVersion, v)
	}
	e.ID = r.uint64()
	e.ReplyTo = r.uint64()
	e.Kind = intern(r.strBytes())
	e.From = intern(r.strBytes())
	if ns := r.int64(); ns != 0 {
		e.SentAt = time.Unix(0, ns)
	}
	e.Body = r.bin()
	if r.err != nil {
		return Envelope{}, r.err
	}
	if e.Kind == "" {
		return Envelope{}, fmt.Errorf("%w: %w", ErrMalformed, ErrEmptyKind)
	}
	return e, nil
}

// Strings that recur on every message (kinds, sender IDs) are interned, so
// decoding them does not allocate. The table is copy-on-write and bounded.
const maxInterned = 4096

var (
	internMu    sync.Mutex
	internTable atomic.Pointer[map[string]string]
)

func intern(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if m := internTable.Load(); m != nil {
		if s, ok := (*m)[string(p)]; ok {
			return s
		}
	}
	s := string(p)
	if len(p) > 128 {
		return s
	}
	internMu.Lock()
	defer internMu.Unlock()
	old := internTable.Load()
	if old != nil && len(*old) >= maxInterned {
		return s
	}
	next := make(map[string]string, 1+lenOf(old))
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	next[s] = s
	internTable.Store(&next)
	return s
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
