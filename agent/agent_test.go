package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

type note struct {
	Text string `msgpack:"text"`
	N    int    `msgpack:"n"`
}

func (note) Kind() string { return "test.note" }

type echo struct {
	Text string `msgpack:"text"`
}

func (echo) Kind() string { return "test.echo" }

func TestEveryAgentSeesEveryOther(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	seen := map[string]map[string]AgentDetail{} // observer -> name -> detail
	watch := func(a *Agent) {
		a.OnConnect(func(ctx Context, who AgentDetail) {
			c.Update(func() {
				if seen[a.Name()] == nil {
					seen[a.Name()] = map[string]AgentDetail{}
				}
				seen[a.Name()][who.Name] = who
			})
		})
	}
	admin := startAdmin(t, "boss", watch)
	var clients []*Agent
	for i := range 3 {
		clients = append(clients, startClient(t, fmt.Sprintf("worker-%d", i), admin, watch, WithRole("worker")))
	}
	all := append([]*Agent{admin}, clients...)
	c.Await(t, "everyone sees everyone", 10*time.Second, func() bool {
		for _, a := range all {
			if len(seen[a.Name()]) != len(all)-1 {
				return false
			}
		}
		return true
	})
	c.Lock()
	defer c.Unlock()
	for _, obs := range all {
		for _, other := range all {
			if other == obs {
				continue
			}
			got := seen[obs.Name()][other.Name()]
			want := other.Detail()
			if got.ID != want.ID || got.Role != want.Role || got.Mode != want.Mode {
				t.Errorf("%s sees %s as %+v, want %+v", obs.Name(), other.Name(), got, want)
			}
		}
		if n := len(obs.ConnectedAgents()); n != len(all)-1 {
			t.Errorf("%s.ConnectedAgents() has %d agents", obs.Name(), n)
		}
	}
}

func TestSendReachesOnlyAddressee(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	got := map[string][]string{}
	recv := func(a *Agent) {
		a.OnConnect(func(Context, AgentDetail) { c.Update(func() {}) })
		On(a, func(ctx Context, m note) error {
			c.Update(func() { got[a.Name()] = append(got[a.Name()], fmt.Sprintf("%s:%s", ctx.Sender().Name, m.Text)) })
			return nil
		})
	}
	admin := startAdmin(t, "admin", recv)
	b := startClient(t, "b", admin, recv)
	x := startClient(t, "x", admin, recv)
	ctx := testutil.Context(t)
	c.Await(t, "x and b connected", 10*time.Second, func() bool {
		return len(x.ConnectedAgents()) == 2 && len(b.ConnectedAgents()) == 2
	})

	if err := admin.Send(ctx, b.ID(), note{Text: "secret"}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Broadcast(ctx, note{Text: "all"}); err != nil {
		t.Fatal(err)
	}
	c.Await(t, "broadcast at b and x", 10*time.Second, func() bool {
		return slices.Contains(got["b"], "admin:all") && slices.Contains(got["x"], "admin:all")
	})
	c.Await(t, "direct at b", 10*time.Second, func() bool { return slices.Contains(got["b"], "admin:secret") })
	// Messages from admin to x arrive in order, so once x has the marker
	// sent after the secret, x would have had the secret too.
	if err := admin.Send(ctx, x.ID(), note{Text: "marker"}); err != nil {
		t.Fatal(err)
	}
	c.Await(t, "marker at x", 10*time.Second, func() bool { return slices.Contains(got["x"], "admin:marker") })
	c.Lock()
	defer c.Unlock()
	if slices.Contains(got["x"], "admin:secret") {
		t.Fatalf("third agent saw a direct message: %v", got["x"])
	}
	if len(got["admin"]) != 0 {
		t.Fatalf("broadcaster received its own broadcast: %v", got["admin"])
	}
}

func TestTenThousandInOrder(t *testing.T) {
	t.Parallel()
	const N = 10000
	c := testutil.NewCond()
	var ns []int
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error {
			c.Update(func() { ns = append(ns, m.N) })
			return nil
		})
	})
	client := startClient(t, "client", admin, nil)
	ctx := testutil.Context(t)
	for i := range N {
		if err := client.Send(ctx, admin.ID(), note{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	c.Await(t, "all messages", 20*time.Second, func() bool { return len(ns) == N })
	for i, n := range ns {
		if n != i {
			t.Fatalf("message %d carried %d: out of order", i, n)
		}
	}
}

func TestStoppedAgentSeenDisconnectedQuickly(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	var gone []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		a.OnDisconnect(func(ctx Context, who AgentDetail) { c.Update(func() { gone = append(gone, who.Name) }) })
	})
	client := startClient(t, "leaver", admin, nil)
	c.Await(t, "connected", 10*time.Second, func() bool { return len(admin.ConnectedAgents()) == 1 })
	if err := client.Stop(); err != nil {
		t.Fatal(err)
	}
	c.Await(t, "disconnect seen", 2*time.Second, func() bool { return slices.Equal(gone, []string{"leaver"}) })
	if n := len(admin.ConnectedAgents()); n != 0 {
		t.Fatalf("admin still lists %d agents", n)
	}
}

// echoPair starts an admin that answers every echo with "re: " and its
// text, and a client of it that decodes the answers.
func echoPair(t *testing.T) (admin, client *Agent) {
	t.Helper()
	admin = startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m echo) error { return ctx.Reply(echo{Text: "re: " + m.Text}) })
	})
	client = startClient(t, "client", admin, func(a *Agent) {
		if err := RegisterKind[echo](a); err != nil {
			t.Fatal(err)
		}
	})
	return admin, client
}

func TestRequestReply(t *testing.T) {
	t.Parallel()
	admin, client := echoPair(t)
	ctx := testutil.Context(t)
	for i := range 100 {
		r, err := client.Request(ctx, admin.ID(), echo{Text: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.(echo).Text; got != fmt.Sprintf("re: %d", i) {
			t.Fatalf("reply %q", got)
		}
	}
	// A request nobody answers ends with its context.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := client.Request(short, admin.ID(), note{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered request: %v", err)
	}
}

func TestHandlerErrorsAndPanicsAreSurvived(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	var texts []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error {
			switch m.Text {
			case "panic":
				panic("boom")
			case "fail":
				return errors.New("no")
			}
			c.Update(func() { texts = append(texts, m.Text) })
			return nil
		})
	})
	client := startClient(t, "client", admin, nil)
	ctx := testutil.Context(t)
	for _, s := range []string{"panic", "fail", "ok"} {
		if err := client.Send(ctx, admin.ID(), note{Text: s}); err != nil {
			t.Fatal(err)
		}
	}
	c.Await(t, "the message after a panic", 10*time.Second, func() bool { return len(texts) == 1 })
	st := admin.Stats()
	if st.HandlerPanics != 1 || st.HandlerErrors != 1 || st.Received != 3 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestBadInputIsCountedAndDropped(t *testing.T) {
	t.Parallel()
	c := testutil.NewCond()
	var texts []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error {
			c.Update(func() { texts = append(texts, m.Text) })
			return nil
		})
	})
	client := startClient(t, "client", admin, nil)
	ctx := testutil.Context(t)
	node := client.Node()
	pid := admin.Node().ID()

	unknown := messages.Envelope{ID: 1, Kind: "nobody.handles.this", From: client.ID(), Body: []byte{0xc0}}
	badBody := messages.Envelope{ID: 2, Kind: note{}.Kind(), From: client.ID(), Body: []byte{0xc1}}
	spoofed := messages.Envelope{ID: 3, Kind: note{}.Kind(), From: admin.ID(), Body: []byte{0x80}}
	for _, frame := range [][]byte{
		[]byte("garbage, not msgpack"),
		unknown.Encode(),
		badBody.Encode(),
		spoofed.Encode(),
	} {
		if err := node.Send(ctx, pid, frame); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Send(ctx, admin.ID(), note{Text: "still works"}); err != nil {
		t.Fatal(err)
	}
	c.Await(t, "a good message after bad ones", 10*time.Second, func() bool { return len(texts) == 1 })
	st := admin.Stats()
	if st.DroppedBad != 2 || st.DroppedUnknown != 1 || st.DroppedSpoofed != 1 {
		t.Fatalf("stats: %+v", st)
	}
	// A message over the frame limit fails at the sender, by name.
	big := note{Text: string(make([]byte, 5<<20))}
	if err := client.Send(ctx, admin.ID(), big); err == nil || !errors.Is(err, peer.ErrFrameTooLarge) {
		t.Fatalf("oversized send: %v", err)
	}
}

func TestLifecycleErrors(t *testing.T) {
	t.Parallel()
	a, err := New("c", loopback)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send(context.Background(), "x", note{}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("send before start: %v", err)
	}
	if err := a.Start(context.Background()); !errors.Is(err, ErrNoJoinAddress) {
		t.Fatalf("client without join: %v", err)
	}
	if _, err := New("c", WithJoin("/ip4/127.0.0.1/tcp/1")); err == nil {
		t.Fatal("join address without /p2p accepted")
	}
	admin := startAdmin(t, "admin", nil)
	if err := admin.Start(context.Background()); !errors.Is(err, ErrAlreadyStarted) {
		t.Fatalf("second start: %v", err)
	}
	if err := admin.Send(context.Background(), "not-an-id", note{}); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("bad id: %v", err)
	}
	if err := OnSafely(admin, func(Context, note) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := OnSafely(admin, func(Context, note) error { return nil }); !errors.Is(err, ErrDuplicateHandler) {
		t.Fatalf("duplicate handler: %v", err)
	}
	_ = admin.Stop()
	if err := admin.Send(context.Background(), admin.ID(), note{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("send after stop: %v", err)
	}
}

// A burst of broadcasts arrives whole: GossipSub's queues are raised and
// nothing is rejected (each publication owns its bytes: a shared buffer
// once made every signature but the first invalid).
func TestBroadcastBurstArrives(t *testing.T) {
	t.Parallel()
	const N = 2500 // more than twice the GossipSub queue (1024)
	c := testutil.NewCond()
	got := 0
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error { c.Update(func() { got++ }); return nil })
	})
	client := startClient(t, "c", admin, nil)
	ctx := testutil.Context(t)
	for i := range N {
		if err := client.Broadcast(ctx, note{N: i}); err != nil {
			t.Fatal(err)
		}
	}
	c.Await(t, "every broadcast", 20*time.Second, func() bool { return got == N })
	if st := admin.Node().Stats(); st.GossipRejected != 0 || st.GossipDropped != 0 {
		t.Fatalf("gossip drops: %+v", st)
	}
}

// Stop during Start cancels the start (here a client retrying an admin
// that is not there), and everything is released.
func TestStopDuringStart(t *testing.T) {
	t.Parallel()
	key, _ := peer.GenerateIdentity()
	id, _ := peer.IDFromKey(key)
	nowhere := "/ip4/127.0.0.1/tcp/1/p2p/" + id.String()
	a, err := New("client", loopback, WithJoin(nowhere))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- a.Start(context.Background()) }()
	testutil.Eventually(t, "the agent joining", func() bool { return a.Node() != nil })
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-started:
		if err == nil {
			t.Fatal("Start succeeded after Stop")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return after Stop")
	}
	if err := a.Start(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("restart after stop: %v", err)
	}
}

func TestRequestToSelfAndLateReplies(t *testing.T) {
	t.Parallel()
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m echo) error {
			if m.Text == "slow" {
				time.Sleep(100 * time.Millisecond)
			}
			return ctx.Reply(echo{Text: "re: " + m.Text})
		})
	})
	ctx := testutil.Context(t)
	r, err := admin.Request(ctx, admin.ID(), echo{Text: "me"})
	if err != nil || r.(echo).Text != "re: me" {
		t.Fatalf("request to self: %v %v", r, err)
	}
	client := startClient(t, "client", admin, func(a *Agent) { _ = RegisterKind[echo](a) })
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := client.Request(short, admin.ID(), echo{Text: "slow"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow request: %v", err)
	}
	// The answer still comes, and is counted as late, not as unknown.
	if _, err := client.Request(ctx, admin.ID(), echo{Text: "after"}); err != nil {
		t.Fatal(err)
	}
	if st := client.Stats(); st.DroppedLate != 1 || st.DroppedUnknown != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

// An empty secret leaves the workspace open: an agent without one joins.
func TestEmptySecretIsOpen(t *testing.T) {
	t.Parallel()
	admin := startAdmin(t, "admin", nil, WithSecret(""))
	startClient(t, "guest", admin, nil)
}

// A pending reply answers Wait again with what it returned the first
// time, and a cancelled one fails instead of waiting for ever.
func TestPendingReplyWaitAgainAndCancel(t *testing.T) {
	t.Parallel()
	admin, client := echoPair(t)
	ctx := testutil.Context(t)
	p, err := client.StartRequest(ctx, admin.ID(), echo{Text: "ping"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Wait(ctx)
	if err != nil || again != first || first.(echo).Text != "re: ping" {
		t.Fatalf("second Wait: %v %v, first %v", again, err, first)
	}
	q, err := client.StartRequest(ctx, admin.ID(), note{Text: "unanswered"})
	if err != nil {
		t.Fatal(err)
	}
	q.Cancel()
	if _, err := q.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait after Cancel: %v", err)
	}
}
