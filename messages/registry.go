package messages

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

// ErrKindConflict reports two different Go types registered under one kind.
var ErrKindConflict = errors.New("messages: kind registered with another type")

// Registry maps kinds to the Go types that decode them. It is safe for
// concurrent use. The zero value is not usable; call [NewRegistry].
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]entry
}

type entry struct {
	typ    reflect.Type
	decode func([]byte) (Message, error)
}

// NewRegistry returns a registry that knows the kinds of this package
// (tasks and control messages).
func NewRegistry() *Registry {
	r := &Registry{kinds: make(map[string]entry)}
	registerBuiltins(r)
	return r
}

// Register records T's kind in r so [Registry.Decode] can rebuild it. It
// returns the kind. Registering the same type twice is a no-op; a different
// type under a registered kind fails with [ErrKindConflict].
func Register[T Message](r *Registry) (string, error) {
	kind := KindOf[T]()
	if kind == "" {
		return "", fmt.Errorf("%w: type %v", ErrEmptyKind, reflect.TypeFor[T]())
	}
	typ := reflect.TypeFor[T]()
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.kinds[kind]; ok {
		if old.typ != typ {
			return "", fmt.Errorf("%w: %q is %v, not %v", ErrKindConflict, kind, old.typ, typ)
		}
		return kind, nil
	}
	r.kinds[kind] = entry{typ: typ, decode: func(b []byte) (Message, error) { return DecodeAs[T](b) }}
	return kind, nil
}

// MustRegister is [Register] that panics on error, for package-level setup
// of a fixed set of types.
func MustRegister[T Message](r *Registry) string {
	k, err := Register[T](r)
	if err != nil {
		panic(err)
	}
	return k
}

// Decode rebuilds the message of the given kind from its body. An
// unregistered kind fails with [ErrUnknownKind], a bad body with
// [ErrMalformed].
func (r *Registry) Decode(kind string, body []byte) (Message, error) {
	r.mu.RLock()
	e, ok := r.kinds[kind]
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	return e.decode(body)
}

// Known reports whether kind is registered.
func (r *Registry) Known(kind string) bool {
	r.mu.RLock()
	_, ok := r.kinds[kind]
	r.mu.RUnlock()
	return ok
}

// Kinds lists the registered kinds, sorted.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	out := make([]string, 0, len(r.kinds))
	for k := range r.kinds {
		out = append(out, k)
	}
	r.mu.RUnlock()
	sort.Strings(out)
	return out
}

// KindOf returns T's kind without needing a value: it calls Kind on the
// zero value, or on a fresh value when T is a pointer type.
func KindOf[T Message]() string {
	var zero T
	if t := reflect.TypeFor[T](); t.Kind() == reflect.Pointer {
		return reflect.New(t.Elem()).Interface().(Message).Kind()
	}
	return zero.Kind()
}

// DecodeAs decodes body into a new T. For a pointer type T a fresh value is
// allocated. A bad body fails with [ErrMalformed].
func DecodeAs[T Message](body []byte) (T, error) {
	var v T
	if t := reflect.TypeFor[T](); t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		if err := Unmarshal(body, p.Interface()); err != nil {
			return v, err
		}
		return p.Interface().(T), nil
	}
	if err := Unmarshal(body, &v); err != nil {
		return v, err
	}
	return v, nil
}
