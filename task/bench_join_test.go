package task

import (
	"context"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/peer"
)

// BenchmarkJoinByWorkspaceID measures how long a worker that knows only
// the workspace ID, its secret and a bootstrap address (a plain DHT node
// on loopback) takes from its start until the manager has registered it.
func BenchmarkJoinByWorkspaceID(b *testing.B) {
	ws, secret := "bench-join", "by-id"
	boot, err := peer.NewBootstrap(context.Background(), peer.WithWorkspace(ws), peer.WithSecret(secret),
		peer.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		b.Fatal(err)
	}
	defer boot.Close()
	entry := boot.Addrs()[0].String()
	a, err := agent.New("task_manager", agent.AsAdmin(), loopbackTCP, agent.WithWorkspace(ws), agent.WithSecret(secret), agent.WithBootstrap(entry))
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewManager(a)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	ctx := testutil.Context(b)
	var total, worst time.Duration
	b.ResetTimer()
	for range b.N {
		wa, err := agent.New("finder", loopbackTCP, agent.WithWorkspace(ws), agent.WithSecret(secret), agent.WithBootstrap(entry))
		if err != nil {
			b.Fatal(err)
		}
		w, err := NewWorker(wa)
		if err != nil {
			b.Fatal(err)
		}
		w.Handle("noop", noop)
		start := time.Now()
		if err := w.Start(ctx); err != nil {
			b.Fatal(err)
		}
		if err := m.WaitForWorkers(ctx, 1); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		total += d
		worst = max(worst, d)
		b.StopTimer()
		_ = w.Stop()
		for { // until the manager saw it leave
			n, changed, err := m.workerCount(ctx, true)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			<-changed
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/join")
	b.ReportMetric(float64(worst.Milliseconds()), "max-ms/join")
}
