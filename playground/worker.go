package playground

import (
	"context"
	"fmt"
	"slices"

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

// Handler processes one request (a worker's processor). It
// must return soon after ctx ends.
type Handler func(ctx context.Context, req *Request) ([]byte, error)

// Request is one attempt of a task as its handler sees it.
type Request struct {
	Task Task
	// Inputs are the outputs of the task's dependencies (and of their
	// child tasks), by task ID.
	Inputs  map[string][]byte
	Attempt int
	Worker  string
	job     *task.Job
	spawned int
}

// Spawn adds child tasks; see the package documentation for what that
// means for the parent. A child without an ID gets "<parent>/<n>" (n
// counts this attempt's children from 0), without a description its name
// or type.
func (r *Request) Spawn(children ...Task) {
	for i := range children {
		c := &children[i]
		if c.ID == "" {
			c.ID = fmt.Sprintf("%s/%d", r.Task.ID, r.spawned)
		}
		r.spawned++
		if c.Description == "" {
			c.Description = c.Name
		}
		if c.Description == "" {
			c.Description = c.Type
		}
		c.Parent = r.Task.ID
	}
	r.job.Spawn(children...)
}

// DecodeInput decodes the task's Input (msgpack, as [Encode] writes it).
func (r *Request) DecodeInput(v any) error { return Decode(r.Task.Input, v) }

// DecodeDependency decodes the output of dependency id (or of a child
// task of a dependency). A dependency that returned no output leaves v
// untouched.
func (r *Request) DecodeDependency(id string, v any) error {
	out, ok := r.Inputs[id]
	if !ok {
		if slices.Contains(r.Task.Dependencies, id) {
			return nil
		}
		return fmt.Errorf("%w: %q is not a dependency of %q", ErrUnknownDependency, id, r.Task.ID)
	}
	return Decode(out, v)
}

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
	// agent.NewWorker.
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
	h := w.Handler
	wa.HandleWith(w.Processor, func(ctx context.Context, job *task.Job) ([]byte, error) {
		return h(ctx, &Request{Task: job.Task, Inputs: job.Inputs, Attempt: job.Attempt, Worker: job.Worker, job: job})
	}, w.Options)
	return wa, nil
}
