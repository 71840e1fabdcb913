package messages

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Mirrors of the task types without the generated codec: what a
// reflection-based peer (or an older version) reads and writes.
type taskMirror struct {
	ID            string        `msgpack:"id"`
	Name          string        `msgpack:"name,omitempty"`
	Description   string        `msgpack:"desc,omitempty"`
	Difficulty    int           `msgpack:"difficulty,omitempty"`
	Type          string        `msgpack:"type"`
	Input         []byte        `msgpack:"input,omitempty"`
	Dependencies  []string      `msgpack:"deps,omitempty"`
	Priority      int           `msgpack:"prio,omitempty"`
	Timeout       time.Duration `msgpack:"timeout,omitempty"`
	MaxRetries    int           `msgpack:"retries,omitempty"`
	RetryInterval time.Duration `msgpack:"retry_interval,omitempty"`
	Backoff       Backoff       `msgpack:"backoff,omitempty"`
	Capabilities  []string      `msgpack:"caps,omitempty"`
	Parent        string        `msgpack:"parent,omitempty"`
	Extra         string        `msgpack:"extra_from_the_future,omitempty"`
}

type assignmentMirror struct {
	Task       taskMirror        `msgpack:"task"`
	Attempt    int               `msgpack:"attempt"`
	AssignedAt time.Time         `msgpack:"at"`
	Timeout    time.Duration     `msgpack:"timeout,omitempty"`
	Inputs     map[string][]byte `msgpack:"inputs,omitempty"`
}

type resultMirror struct {
	TaskID        string        `msgpack:"task"`
	Attempt       int           `msgpack:"attempt"`
	Worker        string        `msgpack:"worker"`
	Success       bool          `msgpack:"ok"`
	ExecutionTime time.Duration `msgpack:"exec"`
	ErrorMessage  string        `msgpack:"error,omitempty"`
	Output        []byte        `msgpack:"output,omitempty"`
	Children      []taskMirror  `msgpack:"children,omitempty"`
	Final         bool          `msgpack:"final,omitempty"`
}

// enc encodes m with its generated codec.
func enc(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fullTask() Task {
	return Task{
		ID: "t1", Name: "n", Description: "d", Difficulty: 7, Type: "proc", Input: []byte{1, 2, 3},
		Dependencies: []string{"a", "b"}, Priority: -3, Timeout: 5 * time.Second, MaxRetries: NoRetry,
		RetryInterval: time.Millisecond, Backoff: BackoffExponential, Capabilities: []string{"gpu"}, Parent: "p",
	}
}

func TestTaskCodecMatchesReflection(t *testing.T) {
	t.Parallel()
	task := fullTask()
	as := TaskAssignment{Task: task, Attempt: 3, AssignedAt: time.Unix(1700000000, 123456789), Timeout: time.Second,
		Inputs: map[string][]byte{"a": []byte("out-a"), "b": nil}}
	res := TaskResult{TaskID: "t1", Attempt: 2, Worker: "w", Success: true, ExecutionTime: 42, ErrorMessage: "e",
		Output: []byte("o"), Children: []Task{task, {ID: "c", Type: "x"}}, Final: true}

	// Ours -> reflection.
	var am assignmentMirror
	if err := msgpack.Unmarshal(enc(t, as), &am); err != nil {
		t.Fatal(err)
	}
	if am.Task.ID != "t1" || am.Task.Timeout != 5*time.Second || !am.AssignedAt.Equal(as.AssignedAt) ||
		string(am.Inputs["a"]) != "out-a" || am.Task.Capabilities[0] != "gpu" {
		t.Fatalf("reflection read %+v", am)
	}
	// Reflection (with a field we do not know) -> ours.
	var m taskMirror
	if err := msgpack.Unmarshal(enc(t, task), &m); err != nil {
		t.Fatal(err)
	}
	m.Extra = "ignored"
	b, err := msgpack.Marshal(&assignmentMirror{Task: m, Attempt: 3, AssignedAt: as.AssignedAt, Timeout: time.Second, Inputs: as.Inputs})
	if err != nil {
		t.Fatal(err)
	}
	var got TaskAssignment
	if err := Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	as.Inputs["b"] = nil
	if !reflect.DeepEqual(got.Task, as.Task) || got.Attempt != 3 || !got.AssignedAt.Equal(as.AssignedAt) || string(got.Inputs["a"]) != "out-a" {
		t.Fatalf("ours read %+v", got)
	}
	// Results both ways.
	var rm resultMirror
	if err := msgpack.Unmarshal(enc(t, res), &rm); err != nil || rm.Children[1].ID != "c" || !rm.Final {
		t.Fatalf("reflection read result %+v, %v", rm, err)
	}
	b, _ = msgpack.Marshal(&rm)
	var gr TaskResult
	if err := Unmarshal(b, &gr); err != nil || !reflect.DeepEqual(gr, res) {
		t.Fatalf("ours read result %+v, %v", gr, err)
	}
	// The zero task encodes as reflection does (id and type always present).
	var zm taskMirror
	if err := msgpack.Unmarshal(enc(t, Task{}), &zm); err != nil || !reflect.DeepEqual(zm, taskMirror{}) {
		t.Fatalf("zero task: %+v %v", zm, err)
	}
}

func TestTaskCodecRejectsGarbage(t *testing.T) {
	t.Parallel()
	for _, in := range [][]byte{
		{0x81, 0xa2, 'i', 'd', 0x01},                                   // id is not a string
		{0x81, 0xa4, 'd', 'e', 'p', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}, // huge array
		{0x8f},                  // truncated map
		{0x81, 0xa1, 'x', 0xc1}, // reserved code in an unknown field
	} {
		var task Task
		if err := Unmarshal(in, &task); !errors.Is(err, ErrMalformed) {
			t.Errorf("%x: %v", in, err)
		}
	}
	deep := make([]byte, 0, 200)
	deep = append(deep, 0x81, 0xa1, 'x')
	for range 100 {
		deep = append(deep, 0x91)
	}
	var task Task
	if err := Unmarshal(deep, &task); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: %v", err)
	}
}

// canonical decodes data into a fresh value of v's type and encodes it
// again: the canonical form of what data means. ok is false when data is
// not such a message.
func canonical[T Message](t *testing.T, data []byte) (out []byte, ok bool) {
	var v T
	if err := Unmarshal(data, &v); err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T error class: %v", v, err)
		}
		return nil, false
	}
	return enc(t, v), true
}

// FuzzDecodeTaskMessages: the generated decoders of every wire type never
// panic, fail only with ErrMalformed, and what they accept has a stable
// meaning: decoding its encoding and encoding again gives the same bytes.
// (An empty list, map or payload and a missing one are the same message:
// both are left out on the wire, and decode as nil.)
func FuzzDecodeTaskMessages(f *testing.F) {
	task := fullTask()
	f.Add(enc(f, task))
	f.Add(enc(f, TaskAssignment{Task: task, Attempt: 1, AssignedAt: time.Unix(1, 2), Inputs: map[string][]byte{"a": {1}}}))
	f.Add(enc(f, TaskResult{TaskID: "t", Attempt: 1, Worker: "w", Children: []Task{task}}))
	f.Add(enc(f, SubmitRequest{Tasks: []Task{task}}))
	f.Add(enc(f, SubmitReply{Outcomes: []Outcome{{ID: "t", Code: CodeDuplicate, Message: "m"}}}))
	f.Add(enc(f, SubmitRequest{Tasks: []Task{task}, Traces: []string{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}))
	f.Add(enc(f, AdminRequest{Op: AdminTasks, Body: []byte(`{"status":"failed"}`)}))
	f.Add(enc(f, GrantPresent{Grants: [][]byte{{1, 2, 3}}}))
	f.Add(enc(f, GraphSubmit{Tasks: []Task{task}}))
	f.Add(enc(f, StatusReply{Status: "running", Result: &TaskResult{TaskID: "t"}}))
	f.Add([]byte("\x81\xa5input\xa0"))
	f.Add([]byte("\x81\xa5input\xc4\x00"))
	f.Add([]byte("\x81\xa6inputs\x80"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, c := range []func(*testing.T, []byte) ([]byte, bool){
			canonical[Task], canonical[TaskAssignment], canonical[TaskResult], canonical[WorkerInfo],
			canonical[Heartbeat], canonical[TaskAck], canonical[TaskCancel], canonical[Shutdown], canonical[Welcome],
			canonical[TaskProgress],
			canonical[SubmitRequest], canonical[SubmitReply], canonical[WaitRequest], canonical[WaitReply],
			canonical[StatusRequest], canonical[StatusReply], canonical[CancelRequest], canonical[CancelReply],
			canonical[AdminRequest], canonical[AdminReply], canonical[GrantPresent], canonical[GrantReply],
			canonical[Registered], canonical[Refused], canonical[GraphSubmit], canonical[GraphSubmitted],
			canonical[GraphWait], canonical[GraphResult],
		} {
			once, ok := c(t, data)
			if !ok {
				continue
			}
			twice, ok := c(t, once)
			if !ok || !bytes.Equal(once, twice) {
				t.Fatalf("re-encoding changes the message: %x -> %x (%v)", once, twice, ok)
			}
		}
	})
}
