package task

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/ceylon-go/ceylon/messages"
)

// Middleware wraps every handler, the first added outermost, and may
// change what a handler returns.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	var mu sync.Mutex
	var seen []string
	trace := func(name string) Middleware {
		return func(next HandlerFunc) HandlerFunc {
			return func(ctx context.Context, j *Job) ([]byte, error) {
				mu.Lock()
				seen = append(seen, name+">"+j.Task.ID)
				mu.Unlock()
				out, err := next(ctx, j)
				return append([]byte(name), out...), err
			}
		}
	}
	startWorker(t, m, "W", func(w *Worker) {
		w.Use(trace("outer"))
		w.Handle("job", func(context.Context, *Job) ([]byte, error) { return []byte("!"), nil })
		w.Use(trace("inner"))
	})
	r := runTask(t, m, messages.Task{ID: "t", Type: "job", Description: "wrapped"})
	if !r.Success || string(r.Output) != "outerinner!" {
		t.Fatalf("result: %+v (%q)", r, r.Output)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "outer>t,inner>t" {
		t.Fatalf("order: %v", seen)
	}
}
