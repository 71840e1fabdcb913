package messages

import (
	"maps"
	"slices"

	"github.com/tinylib/msgp/msgp"
)

// Inputs are the outputs of a task's dependencies, keyed by task ID. Its
// codec is written out (not generated) only so that it reads a nil value
// (what a reflection-based encoder writes for a nil output) as nil.
type Inputs map[string][]byte

// maxInputs bounds the entries one decoded Inputs may claim.
const maxInputs = 65536

// MarshalMsg implements msgp.Marshaler. Entries go out in key order, so
// a message has one encoding.
func (m Inputs) MarshalMsg(b []byte) ([]byte, error) {
	if m == nil {
		return msgp.AppendNil(b), nil
	}
	b = msgp.AppendMapHeader(b, uint32(len(m)))
	if len(m) == 1 {
		for k, v := range m {
			b = msgp.AppendBytes(msgp.AppendString(b, k), v)
		}
		return b, nil
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = msgp.AppendBytes(msgp.AppendString(b, k), m[k])
	}
	return b, nil
}

// UnmarshalMsg implements msgp.Unmarshaler.
func (m *Inputs) UnmarshalMsg(b []byte) ([]byte, error) {
	if msgp.IsNil(b) {
		*m = nil
		return b[1:], nil
	}
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return b, err
	}
	if n > maxInputs || int(n) > len(b)/2 { // each entry takes two bytes at least
		return b, msgp.ErrLimitExceeded
	}
	out := make(Inputs, n)
	for range n {
		var k string
		if k, b, err = msgp.ReadStringBytes(b); err != nil {
			return b, err
		}
		var v []byte
		if msgp.IsNil(b) {
			b = b[1:]
		} else if v, b, err = msgp.ReadBytesBytes(b, nil); err != nil {
			return b, err
		}
		out[k] = v
	}
	*m = out
	return b, nil
}

// Msgsize implements msgp.Sizer.
func (m Inputs) Msgsize() int {
	s := msgp.MapHeaderSize
	for k, v := range m {
		s += msgp.StringPrefixSize + len(k) + msgp.BytesPrefixSize + len(v)
	}
	return s
}

// IsZero reports whether m holds nothing (the encoder then omits it).
func (m Inputs) IsZero() bool { return len(m) == 0 }
