package playground_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/ceylon-go/ceylon/playground"
)

// The basic flow: start a playground with a local worker, run a task, and
// read its result.
func Example() {
	ctx := context.Background()
	upper := playground.Worker{
		Name:      "upper",
		Processor: "upper",
		Handler: func(ctx context.Context, req *playground.Request) ([]byte, error) {
			var s string
			if err := req.DecodeInput(&s); err != nil {
				return nil, err
			}
			return playground.Encode(strings.ToUpper(s))
		},
	}
	p, err := playground.New(playground.WithWorkspace("example-basic"))
	if err != nil {
		panic(err)
	}
	err = p.Play(ctx, []playground.Worker{upper}, func(ctx context.Context, p *playground.Playground) error {
		res, err := p.AddAndExecuteTask(ctx, playground.Task{
			Name: "shout", Type: "upper", Input: playground.MustEncode("hello"),
		})
		if err != nil {
			return err
		}
		var out string
		if err := playground.Decode(res.Output, &out); err != nil {
			return err
		}
		fmt.Println(out, "by", res.Worker)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output: HELLO by upper
}

// A DAG: two independent tasks run in parallel, and a third one gets both
// their outputs once they are done.
func ExamplePlayground_AddTasks() {
	ctx := context.Background()
	square := playground.Worker{
		Name: "math", Processor: "square", Concurrency: 2,
		Handler: func(ctx context.Context, req *playground.Request) ([]byte, error) {
			var n int
			if err := req.DecodeInput(&n); err != nil {
				return nil, err
			}
			return playground.Encode(n * n)
		},
	}
	sum := playground.Worker{
		Name: "adder", Processor: "sum",
		Handler: func(ctx context.Context, req *playground.Request) ([]byte, error) {
			total := 0
			for id := range req.Inputs {
				var v int
				if err := req.DecodeDependency(id, &v); err != nil {
					return nil, err
				}
				total += v
			}
			return playground.Encode(total)
		},
	}
	p, err := playground.New(playground.WithWorkspace("example-dag"))
	if err != nil {
		panic(err)
	}
	err = p.Play(ctx, []playground.Worker{square, sum}, func(ctx context.Context, p *playground.Playground) error {
		_, err := p.AddTasks(ctx,
			playground.Task{ID: "a", Type: "square", Input: playground.MustEncode(3)},
			playground.Task{ID: "b", Type: "square", Input: playground.MustEncode(4)},
			playground.Task{ID: "c", Type: "sum", Dependencies: []string{"a", "b"}},
		)
		if err != nil {
			return err
		}
		res, err := p.Wait(ctx, "c")
		if err != nil {
			return err
		}
		var total int
		if err := playground.Decode(res.Output, &total); err != nil {
			return err
		}
		fmt.Println("3² + 4² =", total)
		return nil
	})
	if err != nil {
		panic(err)
	}
	// Output: 3² + 4² = 25
}
