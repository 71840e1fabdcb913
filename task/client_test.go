package task

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// startClient starts a producer agent joined to m.
func startClient(t *testing.T, m *testManager, opts ...agent.Option) *Client {
	t.Helper()
	a, err := agent.New("producer", append([]agent.Option{loopback, agent.WithWorkspace("ws-" + t.Name()), agent.WithJoin(m.Addrs()[0])}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	return c
}

// A producer on another agent submits, waits, looks up and cancels tasks
// over direct streams; the manager's refusals come back as its sentinels;
// a repeated submit of the same task is accepted once.
func TestRemoteProducer(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	release := make(chan struct{})
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("echo", func(_ context.Context, j *Job) ([]byte, error) { return j.Task.Input, nil })
		w.Handle("block", func(ctx context.Context, _ *Job) ([]byte, error) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return nil, nil
			}
		})
	}, WithMaxConcurrency(4))
	defer close(release)
	c := startClient(t, m)
	ctx := testutil.Context(t)

	r, err := c.Run(ctx, messages.Task{ID: "a", Type: "echo", Description: "echo", Input: []byte("hi")})
	if err != nil || !r.Success || string(r.Output) != "hi" || r.Worker != "W" {
		t.Fatalf("run: %+v %v", r, err)
	}
	// A description is optional.
	if r, err := c.Run(ctx, messages.Task{ID: "nodesc", Type: "echo"}); err != nil || !r.Success {
		t.Fatalf("a task without a description: %+v %v", r, err)
	}
	// Idempotent: the same task again is fine, and runs once.
	if err := c.Submit(ctx, messages.Task{ID: "a", Type: "echo", Description: "echo", Input: []byte("hi")}); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	var batch []messages.Task
	for i := range 2500 { // more than one batch
		batch = append(batch, messages.Task{ID: fmt.Sprint("b", i), Type: "echo", Description: "batch", Input: fmt.Append(nil, i)})
	}
	if err := c.SubmitAll(ctx, batch); err != nil {
		t.Fatal(err)
	}
	for _, bt := range batch {
		if r, err := c.Wait(ctx, bt.ID); err != nil || string(r.Output) != string(bt.Input) {
			t.Fatalf("wait %s: %+v %v", bt.ID, r, err)
		}
	}
	if info, err := m.Task(ctx, "a"); err != nil || info.Attempt != 1 {
		t.Fatalf("the repeated task ran again: %+v %v", info, err)
	}

	// Refusals, by name.
	for _, c2 := range []struct {
		task messages.Task
		want error
	}{
		{messages.Task{ID: "a", Type: "echo", Description: "other content"}, ErrDuplicateTask},
		{messages.Task{ID: "big", Type: "echo", Description: "too big", Input: make([]byte, 5<<20)}, ErrTaskTooLarge},
		{messages.Task{ID: "", Type: "echo", Description: "no id"}, messages.ErrEmptyID},
	} {
		err := c.Submit(ctx, c2.task)
		if !errors.Is(err, c2.want) {
			t.Errorf("submit %q: %v, want %v", c2.task.ID, err, c2.want)
		}
	}
	// The manager checks too (a producer that skips the client's checks).
	rep, err := c.request(ctx, messages.SubmitRequest{Tasks: []messages.Task{{ID: "x", Type: "echo", Difficulty: 11}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := outcomeErr(rep.(messages.SubmitReply).Refused); !errors.Is(err, messages.ErrDifficultyRange) {
		t.Errorf("manager-side check: %v", err)
	}
	if _, err := c.Wait(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("wait for an unknown task: %v", err)
	}
	if _, err := c.Task(ctx, "nope"); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("status of an unknown task: %v", err)
	}

	// Status and cancel of a running task.
	if err := c.Submit(ctx, messages.Task{ID: "long", Type: "block", Description: "blocks"}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, m, "long")
	info, err := c.Task(ctx, "long")
	if err != nil || (info.Status != StatusAssigned && info.Status != StatusRunning) || info.Worker != "W" {
		t.Fatalf("status: %+v %v", info, err)
	}
	if err := c.Cancel(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Wait(ctx, "long"); err != nil || r.Success {
		t.Fatalf("cancelled task: %+v %v", r, err)
	}
	if info, err := c.Task(ctx, "long"); err != nil || info.Status != StatusCancelled || info.Result == nil {
		t.Fatalf("status after cancel: %+v %v", info, err)
	}
}

// SubmitAsync pipelines submissions from one goroutine; each future
// resolves once its task is durable (or refused); a manager that is gone
// gives an error, not a hang.
func TestRemoteProducerAsync(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithJournal(openJournal(t, t.TempDir()+"/j.db")))
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, WithMaxConcurrency(16))
	c := startClient(t, m)
	ctx := testutil.Context(t)
	var fs []*SubmitFuture
	for i := range 500 {
		f, err := c.SubmitAsync(ctx, messages.Task{ID: fmt.Sprint("t", i), Type: "job", Description: "async"})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	dup, err := c.SubmitAsync(ctx, messages.Task{ID: "t0", Type: "job", Description: "other content"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if err := f.Wait(ctx); err != nil {
			t.Fatalf("%s: %v", f.TaskID(), err)
		}
	}
	if err := dup.Wait(ctx); !errors.Is(err, ErrDuplicateTask) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, f := range fs {
		if r, err := c.Wait(ctx, f.TaskID()); err != nil || !r.Success {
			t.Fatalf("%s: %+v %v", f.TaskID(), r, err)
		}
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := c.Submit(short, messages.Task{ID: "late", Type: "job", Description: "no manager"}); err == nil {
		t.Fatal("a submit to a stopped manager succeeded")
	}
}

// Async submissions from one goroutine reach the manager in order, even
// with many requests in flight: of two submissions of one task ID with
// different contents, the first is the task and the second is refused as
// a duplicate, every time.
func TestRemoteProducerAsyncKeepsOrder(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, WithMaxConcurrency(16))
	c := startClient(t, m)
	ctx := testutil.Context(t)
	const pairs = 400
	var first, second []*SubmitFuture
	for i := range pairs {
		id := fmt.Sprint("k", i)
		f, err := c.SubmitAsync(ctx, messages.Task{ID: id, Type: "job", Description: "first"})
		if err != nil {
			t.Fatal(err)
		}
		runtime.Gosched() // let the sender take it alone: many small requests in flight
		g, err := c.SubmitAsync(ctx, messages.Task{ID: id, Type: "job", Description: "second"})
		if err != nil {
			t.Fatal(err)
		}
		runtime.Gosched()
		first, second = append(first, f), append(second, g)
	}
	overtaken := 0
	for i := range pairs {
		if err := first[i].Wait(ctx); err != nil {
			if !errors.Is(err, ErrDuplicateTask) {
				t.Fatalf("%s: %v", first[i].TaskID(), err)
			}
			overtaken++
		}
		if err := second[i].Wait(ctx); err == nil {
			overtaken++
		} else if !errors.Is(err, ErrDuplicateTask) {
			t.Fatalf("%s, second: %v", second[i].TaskID(), err)
		}
	}
	if overtaken > 0 {
		t.Fatalf("%d of %d submissions were overtaken by a later one", overtaken, 2*pairs)
	}
}
