package task

import (
	"context"
	"fmt"

	"github.com/ceylon-go/ceylon/messages"
)

// TypedJob is a job whose input is decoded as T ([Handle]).
type TypedJob[T messages.Message] struct {
	*Job
	// Args is the task's input, decoded.
	Args T
}

// Handle registers fn on w for tasks of type T.Kind() (river's
// AddWorker[T]): the task's input is decoded into T for it, and what it
// returns is encoded (msgpack) as the output. An input that does not
// decode fails the attempt for good (retrying would not help). opts, if
// given, are the handler's defaults as in [Worker.HandleWith].
func Handle[T messages.Message, Out any](w *Worker, fn func(ctx context.Context, job *TypedJob[T]) (Out, error), opts ...HandlerOptions) {
	var o HandlerOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	w.HandleWith(messages.KindOf[T](), TypedHandler(fn), o)
}

// TypedHandler is the byte-level handler that [Handle] registers for fn
// (for layers that register handlers themselves, as the playground does).
func TypedHandler[T messages.Message, Out any](fn func(ctx context.Context, job *TypedJob[T]) (Out, error)) HandlerFunc {
	return func(ctx context.Context, j *Job) ([]byte, error) {
		args, err := messages.DecodeAs[T](j.Task.Input)
		if err != nil {
			return nil, fmt.Errorf("%w: input of %q as %T: %w", ErrSkipRetry, j.Task.ID, args, err)
		}
		out, err := fn(ctx, &TypedJob[T]{Job: j, Args: args})
		if err != nil {
			return nil, err
		}
		return messages.MarshalValue(out)
	}
}

// NewTask makes a task of type args.Kind() with args (msgpack) as its
// input, for a worker that handles T with [Handle].
func NewTask[T messages.Message](id string, args T) (messages.Task, error) {
	in, err := messages.Marshal(args)
	if err != nil {
		return messages.Task{}, err
	}
	return messages.Task{ID: id, Type: args.Kind(), Description: args.Kind(), Input: in}, nil
}

// Output decodes a result's output (what a [Handle] handler returned).
func Output[Out any](r messages.TaskResult) (Out, error) {
	var out Out
	if !r.Success {
		return out, fmt.Errorf("task: result of %q: %s", r.TaskID, r.ErrorMessage)
	}
	err := messages.Unmarshal(r.Output, &out)
	return out, err
}
