package messages

import (
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written msgpack for the task messages, which cross the wire for
// every task: the same map encoding (same keys, same omitted zero fields)
// as the struct tags give through reflection, so either side may use
// either codec, at a fraction of reflection's cost. Decoders skip unknown
// keys, so later versions may add fields.

// Appender is a message that appends its own msgpack encoding.
type Appender interface {
	AppendMsgpack(b []byte) []byte
}

// Unmarshaler is a message that decodes its own msgpack encoding. It must
// not keep data after returning.
type Unmarshaler interface {
	UnmarshalMsgpack(data []byte) error
}

var (
	_ Appender    = (*Task)(nil)
	_ Unmarshaler = (*Task)(nil)
	_ Appender    = (*TaskAssignment)(nil)
	_ Unmarshaler = (*TaskAssignment)(nil)
	_ Appender    = (*TaskResult)(nil)
	_ Unmarshaler = (*TaskResult)(nil)

	_ msgpack.CustomEncoder = (*Task)(nil)
	_ msgpack.CustomDecoder = (*Task)(nil)
)

func count(conds ...bool) uint32 {
	var n uint32
	for _, c := range conds {
		if c {
			n++
		}
	}
	return n
}

// AppendMsgpack implements [Appender].
func (t Task) AppendMsgpack(b []byte) []byte {
	b = appendMapHeader(b, 2+count(t.Name != "", t.Description != "", t.Difficulty != 0, len(t.Input) > 0,
		len(t.Dependencies) > 0, t.Priority != 0, t.Timeout != 0, t.MaxRetries != 0, t.RetryInterval != 0,
		t.Backoff != "", len(t.Capabilities) > 0, t.Parent != ""))
	b = appendString(appendString(b, "id"), t.ID)
	if t.Name != "" {
		b = appendString(appendString(b, "name"), t.Name)
	}
	if t.Description != "" {
		b = appendString(appendString(b, "desc"), t.Description)
	}
	if t.Difficulty != 0 {
		b = appendInt(appendString(b, "difficulty"), int64(t.Difficulty))
	}
	b = appendString(appendString(b, "type"), t.Type)
	if len(t.Input) > 0 {
		b = appendBin(appendString(b, "input"), t.Input)
	}
	if len(t.Dependencies) > 0 {
		b = appendStrings(appendString(b, "deps"), t.Dependencies)
	}
	if t.Priority != 0 {
		b = appendInt(appendString(b, "prio"), int64(t.Priority))
	}
	if t.Timeout != 0 {
		b = appendInt(appendString(b, "timeout"), int64(t.Timeout))
	}
	if t.MaxRetries != 0 {
		b = appendInt(appendString(b, "retries"), int64(t.MaxRetries))
	}
	if t.RetryInterval != 0 {
		b = appendInt(appendString(b, "retry_interval"), int64(t.RetryInterval))
	}
	if t.Backoff != "" {
		b = appendString(appendString(b, "backoff"), string(t.Backoff))
	}
	if len(t.Capabilities) > 0 {
		b = appendStrings(appendString(b, "caps"), t.Capabilities)
	}
	if t.Parent != "" {
		b = appendString(appendString(b, "parent"), t.Parent)
	}
	return b
}

// UnmarshalMsgpack implements [Unmarshaler].
func (t *Task) UnmarshalMsgpack(data []byte) error {
	r := reader{b: data}
	*t = Task{}
	t.read(&r)
	return r.err
}

func (t *Task) read(r *reader) {
	n := r.mapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.strBytes()) {
		case "id":
			t.ID = r.str()
		case "name":
			t.Name = r.str()
		case "desc":
			t.Description = r.str()
		case "difficulty":
			t.Difficulty = r.int()
		case "type":
			t.Type = r.str()
		case "input":
			t.Input = r.binOrStr()
		case "deps":
			t.Dependencies = r.strings()
		case "prio":
			t.Priority = r.int()
		case "timeout":
			t.Timeout = time.Duration(r.int64())
		case "retries":
			t.MaxRetries = r.int()
		case "retry_interval":
			t.RetryInterval = time.Duration(r.int64())
		case "backoff":
			t.Backoff = Backoff(r.str())
		case "caps":
			t.Capabilities = r.strings()
		case "parent":
			t.Parent = r.str()
		default:
			r.skip(0)
		}
	}
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (t Task) EncodeMsgpack(enc *msgpack.Encoder) error { return writeRaw(enc, t.AppendMsgpack) }

// DecodeMsgpack implements msgpack.CustomDecoder.
func (t *Task) DecodeMsgpack(dec *msgpack.Decoder) error { return readRaw(dec, t.UnmarshalMsgpack) }

// AppendMsgpack implements [Appender].
func (a TaskAssignment) AppendMsgpack(b []byte) []byte {
	b = appendMapHeader(b, 3+count(a.Timeout != 0, len(a.Inputs) > 0))
	b = a.Task.AppendMsgpack(appendString(b, "task"))
	b = appendInt(appendString(b, "attempt"), int64(a.Attempt))
	b = appendTime(appendString(b, "at"), a.AssignedAt)
	if a.Timeout != 0 {
		b = appendInt(appendString(b, "timeout"), int64(a.Timeout))
	}
	if len(a.Inputs) > 0 {
		b = appendMapHeader(appendString(b, "inputs"), uint32(len(a.Inputs)))
		for k, v := range a.Inputs {
			b = appendBin(appendString(b, k), v)
		}
	}
	return b
}

// UnmarshalMsgpack implements [Unmarshaler].
func (a *TaskAssignment) UnmarshalMsgpack(data []byte) error {
	r := reader{b: data}
	*a = TaskAssignment{}
	n := r.mapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.strBytes()) {
		case "task":
			a.Task.read(&r)
		case "attempt":
			a.Attempt = r.int()
		case "at":
			a.AssignedAt = r.time()
		case "timeout":
			a.Timeout = time.Duration(r.int64())
		case "inputs":
			m := r.mapHeader()
			if m > len(r.b) {
				r.fail("map of %d entries in %d bytes", m, len(r.b))
				break
			}
			if m > 0 {
				a.Inputs = make(map[string][]byte, m)
			}
			for j := 0; j < m && r.err == nil; j++ {
				k := r.str()
				a.Inputs[k] = r.binOrStr()
			}
		default:
			r.skip(0)
		}
	}
	return r.err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (a TaskAssignment) EncodeMsgpack(enc *msgpack.Encoder) error {
	return writeRaw(enc, a.AppendMsgpack)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (a *TaskAssignment) DecodeMsgpack(dec *msgpack.Decoder) error {
	return readRaw(dec, a.UnmarshalMsgpack)
}

// AppendMsgpack implements [Appender].
func (t TaskResult) AppendMsgpack(b []byte) []byte {
	b = appendMapHeader(b, 5+count(t.ErrorMessage != "", len(t.Output) > 0, len(t.Children) > 0, t.Final))
	b = appendString(appendString(b, "task"), t.TaskID)
	b = appendInt(appendString(b, "attempt"), int64(t.Attempt))
	b = appendString(appendString(b, "worker"), t.Worker)
	b = appendBool(appendString(b, "ok"), t.Success)
	b = appendInt(appendString(b, "exec"), int64(t.ExecutionTime))
	if t.ErrorMessage != "" {
		b = appendString(appendString(b, "error"), t.ErrorMessage)
	}
	if len(t.Output) > 0 {
		b = appendBin(appendString(b, "output"), t.Output)
	}
	if len(t.Children) > 0 {
		b = appendArrayHeader(appendString(b, "children"), uint32(len(t.Children)))
		for i := range t.Children {
			b = t.Children[i].AppendMsgpack(b)
		}
	}
	if t.Final {
		b = appendBool(appendString(b, "final"), true)
	}
	return b
}

// UnmarshalMsgpack implements [Unmarshaler].
func (t *TaskResult) UnmarshalMsgpack(data []byte) error {
	r := reader{b: data}
	*t = TaskResult{}
	n := r.mapHeader()
	for i := 0; i < n && r.err == nil; i++ {
		switch string(r.strBytes()) {
		case "task":
			t.TaskID = r.str()
		case "attempt":
			t.Attempt = r.int()
		case "worker":
			t.Worker = r.str()
		case "ok":
			t.Success = r.bool()
		case "exec":
			t.ExecutionTime = time.Duration(r.int64())
		case "error":
			t.ErrorMessage = r.str()
		case "output":
			t.Output = r.binOrStr()
		case "children":
			m := r.arrayOrNil()
			if m > len(r.b) {
				r.fail("array of %d tasks in %d bytes", m, len(r.b))
				break
			}
			for j := 0; j < m && r.err == nil; j++ {
				var c Task
				c.read(&r)
				t.Children = append(t.Children, c)
			}
		case "final":
			t.Final = r.bool()
		default:
			r.skip(0)
		}
	}
	return r.err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (t TaskResult) EncodeMsgpack(enc *msgpack.Encoder) error { return writeRaw(enc, t.AppendMsgpack) }

// DecodeMsgpack implements msgpack.CustomDecoder.
func (t *TaskResult) DecodeMsgpack(dec *msgpack.Decoder) error {
	return readRaw(dec, t.UnmarshalMsgpack)
}

func writeRaw(enc *msgpack.Encoder, appendTo func([]byte) []byte) error {
	_, err := enc.Writer().Write(appendTo(nil))
	return err
}

func readRaw(dec *msgpack.Decoder, unmarshal func([]byte) error) error {
	raw, err := dec.DecodeRaw()
	if err != nil {
		return err
	}
	return unmarshal(raw)
}
