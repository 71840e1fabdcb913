package playground

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

// Three playgrounds replicating one graph: the leader holds it, the
// standbys refuse with task.ErrNotLeader; when the leader goes while a
// task of a chain runs, the new leader rebuilds the graph from the
// replicated journal, takes over the running attempt from its worker,
// and the chain finishes there. A remote producer's wait, parked on the
// old leader, follows to the new one; its batch sent again is the same
// batch. Every task ran once.
func TestReplicatedPlaygroundFailsOver(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	dir := t.TempDir()
	ws, secret := "pg-"+t.Name(), "pg-replica-secret"
	const n = 3
	keyPath := func(i int) string { return filepath.Join(dir, fmt.Sprintf("m%d.key", i)) }
	var ids []peer.ID
	for i := range n {
		k, err := peer.LoadOrCreateIdentity(keyPath(i))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	pgs := make([]*Playground, n)
	var addrs []string
	for i := range n {
		opts := []Option{WithName(fmt.Sprintf("manager-%d", i)), WithWorkspace(ws), WithSecret(secret),
			WithIdentityFile(keyPath(i)), WithJournal(filepath.Join(dir, fmt.Sprintf("journal-%d.db", i))),
			WithManagerOptions(task.WithReplication(filepath.Join(dir, fmt.Sprintf("raft-%d", i)), task.ReplicaBootstrap(ids...)))}
		if len(addrs) > 0 {
			opts = append(opts, WithAgentOptions(agent.WithJoin(addrs...)))
		}
		p, err := New(opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Stop() })
		pgs[i] = p
		addrs = append(addrs, p.Addrs()[0])
	}
	leader := func(skip int) int {
		t.Helper()
		at := -1
		testutil.Eventually(t, "a leading playground", func() bool {
			for i, p := range pgs {
				if i == skip {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				on, _, err := p.Manager().Leading(cctx)
				cancel()
				if err == nil && on {
					at = i
					return true
				}
			}
			return false
		})
		return at
	}
	lead := leader(-1)

	var mu sync.Mutex
	runs := map[string]int{}
	running, release := make(chan struct{}, 1), make(chan struct{})
	net := []agent.Option{agent.WithJoin(addrs...), agent.WithWorkspace(ws), agent.WithSecret(secret), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0")}
	for i := range 2 {
		w := Worker{Name: fmt.Sprint("w", i), Processor: "sum", Concurrency: 4, Handler: func(ctx context.Context, req *Request) ([]byte, error) {
			mu.Lock()
			runs[req.Task.ID]++
			mu.Unlock()
			if req.Task.ID == "b" {
				running <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return sum(ctx, req)
		}}
		wa, err := w.Agent(net...)
		if err != nil {
			t.Fatal(err)
		}
		if err := wa.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = wa.Stop() })
	}
	pa, err := agent.New("producer", net...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(pa)
	if err != nil {
		t.Fatal(err)
	}
	if err := pa.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pa.Stop() })

	chain := []Task{
		{ID: "a", Type: "sum", Input: MustEncode(1)},
		{ID: "b", Type: "sum", Input: MustEncode(10), Dependencies: []string{"a"}},
		{ID: "c", Type: "sum", Input: MustEncode(100), Dependencies: []string{"b"}},
	}
	if _, err := c.AddTasks(ctx, chain...); err != nil {
		t.Fatal(err)
	}
	<-running // b runs: a is done

	standby := (lead + 1) % n
	if _, err := pgs[standby].AddTasks(ctx, Task{ID: "x", Type: "sum"}); !errors.Is(err, task.ErrNotLeader) {
		t.Fatalf("a standby's AddTasks: %v, want ErrNotLeader", err)
	}
	if _, err := pgs[standby].Wait(ctx, "a"); !errors.Is(err, task.ErrNotLeader) {
		t.Fatalf("a standby's Wait: %v, want ErrNotLeader", err)
	}

	type outcome struct {
		r   Result
		err error
	}
	waited := make(chan outcome, 1)
	go func() {
		r, err := c.Wait(ctx, "c")
		waited <- outcome{r, err}
	}()
	testutil.Eventually(t, "the producer's wait held by the leader", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		held := 0
		_ = pgs[lead].Manager().View(cctx, func(*task.Tx) error { held = pgs[lead].remoteN; return nil })
		return held > 0
	})

	if err := pgs[lead].Manager().Stop(); err != nil { // the leader goes, b still running
		t.Fatal(err)
	}
	next := leader(lead)
	close(release)

	o := <-waited
	if o.err != nil || intResult(t, o.r) != 111 {
		t.Fatalf("the chain's end after the failover: %+v %v", o.r, o.err)
	}
	if got, err := c.AddTasks(ctx, chain...); err != nil || len(got) != 3 {
		t.Fatalf("the batch sent again: %v %v, want its 3 IDs", got, err)
	}
	if r, err := pgs[next].AddAndExecuteTask(ctx, Task{ID: "d", Type: "sum", Input: MustEncode(1000), Dependencies: []string{"c"}}); err != nil || intResult(t, r) != 1111 {
		t.Fatalf("a task on the new leader, depending on the restored graph: %+v %v", r, err)
	}
	if pr := pgs[next].Progress(); pr.Total != 4 || pr.Finished != 4 || pr.Failed != 0 {
		t.Fatalf("the new leader's progress: %+v, want 4 of 4 finished", pr)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{"a", "b", "c", "d"} {
		if runs[id] != 1 {
			t.Errorf("task %s ran %d times, want once (runs: %v)", id, runs[id], runs)
		}
	}
}
