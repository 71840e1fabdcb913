package playground_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/playground"
	"github.com/ceylon-go/ceylon/task"
)

// Child tasks: a handler fans out with Spawn; the parent completes after
// its children, and a task that depends on the parent sees their outputs
// too.
func ExampleRequest_Spawn() {
	ctx := context.Background()
	split := playground.Worker{Name: "splitter", Processor: "split",
		Handler: func(_ context.Context, r *playground.Request) ([]byte, error) {
			for _, part := range []int{1, 2, 3} {
				r.Spawn(playground.Task{Type: "sum", Input: playground.MustEncode(part)}) // IDs "parent/0", "parent/1", …
			}
			return playground.Encode(0)
		}}
	sum := playground.Worker{Name: "adder", Processor: "sum", Concurrency: 3,
		Handler: func(_ context.Context, r *playground.Request) ([]byte, error) {
			var own int
			_ = r.DecodeInput(&own)
			total := own
			for id := range r.Inputs {
				var v int
				_ = r.DecodeDependency(id, &v)
				total += v
			}
			return playground.Encode(total)
		}}
	p, _ := playground.New(playground.WithWorkspace("example-children"))
	err := p.Play(ctx, []playground.Worker{split, sum}, func(ctx context.Context, p *playground.Playground) error {
		if _, err := p.AddTasks(ctx,
			playground.Task{ID: "parent", Type: "split"},
			playground.Task{ID: "total", Type: "sum", Dependencies: []string{"parent"}},
		); err != nil {
			return err
		}
		res, err := p.Wait(ctx, "total")
		if err != nil {
			return err
		}
		var total int
		_ = playground.Decode(res.Output, &total)
		child, _ := p.Result("parent/2")
		var three int
		_ = playground.Decode(child.Output, &three)
		fmt.Println(total, three)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output: 6 3
}

// NoWait returns as soon as the task is added; Result reads it without
// waiting (ErrNotFinished until it is final), Wait waits.
func ExampleNoWait() {
	ctx := context.Background()
	release := make(chan struct{})
	slow := playground.Worker{Name: "slow", Processor: "slow",
		Handler: func(ctx context.Context, _ *playground.Request) ([]byte, error) {
			select {
			case <-release:
				return playground.Encode("done")
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}}
	p, _ := playground.New(playground.WithWorkspace("example-nowait"))
	err := p.Play(ctx, []playground.Worker{slow}, func(ctx context.Context, p *playground.Playground) error {
		if _, err := p.AddAndExecuteTask(ctx, playground.Task{ID: "bg", Type: "slow"}, playground.NoWait()); err != nil {
			return err
		}
		_, err := p.Result("bg")
		fmt.Println(errors.Is(err, playground.ErrNotFinished))
		close(release)
		res, err := p.Wait(ctx, "bg")
		if err != nil {
			return err
		}
		var out string
		_ = playground.Decode(res.Output, &out)
		fmt.Println(out)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// true
	// done
}

// Cancel stops a task (queued or running) and everything that depends on
// it: their results say ErrCancelled.
func ExamplePlayground_Cancel() {
	ctx := context.Background()
	block := playground.Worker{Name: "w", Processor: "block",
		Handler: func(ctx context.Context, _ *playground.Request) ([]byte, error) {
			<-ctx.Done() // until cancelled
			return nil, ctx.Err()
		}}
	p, _ := playground.New(playground.WithWorkspace("example-cancel"))
	err := p.Play(ctx, []playground.Worker{block}, func(ctx context.Context, p *playground.Playground) error {
		if _, err := p.AddTasks(ctx,
			playground.Task{ID: "long", Type: "block"},
			playground.Task{ID: "after", Type: "block", Dependencies: []string{"long"}},
		); err != nil {
			return err
		}
		if err := p.Cancel(ctx, "long"); err != nil {
			return err
		}
		_, errLong := p.Wait(ctx, "long")
		_, errAfter := p.Wait(ctx, "after")
		fmt.Println(errors.Is(errLong, playground.ErrCancelled), errors.Is(errAfter, playground.ErrCancelled))
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output: true true
}

// Remote workers: the playground waits for a worker that joins from
// another agent (here in the same program; usually another process or
// machine, with -join the address the playground prints).
func ExampleWithRemoteWorkers() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var w *task.Worker
	p, _ := playground.New(playground.WithWorkspace("example-remote"), playground.WithRemoteWorkers(1),
		playground.WithListening(func(addrs []string) {
			// The playground listens: a worker elsewhere joins it.
			a, _ := agent.New("far-worker", agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
				agent.WithWorkspace("example-remote"), agent.WithJoin(addrs[0]))
			w, _ = task.NewWorker(a)
			w.Handle("greet", func(_ context.Context, j *task.Job) ([]byte, error) {
				return []byte("hello from " + j.Worker), nil
			})
			if err := w.Start(ctx); err != nil {
				panic(err)
			}
		}))
	err := p.Play(ctx, nil, func(ctx context.Context, p *playground.Playground) error {
		res, err := p.AddAndExecuteTask(ctx, playground.Task{Type: "greet"})
		fmt.Println(string(res.Output))
		return err
	})
	_ = w.Stop()
	if err != nil {
		panic(err)
	}
	// Output: hello from far-worker
}

// Prep and Merge are typed tasks' inputs; each Kind is a task type.
type Prep struct {
	Text string `msgpack:"text"`
}

func (Prep) Kind() string { return "example.prep" }

type Merge struct {
	Sep string `msgpack:"sep"`
}

func (Merge) Kind() string { return "example.merge" }

// Typed tasks, and one worker that serves two task types: Handle adds a
// processor whose input arrives decoded, NewTask makes its tasks, Output
// decodes a result.
func ExampleHandle() {
	ctx := context.Background()
	w := playground.Worker{Name: "worker-1", Concurrency: 2}
	playground.Handle(&w, func(_ context.Context, r *playground.TypedRequest[Prep]) (string, error) {
		return strings.ToUpper(r.Args.Text), nil
	})
	playground.Handle(&w, func(_ context.Context, r *playground.TypedRequest[Merge]) (string, error) {
		var a, b string
		_ = r.DecodeDependency("a", &a)
		_ = r.DecodeDependency("b", &b)
		return a + r.Args.Sep + b, nil
	})
	p, _ := playground.New(playground.WithWorkspace("example-typed"))
	err := p.Play(ctx, []playground.Worker{w}, func(ctx context.Context, p *playground.Playground) error {
		a, _ := playground.NewTask("a", Prep{Text: "hello"})
		b, _ := playground.NewTask("b", Prep{Text: "world"})
		c, _ := playground.NewTask("c", Merge{Sep: ", "}, "a", "b")
		if _, err := p.AddTasks(ctx, a, b, c); err != nil {
			return err
		}
		res, err := p.Wait(ctx, "c")
		if err != nil {
			return err
		}
		out, err := playground.Output[string](res)
		st, _ := p.Manager().Stats(ctx)
		fmt.Println(out, len(st.Workers), st.Workers[0].Name)
		return err
	})
	if err != nil {
		panic(err)
	}
	// Output: HELLO, WORLD 1 worker-1
}

// A producer on another agent (another process, another machine) adds a
// DAG to a playground and waits for the result: playground.Client.
func ExampleNewClient() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	upper := playground.Worker{Name: "upper", Processor: "upper",
		Handler: func(_ context.Context, r *playground.Request) ([]byte, error) {
			out := strings.ToUpper(string(r.Task.Input))
			for _, d := range r.Task.Dependencies {
				out = string(r.Inputs[d]) + " " + out
			}
			return []byte(out), nil
		}}
	var addr string
	p, _ := playground.New(playground.WithWorkspace("example-client"), playground.WithListening(func(a []string) { addr = a[0] }))
	err := p.Play(ctx, []playground.Worker{upper}, func(ctx context.Context, p *playground.Playground) error {
		a, _ := agent.New("producer", agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-client"), agent.WithJoin(addr))
		c, err := playground.NewClient(a)
		if err != nil {
			return err
		}
		if err := a.Start(ctx); err != nil {
			return err
		}
		defer a.Stop()
		if _, err := c.AddTasks(ctx,
			playground.Task{ID: "first", Type: "upper", Input: []byte("hello")},
			playground.Task{ID: "second", Type: "upper", Input: []byte("world"), Dependencies: []string{"first"}}); err != nil {
			return err
		}
		res, err := c.Wait(ctx, "second")
		fmt.Println(string(res.Output))
		return err
	})
	if err != nil {
		panic(err)
	}
	// Output: HELLO WORLD
}
