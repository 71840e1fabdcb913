package task

import (
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// EncodeMsgpack writes a task record without reflection (it is written on
// every state change of every task). The layout is the one the struct tags
// give, so the reflection decoder used at recovery reads it.
func (r *taskRecord) EncodeMsgpack(enc *msgpack.Encoder) error {
	n := 7
	if len(r.Inputs) > 0 {
		n++
	}
	if len(r.Attempts) > 0 {
		n++
	}
	if r.Result != nil {
		n++
	}
	if !r.FinishedAt.IsZero() {
		n++
	}
	e := encoder{enc: enc}
	e.mapLen(n)
	e.str("seq").uint(r.Seq)
	e.str("task").raw(r.Task.AppendMsgpack(nil))
	if len(r.Inputs) > 0 {
		e.str("inputs").mapLen(len(r.Inputs))
		for k, v := range r.Inputs {
			e.str(k).bytes(v)
		}
	}
	e.str("submitted").time(r.SubmittedAt)
	e.str("status").int(int64(r.Status))
	e.str("attempt").int(int64(r.Attempt))
	e.str("retries").int(int64(r.Retries))
	e.str("lost").int(int64(r.Lost))
	if len(r.Attempts) > 0 {
		e.str("attempts").arrayLen(len(r.Attempts))
		for _, a := range r.Attempts {
			e.mapLen(5)
			e.str("Attempt").int(int64(a.Attempt))
			e.str("Worker").str(a.Worker)
			e.str("AssignedAt").time(a.AssignedAt)
			e.str("EndedAt").time(a.EndedAt)
			e.str("Outcome").str(a.Outcome)
		}
	}
	if r.Result != nil {
		e.str("result").raw(r.Result.AppendMsgpack(nil))
	}
	if !r.FinishedAt.IsZero() {
		e.str("finished").time(r.FinishedAt)
	}
	return e.err
}

// encoder chains msgpack.Encoder calls, keeping the first error.
type encoder struct {
	enc *msgpack.Encoder
	err error
}

func (e *encoder) do(err error) *encoder {
	if e.err == nil {
		e.err = err
	}
	return e
}

func (e *encoder) mapLen(n int) *encoder     { return e.do(e.enc.EncodeMapLen(n)) }
func (e *encoder) arrayLen(n int) *encoder   { return e.do(e.enc.EncodeArrayLen(n)) }
func (e *encoder) str(s string) *encoder     { return e.do(e.enc.EncodeString(s)) }
func (e *encoder) uint(v uint64) *encoder    { return e.do(e.enc.EncodeUint(v)) }
func (e *encoder) int(v int64) *encoder      { return e.do(e.enc.EncodeInt(v)) }
func (e *encoder) bytes(b []byte) *encoder   { return e.do(e.enc.EncodeBytes(b)) }
func (e *encoder) time(t time.Time) *encoder { return e.do(e.enc.EncodeTime(t)) }
func (e *encoder) raw(b []byte) *encoder {
	_, err := e.enc.Writer().Write(b)
	return e.do(err)
}
