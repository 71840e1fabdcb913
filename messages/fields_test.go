package messages

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/vmihailenco/msgpack/v5"
)

// roundTrip fills every exported field of a T, encodes it with our codec
// and decodes it again, with our codec and with reflection (what a peer
// without generated code does): any field a codec leaves out (one added to
// the type without `go generate ./messages`, or tagged away) fails here.
func roundTrip[T Message](t *testing.T) {
	t.Helper()
	var in T
	testutil.Fill(&in)
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := Unmarshal(b, &out); err != nil {
		t.Fatalf("%T: %v", in, err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("%T does not survive its codec:\n in %+v\nout %+v", in, in, out)
	}
	var viaReflection T
	if err := msgpack.Unmarshal(b, &viaReflection); err != nil || !reflect.DeepEqual(in, viaReflection) {
		t.Errorf("%T: reflection reads %+v, %v", in, viaReflection, err)
	}
	fromReflection, err := msgpack.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var back T
	if err := Unmarshal(fromReflection, &back); err != nil || !reflect.DeepEqual(in, back) {
		t.Errorf("%T: our codec reads reflection's encoding as %+v, %v", in, back, err)
	}
}

func TestEveryFieldTravels(t *testing.T) {
	t.Parallel()
	roundTrip[Task](t)
	roundTrip[TaskAssignment](t)
	roundTrip[TaskResult](t)
	roundTrip[WorkerInfo](t)
	roundTrip[TaskAck](t)
	roundTrip[TaskCancel](t)
	roundTrip[Heartbeat](t)
	roundTrip[Welcome](t)
	roundTrip[Shutdown](t)
	roundTrip[TaskProgress](t)
	roundTrip[SubmitRequest](t)
	roundTrip[SubmitReply](t)
	roundTrip[WaitRequest](t)
	roundTrip[WaitReply](t)
	roundTrip[StatusRequest](t)
	roundTrip[StatusReply](t)
	roundTrip[CancelRequest](t)
	roundTrip[CancelReply](t)
}

// Payloads as large as a frame travel (the generated decoders are not
// limited below what the structural check bounds).
func TestLargePayloadsTravel(t *testing.T) {
	t.Parallel()
	in := TaskResult{TaskID: "t", Attempt: 1, Worker: "w", Output: make([]byte, 3<<20),
		Children: make([]Task, MaxChildren)}
	for i := range in.Children {
		in.Children[i] = Task{ID: "c", Type: "x"}
	}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out TaskResult
	if err := Unmarshal(b, &out); err != nil || len(out.Output) != 3<<20 || len(out.Children) != MaxChildren {
		t.Fatalf("large result: %d bytes, %d children, %v", len(out.Output), len(out.Children), err)
	}
}

// A small message cannot make its decoder allocate much: lists past their
// bounds are refused before they are made.
func TestListBoundsHold(t *testing.T) {
	t.Parallel()
	children := []byte{0x81, 0xa8, 'c', 'h', 'i', 'l', 'd', 'r', 'e', 'n', 0xdc, 0x20, 0x00} // an array of 8,192
	for range 8192 {
		children = append(children, 0x80) // each an empty task
	}
	var r TaskResult
	if err := Unmarshal(children, &r); !errors.Is(err, ErrMalformed) {
		t.Fatalf("8,192 children: %v", err)
	}
	running := []byte{0x81, 0xa7, 'r', 'u', 'n', 'n', 'i', 'n', 'g', 0xdc, 0x20, 0x00}
	for range 8192 {
		running = append(running, 0x80)
	}
	var hb Heartbeat
	if err := Unmarshal(running, &hb); !errors.Is(err, ErrMalformed) {
		t.Fatalf("8,192 attempts in a heartbeat: %v", err)
	}
	task := Task{ID: "t", Type: "x", Description: "d", Dependencies: make([]string, MaxDependencies+1)}
	for i := range task.Dependencies {
		task.Dependencies[i] = fmt.Sprint("d", i)
	}
	if err := task.Validate(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a task with too many dependencies: %v", err)
	}
}
