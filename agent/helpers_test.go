package agent

import (
	"os"
	"testing"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchChildEnv) != "" {
		runBenchChild()
		return
	}
	goleak.VerifyTestMain(m, testutil.LeakOptions()...)
}

var loopback = WithListenAddrs("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1")

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
	if err := a.Start(testutil.Context(t)); err != nil {
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
