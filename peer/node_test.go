package peer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recorder is a Handler that records everything, with a channel to await
// conditions.
type recorder struct {
	mu       sync.Mutex
	events   []PresenceEvent
	direct   map[ID][][]byte
	bcast    [][]byte
	changed  chan struct{}
	blockDir chan struct{} // when non-nil, HandleDirect waits on it
}

func newRecorder() *recorder {
	return &recorder{direct: map[ID][][]byte{}, changed: make(chan struct{})}
}

func (r *recorder) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) HandlePresence(_ context.Context, ev PresenceEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	r.notify()
}

func (r *recorder) HandleDirect(ctx context.Context, from ID, data []byte) {
	if r.blockDir != nil {
		select {
		case <-r.blockDir:
		case <-ctx.Done():
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.direct[from] = append(r.direct[from], data)
	r.notify()
}

func (r *recorder) HandleBroadcast(_ context.Context, from ID, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bcast = append(r.bcast, data)
	r.notify()
}

// await waits until cond (called with r.mu held) holds.
func (r *recorder) await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	r.awaitWithin(t, what, 10*time.Second, cond)
}

// awaitWithin is await with a deadline of d.
func (r *recorder) awaitWithin(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		r.mu.Lock()
		ok, ch := cond(), r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func newTestNode(t *testing.T, h Handler, opts ...Option) *Node {
	t.Helper()
	opts = append([]Option{
		WithListenAddrs("/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"),
		WithHandler(h), WithWorkspace("test"),
	}, opts...)
	n, err := New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func connect(t *testing.T, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, b.Addrs()[0].String()); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitPresent(ctx, a.ID()); err != nil {
		t.Fatal(err)
	}
}

func TestSendInOrderAndPresence(t *testing.T) {
	t.Parallel()
	ra, rb := newRecorder(), newRecorder()
	a := newTestNode(t, ra, WithMeta([]byte("A")))
	b := newTestNode(t, rb, WithMeta([]byte("B")))
	connect(t, a, b)

	ctx := context.Background()
	const N = 10000
	for i := range N {
		if err := a.Send(ctx, b.ID(), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	rb.await(t, "all frames", func() bool { return len(rb.direct[a.ID()]) == N })
	for i, f := range rb.direct[a.ID()] {
		if string(f) != fmt.Sprint(i) {
			t.Fatalf("frame %d = %q: out of order", i, f)
		}
	}
	rb.mu.Lock()
	if len(rb.events) != 1 || !rb.events[0].Joined || string(rb.events[0].Meta) != "A" {
		t.Fatalf("b's presence events: %+v", rb.events)
	}
	rb.mu.Unlock()

	// A leaving is seen by B at once.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	rb.await(t, "leave", func() bool { return len(rb.events) == 2 && !rb.events[1].Joined })
	if b.Present(a.ID()) {
		t.Fatal("a still present after close")
	}
}

func TestBroadcast(t *testing.T) {
	t.Parallel()
	ra, rb, rc := newRecorder(), newRecorder(), newRecorder()
	a, b, c := newTestNode(t, ra, WithServer(true)), newTestNode(t, rb), newTestNode(t, rc)
	connect(t, b, a)
	connect(t, c, a)
	// c learns b from a's roster, without a connection to b.
	rc.await(t, "c sees b", func() bool { return c.Present(b.ID()) })

	if err := a.Publish(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{rb, rc} {
		r.await(t, "broadcast", func() bool { return len(r.bcast) == 1 && string(r.bcast[0]) == "hello" })
	}
	ra.mu.Lock()
	if len(ra.bcast) != 0 {
		t.Fatal("publisher received its own broadcast")
	}
	ra.mu.Unlock()
	big := make([]byte, DefaultMaxBroadcastSize+1)
	if err := a.Publish(context.Background(), big); !errors.Is(err, ErrBroadcastTooLarge) {
		t.Fatalf("oversized broadcast: %v", err)
	}
}

func TestFrameLimits(t *testing.T) {
	t.Parallel()
	ra, rb := newRecorder(), newRecorder()
	a := newTestNode(t, ra)
	b := newTestNode(t, rb, WithMaxFrameSize(4096))
	connect(t, a, b)
	ctx := context.Background()

	if err := b.Send(ctx, a.ID(), make([]byte, 5000)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized send: %v", err)
	}
	// a's limit is larger, so a sends a frame b must drop; then a normal one.
	if err := a.Send(ctx, b.ID(), make([]byte, 5000)); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, b.ID(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	rb.await(t, "frame after the oversized one", func() bool {
		f := rb.direct[a.ID()]
		return len(f) == 1 && string(f[0]) == "after"
	})
	if s := b.Stats(); s.DroppedOversize != 1 {
		t.Fatalf("DroppedOversize = %d, want 1", s.DroppedOversize)
	}
}

// evilStream opens a raw stream to b on the direct protocol from a fresh
// node, bypassing the node's own hello.
func evilStream(t *testing.T, b *Node) (*Node, interface {
	Write([]byte) (int, error)
	Reset() error
}) {
	t.Helper()
	evil := newTestNode(t, NopHandler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ai, _ := ParseAddr(b.Addrs()[0].String())
	if err := evil.Host().Connect(ctx, ai); err != nil {
		t.Fatal(err)
	}
	s, err := evil.Host().NewStream(ctx, b.ID(), ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	return evil, s
}

// waitFor polls cond (for state no event announces) until it holds.
// waitStats waits until ok holds for n's stats, showing them on failure.
func waitStats(t *testing.T, n *Node, what string, ok func(Stats) bool) {
	t.Helper()
	testutil.EventuallyShow(t, what, func() bool { return ok(n.Stats()) }, func() string { return fmt.Sprintf("stats %+v", n.Stats()) })
}

func TestGarbageStreams(t *testing.T) {
	t.Parallel()
	rb := newRecorder()
	b := newTestNode(t, rb)

	// Garbage instead of a hello: refused, and the peer is banned.
	evil1, s1 := evilStream(t, b)
	_, _ = s1.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff})
	waitStats(t, b, "garbage hello", func(s Stats) bool { return s.HandshakeFailures == 1 && s.Bans == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := evil1.Connect(ctx, b.Addrs()[0].String()); err == nil {
		t.Fatal("banned peer connected again")
	}

	// A hello for another workspace: refused, not banned (misconfigured).
	_, s2 := evilStream(t, b)
	_, _ = s2.Write(appendFrame(nil, frameHello, encodeHello(hello{Version: protocolVersion, Workspace: "other"})))
	waitStats(t, b, "foreign hello", func(s Stats) bool { return s.HandshakeFailures == 2 && s.Bans == 1 })

	// A valid hello, an unknown frame type, a good frame, then a ~4 GiB
	// length: the good frame arrives, the rest is counted, the peer banned.
	evil3, s3 := evilStream(t, b)
	w := bufio.NewWriter(s3.(io.Writer))
	_, _ = w.Write(appendFrame(nil, frameHello, encodeHello(hello{Version: protocolVersion, Workspace: "test", Self: record{ID: []byte(evil3.ID()), Inc: 1}})))
	_, _ = w.Write(appendFrame(nil, 99, []byte("??")))
	_, _ = w.Write(appendFrame(nil, frameData, []byte("ok")))
	_, _ = w.Write([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	_ = w.Flush()
	rb.await(t, "the good frame", func() bool { return len(rb.direct[evil3.ID()]) == 1 })
	waitStats(t, b, "oversized frame", func(s Stats) bool {
		return s.DroppedUnknown == 1 && s.DroppedOversize == 1 && s.StreamResets == 1 && s.Bans == 2
	})

	// b keeps serving honest peers.
	a := newTestNode(t, newRecorder())
	connect(t, a, b)
	if err := a.Send(context.Background(), b.ID(), []byte("still here")); err != nil {
		t.Fatal(err)
	}
	rb.await(t, "honest frame", func() bool { return len(rb.direct[a.ID()]) == 1 })
}

func TestTooManyBadFramesBans(t *testing.T) {
	t.Parallel()
	b := newTestNode(t, newRecorder(), WithMaxBadFrames(3))
	evil, s := evilStream(t, b)
	frames := appendFrame(nil, frameHello, encodeHello(hello{Version: protocolVersion, Workspace: "test", Self: record{ID: []byte(evil.ID()), Inc: 1}}))
	for range 10 {
		frames = appendFrame(frames, 42, nil)
	}
	_, _ = s.Write(frames)
	waitStats(t, b, "ban after bad frames", func(s Stats) bool { return s.Bans == 1 && s.DroppedUnknown >= 3 })
}

// With a workspace secret, a node without it, or with another one, cannot
// connect at all, while nodes that share it work as usual.
func TestSecretKeepsOutsidersOut(t *testing.T) {
	t.Parallel()
	ra, rb := newRecorder(), newRecorder()
	a := newTestNode(t, ra, WithSecret("s3cret"))
	b := newTestNode(t, rb, WithSecret("s3cret"))
	connect(t, b, a)
	for _, a := range a.Addrs() {
		if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
			t.Fatalf("a private node listens on QUIC: %v", a)
		}
	}
	for _, opts := range [][]Option{nil, {WithSecret("wrong")}} {
		intruder := newTestNode(t, NopHandler{}, opts...)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := intruder.Connect(ctx, a.Addrs()[0].String())
		cancel()
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("intruder (%v) connected or got an unhelpful error: %v", opts, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
		err = intruder.Send(ctx, a.ID(), []byte("let me in"))
		cancel()
		if err == nil {
			t.Fatal("intruder sent a frame")
		}
	}
	if err := b.Send(context.Background(), a.ID(), []byte("member")); err != nil {
		t.Fatal(err)
	}
	ra.await(t, "member's frame", func() bool { return len(ra.direct[b.ID()]) == 1 })
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if len(ra.direct) != 1 || len(ra.events) != 1 {
		t.Fatalf("a heard from someone else: %d senders, events %+v", len(ra.direct), ra.events)
	}
}

func TestBackPressure(t *testing.T) {
	t.Parallel()
	rb := newRecorder()
	rb.blockDir = make(chan struct{})
	a := newTestNode(t, NopHandler{}, WithSendQueue(64<<10))
	b := newTestNode(t, rb)
	connect(t, a, b)
	// b's handler is blocked: a's sends fill the stream window and then a's
	// queue, and Send blocks until its context ends instead of dropping.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	frame := make([]byte, 16<<10)
	sent := 0
	var err error
	for ; sent < 100000; sent++ {
		if err = a.Send(ctx, b.ID(), frame); err != nil {
			break
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send never blocked: sent %d, err %v", sent, err)
	}
	close(rb.blockDir)
	rb.await(t, "every accepted frame", func() bool { return len(rb.direct[a.ID()]) == sent })
}

func TestConnectWrongWorkspace(t *testing.T) {
	t.Parallel()
	a := newTestNode(t, NopHandler{})
	b := newTestNode(t, NopHandler{}, WithWorkspace("other"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := a.Connect(ctx, b.Addrs()[0].String())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("connect to another workspace: %v", err)
	}
	if _, err := a.Connect(ctx, "/ip4/127.0.0.1/tcp/1"); !errors.Is(err, ErrBadAddress) {
		t.Fatalf("address without /p2p: %v", err)
	}
}

// The frame limit holds to the byte, both ways: a payload of exactly
// MaxFrameSize goes through, one byte more is refused at the sender; a
// frame of exactly the limit is read, one byte more is dropped.
func TestFrameLimitBoundaries(t *testing.T) {
	t.Parallel()
	const max = 4096
	ra, rb := newRecorder(), newRecorder()
	a := newTestNode(t, ra, WithMaxFrameSize(max))
	b := newTestNode(t, rb, WithMaxFrameSize(max))
	connect(t, a, b)
	ctx := context.Background()
	if a.MaxFrameSize() != max-1 {
		t.Fatalf("MaxFrameSize %d", a.MaxFrameSize())
	}
	if err := a.Send(ctx, b.ID(), make([]byte, max-1)); err != nil {
		t.Fatalf("payload at the limit: %v", err)
	}
	if err := a.Send(ctx, b.ID(), make([]byte, max)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("payload one byte over: %v", err)
	}
	rb.await(t, "the frame at the limit", func() bool { return len(rb.direct[a.ID()]) == 1 })

	// Inbound, from a peer whose own limit is larger.
	evil, s := evilStream(t, b)
	frames := appendFrame(nil, frameHello, encodeHello(hello{Version: protocolVersion, Workspace: "test", Self: record{ID: []byte(evil.ID()), Inc: 1}}))
	frames = appendFrame(frames, frameData, make([]byte, max-1)) // length max: read
	frames = appendFrame(frames, frameData, make([]byte, max))   // length max+1: dropped
	frames = appendFrame(frames, frameData, []byte("after"))
	if _, err := s.Write(frames); err != nil {
		t.Fatal(err)
	}
	rb.await(t, "the frames around the limit", func() bool {
		got := rb.direct[evil.ID()]
		return len(got) > 0 && string(got[len(got)-1]) == "after"
	})
	if got := rb.direct[evil.ID()]; len(got) != 2 || len(got[0]) != max-1 {
		t.Fatalf("received %d frames, the first of %d bytes", len(got), len(got[0]))
	}
	if st := b.Stats(); st.DroppedOversize != 1 {
		t.Fatalf("DroppedOversize %d", st.DroppedOversize)
	}
}
