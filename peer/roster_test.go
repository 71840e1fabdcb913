package peer

import (
	"context"
	"testing"
	"time"
)

// Forty members join through one roster server: every member comes to
// know every other without connecting to all of them, the overlay keeps
// each one's connections bounded, and a broadcast reaches everyone over
// the GossipSub mesh that forms among them.
func TestSimRosterConvergesAroundAServer(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		srv := net.node(NopHandler{}, WithServer(true))
		const n = 40
		got := make(chan ID, n)
		var ms []*Node
		for range n {
			h := &broadcastCounter{got: got}
			m := net.node(h)
			h.id = m.ID()
			net.join(m, srv)
			ms = append(ms, m)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, m := range ms {
			if err := m.WaitMembers(ctx, n); err != nil { // the others and the server
				t.Fatalf("%s knows %d members: %v", m.ID(), len(m.Members()), err)
			}
		}
		time.Sleep(20 * time.Second) // let the overlay and the mesh settle
		total, most := 0, 0
		for _, m := range ms {
			c := m.Stats().Conns
			total, most = total+c, max(most, c)
		}
		if mean := float64(total) / n; most > n*2/3 || mean > 2*DefaultOverlayDegree+2 {
			t.Fatalf("connections per member: mean %.1f, max %d (of %d members)", mean, most, n)
		}
		if err := ms[0].Publish(ctx, []byte("hello all")); err != nil {
			t.Fatal(err)
		}
		seen := map[ID]bool{}
		for len(seen) < n-1 {
			select {
			case id := <-got:
				seen[id] = true
			case <-ctx.Done():
				t.Fatalf("the broadcast reached %d of %d", len(seen), n-1)
			}
		}
	})
}

// broadcastCounter reports which node a broadcast reached.
type broadcastCounter struct {
	NopHandler
	got chan<- ID
	id  ID
}

func (b *broadcastCounter) HandleBroadcast(context.Context, ID, []byte) { b.got <- b.id }

// events records presence events, to await them under synctest.
type events struct {
	NopHandler
	ch chan PresenceEvent
}

func newEvents() *events { return &events{ch: make(chan PresenceEvent, 1024)} }

func (e *events) HandlePresence(_ context.Context, ev PresenceEvent) { e.ch <- ev }

// next returns the next event about p, skipping others; it fails the test
// after d.
func (e *events) next(t *testing.T, p ID, d time.Duration) PresenceEvent {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-e.ch:
			if ev.Peer == p {
				return ev
			}
		case <-timeout:
			t.Fatalf("no event about %s within %v", p, d)
		}
	}
}

// drain forgets the events so far.
func (e *events) drain() {
	for {
		select {
		case <-e.ch:
		default:
			return
		}
	}
}

// none fails the test if an event about p comes within d.
func (e *events) none(t *testing.T, p ID, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev := <-e.ch:
			if ev.Peer == p {
				t.Fatalf("unexpected event about %s: %+v", p, ev)
			}
		case <-timeout:
			return
		}
	}
}

// star builds a server and members joined through it, without an overlay
// (so members are not connected to each other).
func star(t *testing.T, net *simNet, n int, h func(i int) Handler, opts ...Option) (*Node, []*Node) {
	srv := net.node(NopHandler{}, append([]Option{WithServer(true)}, opts...)...)
	var ms []*Node
	for i := range n {
		m := net.node(h(i), append([]Option{WithOverlayDegree(0)}, opts...)...)
		net.join(m, srv)
		ms = append(ms, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, m := range ms {
		if err := m.WaitMembers(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	return srv, ms
}

// A member that crashes is seen to leave by members that were never
// connected to it: the server saw its link go (after the leave grace) and
// told everyone.
func TestSimCrashSeenWithoutAConnection(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		ev := newEvents()
		_, ms := star(t, net, 3, func(i int) Handler {
			if i == 0 {
				return ev
			}
			return NopHandler{}
		})
		ev.drain()
		a, b := ms[0], ms[1]
		if a.connected(b.ID()) {
			t.Fatal("a and b are connected")
		}
		start := time.Now()
		_ = b.host.Close() // a crash: no goodbye
		if got := ev.next(t, b.ID(), time.Minute); got.Joined {
			t.Fatalf("event %+v", got)
		}
		if el := time.Since(start); el < DefaultLeaveGrace || el > DefaultLeaveGrace+2*time.Second {
			t.Fatalf("crash seen after %v, want the leave grace (%v) and a delta", el, DefaultLeaveGrace)
		}
		if a.Present(b.ID()) {
			t.Fatal("b still present")
		}
	})
}

// A member that leaves says so: others see it at once, not after the
// leave grace.
func TestSimGoodbyeSeenAtOnce(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		ev := newEvents()
		_, ms := star(t, net, 3, func(i int) Handler {
			if i == 0 {
				return ev
			}
			return NopHandler{}
		})
		ev.drain()
		start := time.Now()
		_ = ms[1].Close()
		if got := ev.next(t, ms[1].ID(), time.Minute); got.Joined {
			t.Fatalf("event %+v", got)
		}
		if el := time.Since(start); el >= DefaultLeaveGrace {
			t.Fatalf("goodbye seen after %v", el)
		}
	})
}

// A member whose process restarts (same identity, new incarnation) is
// seen to leave and join again, even when it is back within the leave
// grace, so whoever kept state about it starts over.
func TestSimRestartIsALeaveAndAJoin(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		ev := newEvents()
		key, _ := GenerateIdentity()
		srv := net.node(NopHandler{}, WithServer(true))
		a := net.node(ev, WithOverlayDegree(0))
		net.join(a, srv)
		b := net.nodeAt(100, key, NopHandler{}, WithOverlayDegree(0))
		net.join(b, srv)
		if got := ev.next(t, b.ID(), time.Minute); !got.Joined {
			t.Fatalf("event %+v", got)
		}
		_ = b.host.Close() // crash
		time.Sleep(100 * time.Millisecond)
		_ = b.Close()
		b2 := net.nodeAt(101, key, NopHandler{}, WithOverlayDegree(0))
		net.join(b2, srv)
		for _, want := range []bool{false, true} {
			if got := ev.next(t, b.ID(), time.Minute); got.Joined != want {
				t.Fatalf("event %+v, want joined=%v", got, want)
			}
		}
		ev.none(t, b.ID(), 10*time.Second)
	})
}

// When the server goes away, what it listed stays for the orphan time;
// when it comes back (same identity) and its members rejoin it, nobody saw
// them leave.
func TestSimServerRestartKeepsTheRoster(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		ev := newEvents()
		key, _ := GenerateIdentity()
		srv := net.nodeAt(200, key, NopHandler{}, WithServer(true))
		var ms []*Node
		a := net.node(ev, WithOverlayDegree(0))
		net.join(a, srv)
		for range 4 {
			m := net.node(NopHandler{}, WithOverlayDegree(0))
			net.join(m, srv)
			ms = append(ms, m)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.WaitMembers(ctx, 5); err != nil {
			t.Fatal(err)
		}
		for range 5 { // the joins of the server and the members
			<-ev.ch
		}
		_ = srv.Close()
		srv2 := net.nodeAt(200, key, NopHandler{}, WithServer(true))
		// Everyone redials it (Join), presents itself and follows again.
		time.Sleep(15 * time.Second)
		if err := a.WaitMembers(ctx, 5); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if !a.Present(m.ID()) {
				t.Fatalf("%s gone", m.ID())
			}
		}
		for {
			select {
			case e := <-ev.ch:
				if e.Peer != srv2.ID() {
					t.Fatalf("a member flapped: %+v", e)
				}
				continue
			default:
			}
			break
		}
		// Without the server, members age out after the orphan time.
		_ = srv2.Close()
		time.Sleep(DefaultOrphanTime + 5*time.Second)
		if n := len(a.Members()); n != 0 {
			t.Fatalf("%d members left after the orphan time without their server", n)
		}
	})
}

// A roster cannot grow past its bound, whatever servers say.
func TestSimRosterBound(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		srv := net.node(NopHandler{}, WithServer(true))
		a := net.node(NopHandler{}, WithOverlayDegree(0), WithMaxMembers(5))
		net.join(a, srv)
		for range 10 {
			m := net.node(NopHandler{}, WithOverlayDegree(0))
			net.join(m, srv)
		}
		time.Sleep(5 * time.Second)
		if n := len(a.Members()); n != 5 {
			t.Fatalf("%d members, bound 5", n)
		}
		if a.Stats().RosterRefused == 0 {
			t.Fatal("refusals not counted")
		}
	})
}

// A node whose connections pass the connection manager's high water mark
// is trimmed back, keeps the roster (it does not come from connections)
// and reaches any member on demand.
func TestSimTrimmedNodeKeepsTheRosterAndDialsOnDemand(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		lim := DefaultLimits()
		lim.ConnsLow, lim.ConnsHigh, lim.GracePeriod = 8, 12, time.Second
		got := make(chan string, 16)
		srv := net.node(NopHandler{}, WithServer(true))
		var ms []*Node
		const n = 30
		for i := range n {
			var h Handler = NopHandler{}
			if i == n-1 {
				h = directRecorder{got}
			}
			m := net.node(h, WithOverlayDegree(0))
			net.join(m, srv)
			ms = append(ms, m)
		}
		x := net.node(NopHandler{}, WithLimits(lim), WithOverlayDegree(0))
		net.join(x, srv)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := x.WaitMembers(ctx, n+1); err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[:n-1] { // connections nobody but GossipSub protects
			if err := x.host.Connect(ctx, peerInfo(Member{ID: m.ID(), Addrs: m.host.Addrs()})); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Minute) // past the grace period and a trim
		// The connection manager trims unprotected connections down to
		// the low water mark; GossipSub protects its mesh, the node its
		// joined server.
		unprotected := 0
		for _, p := range x.host.Network().Peers() {
			if !x.host.ConnManager().IsProtected(p, "") {
				unprotected++
			}
		}
		if c := x.Stats().Conns; unprotected > lim.ConnsLow || c >= n {
			t.Fatalf("%d connections, %d of them unprotected (low water %d)", c, unprotected, lim.ConnsLow)
		}
		if !x.connected(srv.ID()) {
			t.Fatal("the joined server was trimmed")
		}
		if k := len(x.Members()); k != n+1 {
			t.Fatalf("roster of %d after trimming", k)
		}
		last := ms[n-1]
		if x.connected(last.ID()) {
			t.Fatal("already connected")
		}
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		if err := x.Send(sctx, last.ID(), []byte("dialed on demand")); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "dialed on demand" {
			t.Fatal(s)
		}
	})
}

// A direct stream idle for the idle timeout is closed (and its
// connection may be trimmed); the next Send opens a new one.
func TestSimIdleStreamsAreRetired(t *testing.T) {
	onSimNet(t, func(t *testing.T, net *simNet) {
		got := make(chan string, 16)
		srv := net.node(directRecorder{got}, WithServer(true))
		a := net.node(NopHandler{}, WithIdleTimeout(time.Second), WithOverlayDegree(0))
		net.join(a, srv)
		ctx := context.Background()
		if err := a.Send(ctx, srv.ID(), []byte("one")); err != nil {
			t.Fatal(err)
		}
		<-got
		time.Sleep(3 * time.Second)
		if a.Stats().IdleClosed == 0 {
			t.Fatal("idle stream not closed")
		}
		if err := a.Send(ctx, srv.ID(), []byte("two")); err != nil {
			t.Fatal(err)
		}
		if s := <-got; s != "two" {
			t.Fatal(s)
		}
	})
}

// directRecorder hands on the direct frames it gets.
type directRecorder struct{ got chan<- string }

func (directRecorder) HandlePresence(context.Context, PresenceEvent)       {}
func (d directRecorder) HandleDirect(_ context.Context, _ ID, data []byte) { d.got <- string(data) }
func (directRecorder) HandleBroadcast(context.Context, ID, []byte)         {}
