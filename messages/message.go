package messages

import (
	"fmt"
	"sync"

	"github.com/tinylib/msgp/msgp"
	"github.com/vmihailenco/msgpack/v5"
)

// Message is a value that can travel in a workspace.
//
// Kind names the message on the wire. It must be a constant of the type, not
// derived from the Go type name, so that renaming or moving the Go type keeps
// old and new agents talking. Kind must work on the zero value (and on a nil
// pointer when the method has a pointer receiver).
type Message interface {
	Kind() string
}

// Marshal encodes a message body with msgpack: with the type's generated
// codec ([msgp.Marshaler], as the built-in messages have; run msgp on your
// own hot types too), or by reflection over its msgpack tags.
func Marshal(m Message) ([]byte, error) {
	if a, ok := m.(msgp.Marshaler); ok {
		b, err := a.MarshalMsg(nil)
		if err != nil {
			return nil, fmt.Errorf("messages: encode %q: %w", m.Kind(), err)
		}
		return b, nil
	}
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("messages: encode %q: %w", m.Kind(), err)
	}
	return b, nil
}

// MarshalValue encodes any value with msgpack (task inputs and outputs).
func MarshalValue(v any) ([]byte, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("messages: encode %T: %w", v, err)
	}
	return b, nil
}

// AppendMarshal appends m's msgpack encoding to dst, reusing a pooled
// encoder: unlike [Marshal] it allocates nothing in steady state.
func AppendMarshal(dst []byte, m Message) ([]byte, error) {
	if a, ok := m.(msgp.Marshaler); ok {
		out, err := a.MarshalMsg(dst)
		if err != nil {
			return dst, fmt.Errorf("messages: encode %q: %w", m.Kind(), err)
		}
		return out, nil
	}
	e := encoderPool.Get().(*pooledEncoder)
	e.w.b = dst
	err := e.enc.Encode(m)
	out := e.w.b
	e.w.b = nil
	encoderPool.Put(e)
	if err != nil {
		return dst, fmt.Errorf("messages: encode %q: %w", m.Kind(), err)
	}
	return out, nil
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *appendWriter) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *appendWriter) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

type pooledEncoder struct {
	w   appendWriter
	enc *msgpack.Encoder
}

var encoderPool = sync.Pool{New: func() any {
	e := &pooledEncoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	return e
}}

// Unmarshal decodes a msgpack body into v (a pointer), with its generated
// codec ([msgp.Unmarshaler]) or by reflection. A decode failure wraps
// [ErrMalformed].
func Unmarshal(body []byte, v any) (err error) {
	// Decoders preallocate slices from the lengths the input claims: a
	// 10-byte body claiming 2^32 elements would take the process down. A
	// bounded structural pass first rejects containers that claim more
	// elements than there are bytes left (and nesting past 32 levels), so
	// allocation stays proportional to the input.
	if err := CheckWellFormed(body); err != nil {
		return err
	}
	if u, ok := v.(msgp.Unmarshaler); ok {
		if _, err := u.UnmarshalMsg(body); err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil
	}
	defer func() {
		// A body decoded into a user type with a custom decoder must never
		// take the agent down.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic while decoding: %v", ErrMalformed, r)
		}
	}()
	if err := msgpack.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}
