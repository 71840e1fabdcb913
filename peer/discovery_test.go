package peer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
)

func newTestBootstrap(t *testing.T, opts ...Option) *Bootstrap {
	t.Helper()
	b, err := NewBootstrap(context.Background(), append([]Option{
		WithListenAddrs("/ip4/127.0.0.1/tcp/0"), WithWorkspace("test"),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// A node that knows only the workspace ID, its secret and a bootstrap
// address finds the workspace's roster server (the task manager) and joins
// it: through a plain bootstrap node that is no member, through the
// server itself, and through another member. A node without the secret
// cannot even reach the bootstrap node.
func TestJoinByWorkspaceID(t *testing.T) {
	t.Parallel()
	secret := WithSecret("found-by-id")
	boot := newTestBootstrap(t, secret)
	bootAddr := boot.Addrs()[0].String()
	srv := newTestNode(t, NopHandler{}, secret, WithServer(true), WithBootstrap(bootAddr))
	viaBoot := newTestNode(t, NopHandler{}, secret, WithBootstrap(bootAddr))
	viaServer := newTestNode(t, NopHandler{}, secret, WithBootstrap(srv.Addrs()[0].String()))
	viaMember := newTestNode(t, NopHandler{}, secret, WithBootstrap(viaBoot.Addrs()[0].String()))
	for name, n := range map[string]*Node{"through the bootstrap node": viaBoot, "through the server": viaServer, "through a member": viaMember} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := srv.WaitPresent(ctx, n.ID()); err != nil {
			t.Fatalf("%s: the server never saw the node: %v (node stats %+v)", name, err, n.Stats())
		}
		if err := n.WaitPresent(ctx, srv.ID()); err != nil {
			t.Fatalf("%s: the node never saw the server: %v", name, err)
		}
		cancel()
		// A connection may come first (the DHT's own); the server is
		// then joined: kept, and redialed when lost.
		testutil.Eventually(t, name+": the server joined", func() bool { return n.isKept(srv.ID()) })
	}
	// Every member learns every other from the server's roster.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := viaMember.WaitMembers(ctx, 3); err != nil {
		t.Fatalf("roster: %v", err)
	}
	if s := viaBoot.Stats(); s.ServersFound == 0 || s.DHTPeers == 0 {
		t.Fatalf("stats do not show the lookup: %+v", s)
	}
	waitStats(t, srv, "the advertisement", func(s Stats) bool { return s.Advertised > 0 })

	// Outsiders: no secret, or another one, reach nothing.
	for _, opts := range [][]Option{nil, {WithSecret("guess")}} {
		out := newTestNode(t, NopHandler{}, opts...)
		cctx, ccancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := out.Connect(cctx, bootAddr)
		ccancel()
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("an outsider reached the bootstrap node: %v", err)
		}
	}
}

// The rendezvous key depends on the secret, so the same workspace ID with
// another secret, or none, is another key, and the key shows neither.
func TestRendezvousKey(t *testing.T) {
	t.Parallel()
	keys := map[string]string{}
	for _, c := range []struct{ ws, secret string }{{"team", ""}, {"team", "sesame"}, {"team", "open sesame"}, {"team2", "sesame"}, {"team\x00", ""}} {
		k := RendezvousKey(c.ws, c.secret)
		if prev, ok := keys[k]; ok {
			t.Fatalf("%q/%q and %s share key %s", c.ws, c.secret, prev, k)
		}
		keys[k] = c.ws + "/" + c.secret
		if strings.Contains(k, "team") || (c.secret != "" && strings.Contains(k, c.secret)) {
			t.Fatalf("key %s shows the workspace or secret", k)
		}
		if RendezvousKey(c.ws, c.secret) != k {
			t.Fatal("key not stable")
		}
	}
}
