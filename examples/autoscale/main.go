// Command autoscale starts and retires local workers from the task
// manager's scaling signal: it keeps the workers of one task type busy at
// about a target utilization, as an autoscaler of real machines (a cloud
// API, Kubernetes through the ceylon_type_* metrics) would.
//
//	go run ./examples/autoscale
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

func main() {
	tasks := flag.Int("tasks", 400, "tasks to run")
	work := flag.Duration("work", 20*time.Millisecond, "time each task takes")
	flag.Parse()
	if err := run(context.Background(), *tasks, *work, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "autoscale:", err)
		os.Exit(1)
	}
}

// Scaling bounds and target.
const (
	minWorkers  = 1
	maxWorkers  = 8
	perWorker   = 4   // each worker runs this many tasks at once
	targetUtil  = 0.7 // the scaling signal's target
	scaleSignal = 100 * time.Millisecond
)

// desired is how many workers the load asks for: enough that the work in
// flight and waiting keeps them at the target utilization.
func desired(l task.TypeLoad) int {
	want := int(math.Ceil(float64(l.InFlight+l.Backlog) / (perWorker * targetUtil)))
	return max(minWorkers, min(maxWorkers, want))
}

func run(ctx context.Context, n int, work time.Duration, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	listen := agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")
	ws := agent.WithWorkspace("autoscale")

	pool := &pool{ctx: ctx, listen: listen, ws: ws, work: work, out: out}
	signals := make(chan task.TypeLoad, 1)
	admin, err := agent.New("manager", agent.AsAdmin(), listen, ws)
	if err != nil {
		return err
	}
	m, err := task.NewManager(admin, task.WithScalingSignal(scaleSignal, func(l task.Load) {
		select {
		case signals <- l.Type("resize"):
		default: // the scaler is busy: it will see the next one
		}
	}))
	if err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}
	defer m.Stop()
	pool.join = m.Addrs()[0]
	defer pool.stopAll()
	if err := pool.resize(minWorkers); err != nil {
		return err
	}
	stopScaler, scalerDone := make(chan struct{}), make(chan struct{})
	// The autoscaler; it ends (deferred) before the pool stops.
	defer func() { close(stopScaler); <-scalerDone }()
	go func() {
		defer close(scalerDone)
		for {
			var l task.TypeLoad
			select {
			case l = <-signals:
			case <-stopScaler:
				return
			}
			want := desired(l)
			if want < pool.size() && l.Backlog > 0 {
				continue // never retire while work waits
			}
			if want != pool.size() {
				fmt.Fprintf(out, "scale: backlog %3d, in flight %2d, utilization %.2f -> %d workers\n", l.Backlog, l.InFlight, l.Utilization, want)
				if err := pool.resize(want); err != nil {
					fmt.Fprintln(out, "scale:", err)
				}
			}
		}
	}()

	subs := make([]task.Submission, n)
	for i := range subs {
		subs[i] = task.Submission{Task: messages.Task{ID: fmt.Sprint(i), Type: "resize", Description: "resize an image"}}
	}
	start := time.Now()
	if err := m.SubmitAll(ctx, subs); err != nil {
		return err
	}
	for _, s := range subs {
		if _, err := m.Wait(ctx, s.Task.ID); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "%d tasks in %v, at most %d workers\n", n, time.Since(start).Round(time.Millisecond), pool.maxSize())
	// With the backlog gone the scaler retires workers down to the minimum.
	for pool.size() > minWorkers {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(scaleSignal):
		}
	}
	fmt.Fprintf(out, "idle again: %d worker\n", pool.size())
	return nil
}

// pool is the local workers.
type pool struct {
	ctx        context.Context
	listen, ws agent.Option
	join       string
	work       time.Duration
	out        io.Writer

	mu      sync.Mutex
	workers []*task.Worker
	seq     int
	peak    int
}

func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.workers)
}

// resize starts or retires workers until there are n (a retired worker
// finishes what it runs, and its queue goes back to the manager).
func (p *pool) resize(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.workers) < n {
		p.seq++
		a, err := agent.New(fmt.Sprint("worker-", p.seq), p.listen, p.ws, agent.WithJoin(p.join))
		if err != nil {
			return err
		}
		w, err := task.NewWorker(a, task.WithMaxConcurrency(perWorker))
		if err != nil {
			return err
		}
		w.Handle("resize", func(ctx context.Context, _ *task.Job) ([]byte, error) {
			select {
			case <-time.After(p.work):
				return nil, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
		if err := w.Start(p.ctx); err != nil {
			return err
		}
		p.workers = append(p.workers, w)
		p.peak = max(p.peak, len(p.workers))
	}
	for len(p.workers) > n {
		w := p.workers[len(p.workers)-1]
		p.workers = p.workers[:len(p.workers)-1]
		_ = w.Stop()
	}
	return nil
}

func (p *pool) stopAll() { _ = p.resize(0) }

// maxSize is the most workers the pool had at once.
func (p *pool) maxSize() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}
