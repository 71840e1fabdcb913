// Command pipeline runs a data pipeline as a DAG on a playground: one data
// preparation task, N processing tasks that each take a chunk of its
// output in parallel, and one aggregation task that combines their
// outputs. It shows progress while it runs, then the result and a
// per-worker summary.
//
//	go run ./examples/pipeline -chunks 64 -workers 4
//
// Workers in other processes can join: start the playground with
// -remote N, then run -role worker -join <address> in each. With
// -replicate, several playground processes keep one graph and survive the
// loss of any one (replicated.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/progress"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/playground"
	"github.com/ceylon-go/ceylon/task"
)

type options struct {
	role      string
	workspace string
	listen    string
	join      string
	name      string
	chunks    int
	size      int
	workers   int
	remote    int
	work      time.Duration
	http      string
	journal   string
	serve     bool
	secret    string
	key       string
	replicate string
	replicas  string
}

func main() {
	var o options
	flag.StringVar(&o.role, "role", "playground", "playground, worker (joins a playground), producer (submits the pipeline to a playground from this process), or id (prints -key's peer ID)")
	flag.BoolVar(&o.serve, "serve", false, "playground: run no pipeline of its own; serve producers (-role producer) until interrupted")
	flag.StringVar(&o.workspace, "workspace", "pipeline", "workspace ID")
	flag.StringVar(&o.listen, "listen", "/ip4/127.0.0.1/tcp/0", "playground listen multiaddr")
	flag.StringVar(&o.join, "join", "", "worker, producer: the playground's address (replicated playgrounds: all of them, comma-separated); playground with -replicate: the other playgrounds' addresses")
	flag.StringVar(&o.secret, "secret", os.Getenv("CEYLON_SECRET"), "workspace secret (default $CEYLON_SECRET; \"\": an open workspace)")
	flag.StringVar(&o.key, "key", "", "playground, id: identity key file (created if missing); its peer ID is the playground's")
	flag.StringVar(&o.replicate, "replicate", "", "playground: one of several that replicate the graph (Raft; log, snapshots and journal in this directory; needs -secret and -key); implies -serve")
	flag.StringVar(&o.replicas, "replicas", "", "playground with -replicate: comma-separated peer IDs of the group's playgrounds, the same list on each (see -role id)")
	flag.StringVar(&o.name, "name", "remote", "worker: name; producer: the prefix of its task IDs")
	flag.IntVar(&o.chunks, "chunks", 64, "parallel processing tasks")
	flag.IntVar(&o.size, "size", 200_000, "numbers to process (the prepared data travels in one message: keep it under the 4 MiB frame limit)")
	flag.IntVar(&o.workers, "workers", 4, "local workers")
	flag.IntVar(&o.remote, "remote", 0, "remote workers to wait for")
	flag.DurationVar(&o.work, "work", 20*time.Millisecond, "simulated work per chunk")
	flag.StringVar(&o.http, "http", "", "serve the live dashboard, /stats and /metrics on this address (e.g. 127.0.0.1:8080)")
	flag.StringVar(&o.journal, "journal", "", "journal file: a pipeline started again on it resumes")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch o.role {
	case "playground":
		err = runPlayground(ctx, o)
	case "worker":
		err = runWorker(ctx, o)
	case "producer":
		err = runProducer(ctx, o)
	case "id":
		err = printID(o)
	default:
		err = fmt.Errorf("unknown -role %q", o.role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

// The three processors. Data flows along the DAG's edges: each task gets
// its dependencies' outputs in req.Inputs.

// prepare makes the dataset (1..size) and cuts it into chunks.
func prepare(ctx context.Context, req *playground.Request) ([]byte, error) {
	var in struct{ Size, Chunks int }
	if err := req.DecodeInput(&in); err != nil {
		return nil, err
	}
	chunks := make([][]int64, in.Chunks)
	for i := 1; i <= in.Size; i++ {
		c := (i - 1) * in.Chunks / in.Size
		chunks[c] = append(chunks[c], int64(i))
	}
	return playground.Encode(chunks)
}

// process sums the squares of its chunk of the prepared data.
func process(work time.Duration) playground.Handler {
	return func(ctx context.Context, req *playground.Request) ([]byte, error) {
		var idx int
		if err := req.DecodeInput(&idx); err != nil {
			return nil, err
		}
		var chunks [][]int64 // its one dependency is the preparation (a producer prefixes the IDs)
		if len(req.Task.Dependencies) != 1 {
			return nil, fmt.Errorf("a processing task depends on the preparation only: %w", task.ErrSkipRetry)
		}
		if err := req.DecodeDependency(req.Task.Dependencies[0], &chunks); err != nil {
			return nil, err
		}
		if idx < 0 || idx >= len(chunks) {
			return nil, fmt.Errorf("chunk %d of %d: %w", idx, len(chunks), task.ErrSkipRetry)
		}
		var s int64
		for _, v := range chunks[idx] {
			s += v * v
		}
		select { // the simulated rest of the work
		case <-time.After(work):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return playground.Encode(s)
	}
}

// aggregate adds up every processing task's output.
func aggregate(ctx context.Context, req *playground.Request) ([]byte, error) {
	var total int64
	for id := range req.Inputs {
		if strings.HasSuffix(id, "prepare") {
			continue
		}
		var v int64
		if err := req.DecodeDependency(id, &v); err != nil {
			return nil, err
		}
		total += v
	}
	return playground.Encode(total)
}

func workers(o options, names ...string) []playground.Worker {
	var out []playground.Worker
	for _, n := range names {
		out = append(out,
			playground.Worker{Name: n + "-prep", Processor: "prepare", Handler: prepare},
			playground.Worker{Name: n, Processor: "process", Handler: process(o.work), Concurrency: 4},
			playground.Worker{Name: n + "-agg", Processor: "aggregate", Handler: aggregate},
		)
	}
	return out
}

func runPlayground(ctx context.Context, o options) error {
	if o.chunks < 1 || o.size < o.chunks {
		return errors.New("need 1 <= chunks <= size")
	}
	var names []string
	for i := range o.workers {
		names = append(names, fmt.Sprint("worker-", i+1))
	}
	local := workers(o, names...)
	if o.workers == 0 {
		local = nil
	}
	opts := []playground.Option{playground.WithSecret(o.secret)}
	if o.key != "" {
		opts = append(opts, playground.WithIdentityFile(o.key))
	}
	if o.replicate != "" {
		ropts, err := replicaOptions(o)
		if err != nil {
			return err
		}
		opts, o.serve = append(opts, ropts...), true
	}
	if o.http != "" {
		opts = append(opts, playground.WithHTTP(o.http, monitor.WithToken(os.Getenv("CEYLON_HTTP_TOKEN"))))
	}
	if o.journal != "" {
		opts = append(opts, playground.WithJournal(o.journal))
	}
	p, err := playground.New(append(opts,
		playground.WithWorkspace(o.workspace), playground.WithListenAddrs(o.listen),
		playground.WithRemoteWorkers(3*o.remote), playground.WithWaitTimeout(5*time.Minute),
		playground.WithListening(func(addrs []string) {
			if o.remote > 0 {
				fmt.Printf("waiting for %d remote workers: -role worker -workspace %s -join %s\n", o.remote, o.workspace, addrs[0])
			}
		}),
	)...)
	if err != nil {
		return err
	}
	return p.Play(ctx, local, func(ctx context.Context, p *playground.Playground) error {
		if u := p.MonitorURL(); u != "" {
			fmt.Println("dashboard:", u)
		}
		if o.serve {
			fmt.Printf("serving producers: -role producer -workspace %s -join %s\n", o.workspace, p.Manager().Addrs()[0])
			return serve(ctx, p)
		}
		tasks := pipeline(o, "")

		fmt.Printf("pipeline: 1 preparation -> %d processing -> 1 aggregation\n", o.chunks)
		if _, err := p.Task(ctx, "aggregate"); err == nil {
			fmt.Println("resuming the pipeline from the journal")
		} else if _, err := p.AddTasks(ctx, tasks...); err != nil {
			return err
		}
		done := make(chan struct{})
		go func() {
			bar := progress.New(os.Stderr, "tasks") // stdout keeps the results
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				pr := p.Progress()
				bar.Update(pr.Finished, pr.Total, pr.Failed)
				if pr.Finished == pr.Total {
					close(done)
					return
				}
				select {
				case <-t.C:
				case <-ctx.Done():
					close(done)
					return
				}
			}
		}()
		res, err := p.Wait(ctx, "aggregate")
		<-done
		if err != nil {
			return err
		}
		var total int64
		if err := playground.Decode(res.Output, &total); err != nil {
			return err
		}
		n := int64(o.size)
		want := n * (n + 1) * (2*n + 1) / 6
		fmt.Printf("\nresult: sum of squares 1..%d = %d (expected %d)\n\n", o.size, total, want)
		rep, err := p.Stats(ctx)
		if err != nil {
			return err
		}
		_, _ = rep.WriteTo(os.Stdout)
		if total != want {
			return fmt.Errorf("wrong result %d, want %d", total, want)
		}
		return nil
	})
}

func runWorker(ctx context.Context, o options) error {
	if o.join == "" {
		return errors.New("a worker needs -join <playground address>")
	}
	var was []*task.Worker
	for _, w := range workers(o, o.name) {
		wa, err := w.Agent(append(agentJoin(o.join), agent.WithWorkspace(o.workspace), agent.WithListenAddrs("/ip4/0.0.0.0/tcp/0"),
			agent.WithSecret(o.secret))...)
		if err != nil {
			return err
		}
		if err := wa.Start(ctx); err != nil {
			return err
		}
		defer wa.Stop()
		was = append(was, wa)
	}
	fmt.Printf("worker %s joined %s\n", o.name, o.workspace)
	for _, wa := range was {
		select {
		case <-wa.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// pipeline is the DAG: one preparation, o.chunks processing tasks, one
// aggregation; prefix starts every ID (a producer's name).
func pipeline(o options, prefix string) []playground.Task {
	tasks := []playground.Task{{
		ID: prefix + "prepare", Name: "data preparation", Type: "prepare",
		Input: playground.MustEncode(map[string]int{"Size": o.size, "Chunks": o.chunks}),
	}}
	deps := []string{prefix + "prepare"}
	for i := range o.chunks {
		id := fmt.Sprintf("%sprocess-%03d", prefix, i)
		deps = append(deps, id)
		tasks = append(tasks, playground.Task{ID: id, Name: "process chunk", Type: "process",
			Input: playground.MustEncode(i), Dependencies: []string{prefix + "prepare"}})
	}
	return append(tasks, playground.Task{ID: prefix + "aggregate", Name: "aggregation", Type: "aggregate", Dependencies: deps})
}

// runProducer submits the pipeline to a playground from this process
// (playground.Client) and checks its result.
func runProducer(ctx context.Context, o options) error {
	if o.join == "" {
		return errors.New("a producer needs -join <playground address>")
	}
	a, err := agent.New(o.name, append(agentJoin(o.join), agent.WithWorkspace(o.workspace), agent.WithListenAddrs("/ip4/0.0.0.0/tcp/0"),
		agent.WithSecret(o.secret))...)
	if err != nil {
		return err
	}
	c, err := playground.NewClient(a)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	defer a.Stop()
	prefix := o.name + "/"
	if _, err := c.AddTasks(ctx, pipeline(o, prefix)...); err != nil {
		return err
	}
	fmt.Printf("producer %s: pipeline submitted (1 -> %d -> 1 tasks)\n", o.name, o.chunks)
	res, err := c.Wait(ctx, prefix+"aggregate")
	if err != nil {
		return err
	}
	var total int64
	if err := playground.Decode(res.Output, &total); err != nil {
		return err
	}
	n := int64(o.size)
	want := n * (n + 1) * (2*n + 1) / 6
	fmt.Printf("producer %s: result: sum of squares 1..%d = %d (expected %d)\n", o.name, o.size, total, want)
	if total != want {
		return fmt.Errorf("wrong result %d, want %d", total, want)
	}
	return nil
}

// agentJoin joins the comma-separated addresses in join.
func agentJoin(join string) []agent.Option {
	return []agent.Option{agent.WithJoin(strings.Split(join, ",")...)}
}
