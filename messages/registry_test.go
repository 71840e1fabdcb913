package messages

import (
	"errors"
	"reflect"
	"testing"
)

type ping struct{ N int }

func (ping) Kind() string { return "test.ping" }

type pingPtr struct{ S string }

func (*pingPtr) Kind() string { return "test.ping-ptr" }

type otherPing struct{}

func (otherPing) Kind() string { return "test.ping" }

func TestRegistryDecode(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	MustRegister[ping](r)
	MustRegister[*pingPtr](r)

	body, _ := Marshal(ping{N: 42})
	m, err := r.Decode("test.ping", body)
	if err != nil || !reflect.DeepEqual(m, ping{N: 42}) {
		t.Fatalf("decode value type: %#v, %v", m, err)
	}
	body, _ = Marshal(&pingPtr{S: "x"})
	m, err = r.Decode("test.ping-ptr", body)
	if p, ok := m.(*pingPtr); err != nil || !ok || p.S != "x" {
		t.Fatalf("decode pointer type: %#v, %v", m, err)
	}
	if _, err := r.Decode("nope", body); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := r.Decode("test.ping", []byte{0xc1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad body: %v", err)
	}
	if _, err := Register[otherPing](r); !errors.Is(err, ErrKindConflict) {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := Register[ping](r); err != nil {
		t.Fatalf("re-register same type: %v", err)
	}
	if !r.Known(TaskResult{}.Kind()) {
		t.Fatal("builtin kinds missing")
	}
}

// A body that claims far more elements than it has bytes is rejected
// before reflection can preallocate for it (a 10-byte message once asked
// for 183 GB).
func TestHugeClaimedLengthsAreRejected(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	// WorkerInfo{Types: <array of 2^32-1 elements>}
	body := []byte{0x81, 0xa5, 't', 'y', 'p', 'e', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}
	if _, err := r.Decode(WorkerInfo{}.Kind(), body); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v", err)
	}
	var v struct{ A [][]byte }
	if err := Unmarshal([]byte{0x81, 0xa1, 'A', 0xdd, 0x7f, 0xff, 0xff, 0xff, 0xc4, 0x00}, &v); !errors.Is(err, ErrMalformed) {
		t.Fatalf("got %v", err)
	}
}
