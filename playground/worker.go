package playground

import (
	"fmt"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// Task is a unit of work (see [messages.Task]). In a playground, Type names
// the processor (a [Worker]'s Processor), and ID and Description may be
// left empty: the playground fills them in.
type Task = messages.Task

// Result is a task's outcome.
type Result = messages.TaskResult

// Handler processes one request (a worker's processor): the task layer's
// handler. It must return soon after ctx ends.
type Handler = task.HandlerFunc

// Request is one attempt of a task as its handler sees it: the task
// layer's job. Its Inputs are the outputs of the task's dependencies (and
// of their child tasks), by task ID; Spawn adds child tasks (see the
// package documentation; a child without an ID gets "<parent>/<n>", n
// counting this attempt's children from 0, without a description its name
// or type).
type Request = task.Job

// Encode turns v into task input or output bytes (msgpack).
func Encode(v any) ([]byte, error) {
	return messages.MarshalValue(v)
}

// MustEncode is [Encode] for values that cannot fail to encode (plain data).
func MustEncode(v any) []byte {
	b, err := Encode(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Decode reads bytes written by [Encode] into v (a pointer).
func Decode(b []byte, v any) error { return messages.Unmarshal(b, v) }

// Worker describes a worker: a name, the processor (task type) it runs and
// the handler that runs it, plus what the manager routes by.
type Worker struct {
	Name      string
	Processor string
	Handler   Handler
	// Skill (1-10), Capabilities and Concurrency (default 1) as in
	// task.NewWorker.
	Skill        int
	Capabilities []string
	Concurrency  int
	// Options are the handler's defaults (timeout, retries, priority).
	Options task.HandlerOptions
}

func (w Worker) validate() error {
	if w.Name == "" || w.Processor == "" || w.Handler == nil {
		return fmt.Errorf("%w: %q needs a name, a processor and a handler", ErrInvalidWorker, w.Name)
	}
	return nil
}

// Agent builds the worker's agent. In a remote process, join the
// playground with it:
//
//	wa, err := w.Agent(agent.WithJoin(addr), agent.WithWorkspace(ws))
//	err = wa.Start(ctx)
//	<-wa.Done() // until the playground shuts it down
func (w Worker) Agent(opts ...agent.Option) (*task.Worker, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	a, err := agent.New(w.Name, append([]agent.Option{agent.WithRole("worker")}, opts...)...)
	if err != nil {
		return nil, err
	}
	wopts := []task.WorkerOption{task.WithSkill(w.Skill), task.WithCapabilities(w.Capabilities...)}
	if w.Concurrency > 0 {
		wopts = append(wopts, task.WithMaxConcurrency(w.Concurrency))
	}
	wa, err := task.NewWorker(a, wopts...)
	if err != nil {
		return nil, err
	}
	wa.HandleWith(w.Processor, w.Handler, w.Options)
	return wa, nil
}
