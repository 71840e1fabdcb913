package agent

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) != "" {
		runBenchChild()
		return
	}
	if join := os.Getenv(benchWorkersEnv); join != "" {
		runBenchWorkers(join)
		return
	}
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

var loopback = WithListenAddrs("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1")

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startAgent starts an agent with loopback listeners and stops it at the
// end of the test. setup runs before Start (to register handlers).
func startAgent(t *testing.T, name string, setup func(*Agent), opts ...Option) *Agent {
	t.Helper()
	a, err := New(name, append([]Option{loopback, WithWorkspace("ws-" + t.Name())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(a)
	}
	if err := a.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	return a
}

func startAdmin(t *testing.T, name string, setup func(*Agent), opts ...Option) *Agent {
	return startAgent(t, name, setup, append(opts, AsAdmin(), WithRole("admin"))...)
}

func startClient(t *testing.T, name string, admin *Agent, setup func(*Agent), opts ...Option) *Agent {
	return startAgent(t, name, setup, append(opts, WithJoin(admin.Addrs()[0]))...)
}

// cond is a condition variable for tests: record under its lock, then await.
type cond struct {
	mu sync.Mutex
	ch chan struct{}
}

func newCond() *cond { return &cond{ch: make(chan struct{})} }

func (c *cond) update(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn()
	close(c.ch)
	c.ch = make(chan struct{})
}

func (c *cond) await(t *testing.T, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		c.mu.Lock()
		done, ch := ok(), c.ch
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}
