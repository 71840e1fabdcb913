package task

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ceylon-go/ceylon/messages"
)

type resize struct {
	Path  string `msgpack:"path"`
	Width int    `msgpack:"width"`
}

func (resize) Kind() string { return "image.resize" }

type resized struct {
	Path string `msgpack:"path"`
	Size int    `msgpack:"size"`
}

// A typed handler gets its input decoded and its output encoded; a task
// whose input does not decode fails for good, without retries.
func TestTypedHandlers(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	startWorker(t, m, "W", func(w *Worker) {
		Handle(w, func(_ context.Context, j *TypedJob[resize]) (resized, error) {
			return resized{Path: j.Args.Path + ".small", Size: j.Args.Width * 2}, nil
		})
	})
	task, err := NewTask("r1", resize{Path: "cat.png", Width: 40})
	if err != nil || task.Type != "image.resize" {
		t.Fatalf("task: %+v %v", task, err)
	}
	r := runTask(t, m, task)
	out, err := Output[resized](r)
	if err != nil || out.Path != "cat.png.small" || out.Size != 80 {
		t.Fatalf("output: %+v %v (%+v)", out, err, r)
	}
	bad := messages.Task{ID: "bad", Type: "image.resize", Description: "garbage input", Input: []byte{0xc1}, MaxRetries: 3}
	r = runTask(t, m, bad)
	if r.Success || !strings.Contains(r.ErrorMessage, "skip retry") || r.Attempt != 1 {
		t.Fatalf("undecodable input: %+v", r)
	}
	if _, err := Output[resized](r); err == nil {
		t.Fatal("the output of a failed task decoded")
	}
	if _, err := Output[resized](messages.TaskResult{Success: true, Output: []byte{0xc1}}); !errors.Is(err, messages.ErrMalformed) {
		t.Fatalf("an undecodable output: %v", err)
	}
}
