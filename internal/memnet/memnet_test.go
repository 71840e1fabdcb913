package memnet_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder keeps what a node hears, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(s string) { r.mu.Lock(); r.events = append(r.events, s); r.mu.Unlock() }
func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}
func (r *recorder) HandlePresence(_ context.Context, ev peer.PresenceEvent) {
	r.add(fmt.Sprintf("presence %v", ev.Joined))
}
func (r *recorder) HandleDirect(_ context.Context, _ peer.ID, data []byte) {
	r.add("direct " + string(data))
}
func (r *recorder) HandleBroadcast(_ context.Context, _ peer.ID, data []byte) {
	r.add("broadcast " + string(data))
}

func start(t *testing.T, net *memnet.Network, server bool) (agent.Network, *recorder) {
	t.Helper()
	key, err := peer.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	n, err := net.Factory()(context.Background(), agent.NetworkConfig{Key: key, Workspace: "w", Handler: rec, Server: server})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n, rec
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
}

// Joins come before frames, frames in order, leaves on a cut and on
// Close; sends to a node not present fail with peer.ErrNotPresent; a
// delay holds every frame back by that much (virtual time).
func TestOrderPresenceCutsAndDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New()
		srv, rs := start(t, net, true)
		cl, rc := start(t, net, false)
		if err := cl.Send(context.Background(), srv.ID(), []byte("early")); !errors.Is(err, peer.ErrNotPresent) {
			t.Fatalf("send before joining: %v", err)
		}
		if _, err := cl.Join(context.Background(), srv.Addrs()[0].String()); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := cl.Send(context.Background(), srv.ID(), fmt.Append(nil, i)); err != nil {
				t.Fatal(err)
			}
		}
		_ = srv.Publish(context.Background(), []byte("all"))
		synctest.Wait()
		equal(t, "server", rs.list(), []string{"presence true", "direct 0", "direct 1", "direct 2"})
		equal(t, "client", rc.list(), []string{"presence true", "broadcast all"})

		net.Cut(cl.ID(), srv.ID())
		if err := cl.Send(context.Background(), srv.ID(), []byte("cut")); !errors.Is(err, peer.ErrNotPresent) {
			t.Fatalf("send across a cut: %v", err)
		}
		net.Heal(cl.ID(), srv.ID())
		net.SetDelay(time.Second)
		start := time.Now()
		if err := cl.Send(context.Background(), srv.ID(), []byte("late")); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := rs.list(); len(got) != 6 {
			t.Fatalf("delivered before the delay: %q", got)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if time.Since(start) != time.Second {
			t.Fatal("virtual time is off")
		}
		equal(t, "server after the cut", rs.list()[4:], []string{"presence false", "presence true", "direct late"})
		net.SetDelay(0)
		_ = cl.Close()
		synctest.Wait()
		equal(t, "server after close", rs.list()[7:], []string{"presence false"})
	})
}

// DropNext loses exactly the frames of the kind asked for.
func TestDropNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New()
		srv, rs := start(t, net, true)
		cl, _ := start(t, net, false)
		if _, err := cl.Join(context.Background(), srv.Addrs()[0].String()); err != nil {
			t.Fatal(err)
		}
		net.DropNext(messages.TaskResult{}.Kind(), 1)
		for i, m := range []messages.Message{messages.TaskResult{TaskID: "a"}, messages.TaskResult{TaskID: "b"}, messages.Heartbeat{}} {
			env, err := messages.NewEnvelope(uint64(i+1), cl.ID().String(), m)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.Send(context.Background(), srv.ID(), env.Encode()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if got := rs.list(); len(got) != 3 { // the join and two frames
			t.Fatalf("heard %d things: %q", len(got), got)
		}
	})
}
