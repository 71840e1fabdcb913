package messages

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Hand-written msgpack for the envelope: it is on every message's path, and
// reflection there costs half the receive CPU. Encoders append to a caller's
// buffer; the reader never panics on any input (fuzzed).

func appendArrayHeader(b []byte, n uint32) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	default:
		return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 128:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	default:
		b = append(b, 0xcf)
		return binary.BigEndian.AppendUint64(b, v)
	}
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendUint(b, uint64(v))
	}
	if v >= -32 {
		return append(b, byte(v))
	}
	b = append(b, 0xd3)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = append(b, 0xc5, byte(n>>8), byte(n))
	default:
		b = append(b, 0xc6, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, p...)
}

// reader decodes msgpack values from a byte slice. The first error sticks:
// later calls return zero values, so callers check err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.fail("truncated: need %d bytes, have %d", n, len(r.b))
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) byte() byte {
	p := r.next(1)
	if p == nil {
		return 0
	}
	return p[0]
}

func (r *reader) be(n int) uint64 {
	p := r.next(n)
	var v uint64
	for _, c := range p {
		v = v<<8 | uint64(c)
	}
	return v
}

func (r *reader) arrayHeader() int {
	c := r.byte()
	switch {
	case r.err != nil:
		return 0
	case c&0xf0 == 0x90:
		return int(c & 0x0f)
	case c == 0xdc:
		return int(r.be(2))
	case c == 0xdd:
		return int(r.be(4))
	}
	r.fail("want array, got code 0x%02x", c)
	return 0
}

func (r *reader) int64() int64 {
	c := r.byte()
	switch {
	case r.err != nil:
		return 0
	case c <= 0x7f:
		return int64(c)
	case c >= 0xe0:
		return int64(int8(c))
	case c == 0xcc:
		return int64(r.be(1))
	case c == 0xcd:
		return int64(r.be(2))
	case c == 0xce:
		return int64(r.be(4))
	case c == 0xcf:
		v := r.be(8)
		if v > math.MaxInt64 {
			r.fail("integer %d overflows int64", v)
			return 0
		}
		return int64(v)
	case c == 0xd0:
		return int64(int8(r.be(1)))
	case c == 0xd1:
		return int64(int16(r.be(2)))
	case c == 0xd2:
		return int64(int32(r.be(4)))
	case c == 0xd3:
		return int64(r.be(8))
	}
	r.fail("want integer, got code 0x%02x", c)
	return 0
}

func (r *reader) uint64() uint64 {
	c := r.byte()
	switch {
	case r.err != nil:
		return 0
	case c <= 0x7f:
		return uint64(c)
	case c == 0xcc:
		return r.be(1)
	case c == 0xcd:
		return r.be(2)
	case c == 0xce:
		return r.be(4)
	case c == 0xcf:
		return r.be(8)
	}
	r.fail("want unsigned integer, got code 0x%02x", c)
	return 0
}

// strBytes returns a string's bytes (aliasing the input); nil is accepted
// as the empty string.
func (r *reader) strBytes() []byte {
	c := r.byte()
	var n int
	switch {
	case r.err != nil:
		return nil
	case c == 0xc0:
		return nil
	case c&0xe0 == 0xa0:
		n = int(c & 0x1f)
	case c == 0xd9:
		n = int(r.be(1))
	case c == 0xda:
		n = int(r.be(2))
	case c == 0xdb:
		n = int(r.be(4))
	default:
		r.fail("want string, got code 0x%02x", c)
		return nil
	}
	p := r.next(n)
	if r.err == nil && !utf8.Valid(p) {
		r.fail("string is not valid UTF-8")
		return nil
	}
	return p
}

// bin returns a bin (or str) value's bytes, aliasing the input.
func (r *reader) bin() []byte {
	c := r.byte()
	var n int
	switch {
	case r.err != nil:
		return nil
	case c == 0xc0:
		return nil
	case c == 0xc4:
		n = int(r.be(1))
	case c == 0xc5:
		n = int(r.be(2))
	case c == 0xc6:
		n = int(r.be(4))
	default:
		r.fail("want bin, got code 0x%02x", c)
		return nil
	}
	return r.next(n)
}

// maxDepth bounds nesting when skipping unknown values.
const maxDepth = 32

// skip discards one value of any type (an unknown field).
func (r *reader) skip(depth int) {
	if depth > maxDepth {
		r.fail("nesting deeper than %d", maxDepth)
		return
	}
	c := r.byte()
	if r.err != nil {
		return
	}
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
	case c&0xf0 == 0x80:
		r.skipN(2*int(c&0x0f), depth)
	case c&0xf0 == 0x90:
		r.skipN(int(c&0x0f), depth)
	case c&0xe0 == 0xa0:
		r.next(int(c & 0x1f))
	case c == 0xc4, c == 0xd9:
		r.next(int(r.be(1)))
	case c == 0xc5, c == 0xda:
		r.next(int(r.be(2)))
	case c == 0xc6, c == 0xdb:
		r.next(int(r.be(4)))
	case c == 0xc7:
		r.next(int(r.be(1)) + 1)
	case c == 0xc8:
		r.next(int(r.be(2)) + 1)
	case c == 0xc9:
		r.next(int(r.be(4)) + 1)
	case c == 0xca, c == 0xce, c == 0xd2:
		r.next(4)
	case c == 0xcb, c == 0xcf, c == 0xd3:
		r.next(8)
	case c == 0xcc, c == 0xd0:
		r.next(1)
	case c == 0xcd, c == 0xd1:
		r.next(2)
	case c == 0xd4:
		r.next(2)
	case c == 0xd5:
		r.next(3)
	case c == 0xd6:
		r.next(5)
	case c == 0xd7:
		r.next(9)
	case c == 0xd8:
		r.next(17)
	case c == 0xdc:
		r.skipN(int(r.be(2)), depth)
	case c == 0xdd:
		r.skipN(int(r.be(4)), depth)
	case c == 0xde:
		r.skipN(2*int(r.be(2)), depth)
	case c == 0xdf:
		r.skipN(2*int(r.be(4)), depth)
	default:
		r.fail("reserved code 0x%02x", c)
	}
}

func (r *reader) skipN(n, depth int) {
	if n > len(r.b) {
		r.fail("container of %d values in %d bytes", n, len(r.b))
		return
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.skip(depth + 1)
	}
}

// CheckWellFormed reports whether data starts with one complete msgpack
// value whose containers claim no more elements than there are bytes left,
// nested at most 32 deep. It fails with [ErrMalformed].
func CheckWellFormed(data []byte) error {
	r := reader{b: data}
	r.skip(0)
	return r.err
}
