package agent

// Benchmarks between two agents in two OS processes on loopback. The test
// binary re-executes itself as the far agent (see TestMain's child hook).

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
)

const benchChildEnv = "CEYLON_BENCH_CHILD"

type benchPing struct {
	Seq uint64 `msgpack:"s"`
}

func (benchPing) Kind() string { return "bench.ping" }

type benchPong struct {
	Seq uint64 `msgpack:"s"`
}

func (benchPong) Kind() string { return "bench.pong" }

type benchExpect struct {
	N uint64 `msgpack:"n"`
}

func (benchExpect) Kind() string { return "bench.expect" }

type benchDone struct {
	Got uint64 `msgpack:"got"`
}

func (benchDone) Kind() string { return "bench.done" }

type benchBPing struct {
	Seq uint64 `msgpack:"s"`
	Tag uint64 `msgpack:"t"`
}

func (benchBPing) Kind() string { return "bench.bping" }

type benchBPong struct {
	Seq uint64 `msgpack:"s"`
	Tag uint64 `msgpack:"t"`
}

func (benchBPong) Kind() string { return "bench.bpong" }

// runBenchChild is the far agent: it counts one-way messages, answers
// requests and echoes broadcasts. It prints its address, then serves until
// its stdin closes.
func runBenchChild() {
	defer testutil.ProfileChild()()
	a, err := New("far", AsAdmin(), loopbackTCP, WithWorkspace("bench"))
	if err != nil {
		panic(err)
	}
	var expect, got uint64
	var client string
	var idle func() bool
	check := func(ctx Context) {
		if expect > 0 && got >= expect {
			_ = ctx.Agent().Send(ctx, client, benchDone{Got: got})
			expect = 0
		}
	}
	On(a, func(ctx Context, m benchExpect) error {
		expect, got, client = m.N, 0, ctx.Sender().ID
		if err := ctx.Reply(m); err != nil { // the sender starts after this ack
			return err
		}
		if idle != nil {
			idle()
		}
		// Broadcasts may be lost: report what arrived once they stop coming.
		var last uint64
		var tick func()
		tick = func() {
			if expect == 0 {
				return
			}
			if got == last {
				_ = a.Send(a.Context(), client, benchDone{Got: got})
				expect = 0
				return
			}
			last = got
			idle = a.After(time.Second, tick)
		}
		idle = a.After(time.Second, tick)
		return nil
	})
	On(a, func(ctx Context, m benchPing) error {
		got++
		check(ctx)
		return nil
	})
	On(a, func(ctx Context, m benchPong) error { return ctx.Reply(m) }) // request/reply
	On(a, func(ctx Context, m benchBPing) error {
		if m.Tag == 0 {
			got++
			check(ctx)
			return nil
		}
		return ctx.Agent().Broadcast(ctx, benchBPong(m))
	})
	if err := a.Start(context.Background()); err != nil {
		panic(err)
	}
	// A plain TCP echo server: the floor a round trip between these two
	// processes cannot beat on this machine (see BenchmarkTCPFloorRoundTrip).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	fmt.Println("TCP", l.Addr())
	fmt.Println("ADDR", a.Addrs()[0])
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = a.Stop()
}

var loopbackTCP = WithListenAddrs("/ip4/127.0.0.1/tcp/0")

// benchPair starts the far agent in a child process and a near agent here.
type benchPair struct {
	near  *Agent
	farID string
	done  chan uint64
	mu    sync.Mutex
	bwait map[uint64]chan struct{}
	tcp   string
	cmd   *exec.Cmd
	stdin interface{ Close() error }
}

func startBenchPair(b *testing.B) *benchPair {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &benchPair{cmd: cmd, stdin: stdin, done: make(chan uint64, 1), bwait: map[uint64]chan struct{}{}}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	var addr string
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "TCP "); ok {
			p.tcp = s
		}
		if s, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			addr = s
			break
		}
	}
	if addr == "" {
		b.Fatal("child printed no address")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	near, err := New("near", loopbackTCP, WithWorkspace("bench"), WithJoin(addr))
	if err != nil {
		b.Fatal(err)
	}
	if err := RegisterKind[benchPong](near); err != nil {
		b.Fatal(err)
	}
	if err := RegisterKind[benchExpect](near); err != nil {
		b.Fatal(err)
	}
	On(near, func(ctx Context, m benchDone) error { p.done <- m.Got; return nil })
	On(near, func(ctx Context, m benchBPong) error {
		p.mu.Lock()
		ch := p.bwait[m.Tag<<32|m.Seq]
		delete(p.bwait, m.Tag<<32|m.Seq)
		p.mu.Unlock()
		if ch != nil {
			close(ch)
		}
		return nil
	})
	if err := near.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = near.Stop() })
	p.near = near
	p.farID = near.ConnectedAgents()[0].ID
	return p
}

func BenchmarkDirectOneWay(b *testing.B) {
	p := startBenchPair(b)
	ctx := context.Background()
	if _, err := p.near.Request(ctx, p.farID, benchExpect{N: uint64(b.N)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := p.near.Send(ctx, p.farID, benchPing{Seq: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	got := <-p.done
	el := time.Since(start)
	b.StopTimer()
	if got != uint64(b.N) {
		b.Fatalf("far agent got %d of %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
}

func BenchmarkDirectPipelined(b *testing.B) {
	p := startBenchPair(b)
	ctx := context.Background()
	const inflight = 64
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := p.near.Request(ctx, p.farID, benchPong{}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
}

func BenchmarkDirectRoundTrip(b *testing.B) {
	p := startBenchPair(b)
	ctx := context.Background()
	for range 200 { // warm up
		if _, err := p.near.Request(ctx, p.farID, benchPong{}); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := p.near.Request(ctx, p.farID, benchPong{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	testutil.ReportLatency(b, lat)
}

func BenchmarkBroadcastOneWay(b *testing.B) {
	p := startBenchPair(b)
	ctx := context.Background()
	if _, err := p.near.Request(ctx, p.farID, benchExpect{N: uint64(b.N)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := p.near.Broadcast(ctx, benchBPing{Seq: uint64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	got := <-p.done
	el := time.Since(start)
	b.StopTimer()
	if got == uint64(b.N) { // the idle tail is not part of the run
	} else {
		el -= time.Second
	}
	b.ReportMetric(float64(got)/el.Seconds(), "msgs/s")
	b.ReportMetric(100*float64(got)/float64(b.N), "%delivered")
}

// broadcastRequest broadcasts a ping and waits for the far agent's pong.
func (p *benchPair) broadcastRequest(ctx context.Context, tag, seq uint64) error {
	ch := make(chan struct{})
	p.mu.Lock()
	p.bwait[tag<<32|seq] = ch
	p.mu.Unlock()
	if err := p.near.Broadcast(ctx, benchBPing{Seq: seq, Tag: tag}); err != nil {
		return err
	}
	select {
	case <-ch:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("broadcast pong %d/%d lost", tag, seq)
	}
}

func BenchmarkBroadcastPipelined(b *testing.B) {
	p := startBenchPair(b)
	ctx := context.Background()
	const inflight = 64
	for i := range 50 {
		if err := p.broadcastRequest(ctx, 100, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	var lost atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				if err := p.broadcastRequest(ctx, uint64(g+1), uint64(n)); err != nil {
					lost.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
	b.ReportMetric(float64(lost.Load()), "lost")
}

func BenchmarkBroadcastRoundTrip(b *testing.B) {
	p := startBenchPair(b)
	ctx := context.Background()
	for i := range 50 {
		if err := p.broadcastRequest(ctx, 1, uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		if err := p.broadcastRequest(ctx, 2, uint64(i)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	testutil.ReportLatency(b, lat)
}

// BenchmarkTCPFloorRoundTrip is a 16-byte ping-pong over plain loopback TCP
// between the same two processes: the floor for BenchmarkDirectRoundTrip.
// On a 2-vCPU VM it swings between ~20 µs (both processes on one CPU) and
// ~90 µs (waking the other CPU), so read the two side by side.
func BenchmarkTCPFloorRoundTrip(b *testing.B) {
	p := startBenchPair(b)
	c, err := net.Dial("tcp", p.tcp)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 16)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	testutil.ReportLatency(b, lat)
}

// BenchmarkLocalRoundTrip is BenchmarkDirectRoundTrip with both agents in
// this process (still over loopback libp2p): the cost of the stack without
// the cross-process wake-ups.
func BenchmarkLocalRoundTrip(b *testing.B) {
	far, _ := New("far", AsAdmin(), loopbackTCP, WithWorkspace("lb"))
	On(far, func(ctx Context, m benchPong) error { return ctx.Reply(m) })
	if err := far.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer far.Stop()
	near, _ := New("near", loopbackTCP, WithWorkspace("lb"), WithJoin(far.Addrs()[0]))
	_ = RegisterKind[benchPong](near)
	if err := near.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer near.Stop()
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := near.Request(ctx, far.ID(), benchPong{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	testutil.ReportLatency(b, lat)
}
