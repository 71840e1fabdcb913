package task_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// An operator lists tasks with a filter (newest first, a page at a time),
// reads one's attempts, and retries it. The same calls work on a
// task.Client from another agent and on monitor.Client over HTTP: all
// three are task.Operator.
func ExampleManager_ListTasks() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, stop := startPair(ctx, "example-ops", nil)
	defer stop()
	for _, id := range []string{"a", "b"} {
		_ = m.Submit(ctx, messages.Task{ID: id, Type: "echo"})
	}
	_ = m.Submit(ctx, messages.Task{ID: "c", Type: "echo", MaxRetries: messages.NoRetry})
	for _, id := range []string{"a", "b", "c"} {
		_, _ = m.Wait(ctx, id)
	}
	var op task.Operator = m
	page, err := op.ListTasks(ctx, task.TaskFilter{Status: "completed", Limit: 2})
	if err != nil {
		panic(err)
	}
	for _, t := range page.Tasks {
		fmt.Println(t.ID, t.Status, t.Worker)
	}
	fmt.Println("of", page.Total, "more:", page.Next != "")
	d, _ := op.TaskDetail(ctx, "a")
	fmt.Println(len(d.Attempts), "attempt:", d.Attempts[0].Outcome)
	fmt.Println(errors.Is(op.Retry(ctx, "a"), task.ErrNotFinal))
	// Output:
	// c completed echo
	// b completed echo
	// of 3 more: true
	// 1 attempt: ok
	// true
}

// A strict manager serves other agents only in the roles their grants give
// them: a worker with a grant for "echo" registers for it; one without is
// told it is refused.
func ExampleWithGrantsRequired() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net := []agent.Option{agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-grants")}
	admin, _ := agent.New("manager", append(net, agent.AsAdmin())...)
	m, _ := task.NewManager(admin, task.WithGrantsRequired())
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()

	worker := func(name string, withGrant bool) *task.Worker {
		key, _, _ := crypto.GenerateEd25519Key(nil)
		id, _ := peer.IDFromPrivateKey(key)
		a, _ := agent.New(name, append(net, agent.WithIdentity(key), agent.WithJoin(m.Addrs()[0]))...)
		var opts []task.WorkerOption
		if withGrant {
			g, err := m.IssueGrant(task.Grant{ID: name, Subject: id, Roles: []task.Role{task.RoleWorker},
				Types: []string{"echo"}, Expires: time.Now().Add(time.Hour)})
			if err != nil {
				panic(err)
			}
			opts = append(opts, task.WithWorkerGrants(g))
		}
		w, _ := task.NewWorker(a, opts...)
		w.Handle("echo", func(_ context.Context, j *task.Job) ([]byte, error) { return j.Task.Input, nil })
		if err := w.Start(ctx); err != nil {
			panic(err)
		}
		return w
	}
	granted, stranger := worker("granted", true), worker("stranger", false)
	defer granted.Stop()
	defer stranger.Stop()
	types, err := granted.Registration(ctx)
	fmt.Println(types, err)
	_, err = stranger.Registration(ctx)
	fmt.Println(errors.Is(err, task.ErrUnauthorized))
	// Output:
	// [echo] <nil>
	// true
}

// A task's trace: the manager records the submit, the queue wait and each
// attempt (a worker with its own provider, in its process, adds the run
// under the attempt: see the README). Here an in-memory exporter shows the
// manager's spans, all in one trace.
func ExampleWithTracerProvider() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	m, stop := startPair(ctx, "example-trace", nil, task.WithTracerProvider(tp))
	defer stop()
	if _, err := m.Run(ctx, messages.Task{ID: "t", Type: "echo"}); err != nil {
		panic(err)
	}
	traces := map[string]bool{}
	var names []string
	for _, s := range exp.GetSpans().Snapshots() {
		names = append(names, s.Name())
		traces[s.SpanContext().TraceID().String()] = true
	}
	slices.Sort(names)
	fmt.Println(names, len(traces), "trace")
	// Output: [ceylon.attempt ceylon.queue_wait ceylon.submit] 1 trace
}
