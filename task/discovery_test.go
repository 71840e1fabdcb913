package task

import (
	"context"
	"testing"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// Workers that know only the workspace ID, its secret and a bootstrap
// address (a plain DHT node, or the manager's own) find the task manager,
// register and run tasks.
func TestWorkersFindTheManagerByWorkspaceID(t *testing.T) {
	t.Parallel()
	ws, secret := "ws-"+t.Name(), "by-id"
	boot, err := peer.NewBootstrap(context.Background(), peer.WithWorkspace(ws), peer.WithSecret(secret),
		peer.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = boot.Close() })
	m := startManager(t, agent.WithSecret(secret), agent.WithBootstrap(boot.Addrs()[0].String()))
	for i, entry := range []string{boot.Addrs()[0].String(), m.Addrs()[0]} {
		a, err := agent.New("finder", loopback, agent.WithWorkspace(ws), agent.WithSecret(secret), agent.WithBootstrap(entry))
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWorker(a)
		if err != nil {
			t.Fatal(err)
		}
		w.Handle("echo", func(_ context.Context, j *Job) ([]byte, error) { return j.Task.Input, nil })
		if err := w.Start(testutil.Context(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop() })
		if err := m.WaitForWorkers(testutil.Context(t), i+1); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		r := runTask(t, m, messages.Task{ID: id, Type: "echo", Description: "echo " + id, Input: []byte(id)})
		if !r.Success || string(r.Output) != id {
			t.Fatalf("task %s: %+v", id, r)
		}
	}
}
