package playground

import (
	"context"
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

// Worker describes a worker: a name, the processors (task types) it runs
// and the handler of each, plus what the manager routes by. One worker may
// serve several types: Processor and Handler name one, Processors more
// (or all); it is one agent, with one row in the report, whichever type
// its tasks are.
type Worker struct {
	Name      string
	Processor string
	Handler   Handler
	// Processors maps more task types to their handlers ([Handle] adds
	// typed ones).
	Processors map[string]Handler
	// Skill (1-10), Capabilities and Concurrency (default 1) as in
	// task.NewWorker.
	Skill        int
	Capabilities []string
	Concurrency  int
	// Options are the handler's defaults (timeout, retries, priority).
	Options task.HandlerOptions
}

func (w Worker) validate() error {
	switch {
	case w.Name == "":
		return fmt.Errorf("%w: a worker needs a name", ErrInvalidWorker)
	case (w.Processor == "") != (w.Handler == nil):
		return fmt.Errorf("%w: %q: a processor needs a handler, a handler a processor", ErrInvalidWorker, w.Name)
	case w.Processor == "" && len(w.Processors) == 0:
		return fmt.Errorf("%w: %q runs no processor", ErrInvalidWorker, w.Name)
	}
	for typ, h := range w.Processors {
		if typ == "" || h == nil {
			return fmt.Errorf("%w: %q: processor %q without a type or a handler", ErrInvalidWorker, w.Name, typ)
		}
		if typ == w.Processor {
			return fmt.Errorf("%w: %q: processor %q twice", ErrInvalidWorker, w.Name, typ)
		}
	}
	return nil
}

// Handle adds a typed processor to w (river's AddWorker[T], as
// task.Handle): tasks of type T.Kind() reach fn with their input decoded
// as T ([NewTask] makes them), and what fn returns is their output
// ([Output] decodes it).
func Handle[T messages.Message, Out any](w *Worker, fn func(ctx context.Context, req *TypedRequest[T]) (Out, error)) {
	if w.Processors == nil {
		w.Processors = map[string]Handler{}
	}
	w.Processors[messages.KindOf[T]()] = task.TypedHandler(fn)
}

// TypedRequest is a request whose input is decoded as T ([Handle]).
type TypedRequest[T messages.Message] = task.TypedJob[T]

// NewTask makes a task of type args.Kind() with args as its input, for a
// worker that handles T with [Handle]; deps are its dependencies.
func NewTask[T messages.Message](id string, args T, deps ...string) (Task, error) {
	t, err := task.NewTask(id, args)
	t.Dependencies = deps
	return t, err
}

// Output decodes a result's output as a [Handle] handler returned it.
func Output[Out any](r Result) (Out, error) { return task.Output[Out](r) }

// Agent builds the worker's agent. In a remote process, join the
// playground with it:
//
//	wa, err := w.Agent(agent.WithJoin(addr), agent.WithWorkspace(ws))
//	err = wa.Start(ctx)
//	<-wa.Done() // until the playground shuts it down
func (w Worker) Agent(opts ...agent.Option) (*task.Worker, error) {
	return w.build(opts, nil)
}

// build is Agent; more, if set, gives more options for the agent and the
// worker (an identity, and grants that name it).
func (w Worker) build(opts []agent.Option, more func() ([]agent.Option, []task.WorkerOption, error)) (*task.Worker, error) {
	if err := w.validate(); err != nil {
		return nil, err
	}
	var extra []task.WorkerOption
	if more != nil {
		aopts, wopts, err := more()
		if err != nil {
			return nil, err
		}
		opts, extra = append(opts, aopts...), wopts
	}
	a, err := agent.New(w.Name, append([]agent.Option{agent.WithRole("worker")}, opts...)...)
	if err != nil {
		return nil, err
	}
	wopts := append([]task.WorkerOption{task.WithSkill(w.Skill), task.WithCapabilities(w.Capabilities...)}, extra...)
	if w.Concurrency > 0 {
		wopts = append(wopts, task.WithMaxConcurrency(w.Concurrency))
	}
	wa, err := task.NewWorker(a, wopts...)
	if err != nil {
		return nil, err
	}
	if w.Processor != "" {
		wa.HandleWith(w.Processor, w.Handler, w.Options)
	}
	for typ, h := range w.Processors {
		wa.HandleWith(typ, h, w.Options)
	}
	return wa, nil
}
