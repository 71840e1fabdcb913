package messages

import (
	"fmt"

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

// Marshal encodes a message body with msgpack. Types on hot paths may
// implement msgpack.CustomEncoder to skip reflection.
func Marshal(m Message) ([]byte, error) {
	b, err := msgpack.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("messages: encode %q: %w", m.Kind(), err)
	}
	return b, nil
}

// Unmarshal decodes a msgpack body into v (a pointer). A decode failure
// wraps [ErrMalformed].
func Unmarshal(body []byte, v any) (err error) {
	defer func() {
		// msgpack is robust, but a body decoded into a user type with a
		// custom decoder must never take the agent down.
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic while decoding: %v", ErrMalformed, r)
		}
	}()
	if err := msgpack.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}
