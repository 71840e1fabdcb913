package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/network"
)

// A flooding peer holds at most its in-flight limit of the mailbox, so a
// message from another peer is handled after at most that many of the
// flood's.
func TestPeerInflightLimitKeepsFloodersFair(t *testing.T) {
	const limit = 16
	c := newCond()
	var order []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error {
			if ctx.Sender().Name == "flooder" {
				time.Sleep(200 * time.Microsecond)
			}
			c.update(func() { order = append(order, ctx.Sender().Name) })
			return nil
		})
	}, WithPeerInflight(limit))
	flooder := startClient(t, "flooder", admin, nil)
	polite := startClient(t, "polite", admin, nil)
	ctx := testCtx(t)
	go func() {
		for i := range 3000 {
			if flooder.Send(ctx, admin.ID(), note{N: i}) != nil {
				return
			}
		}
	}()
	c.await(t, "the flood to start", 10*time.Second, func() bool { return len(order) >= 2*limit })
	c.mu.Lock()
	before := len(order)
	c.mu.Unlock()
	if err := polite.Send(ctx, admin.ID(), note{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	c.await(t, "the polite message", 20*time.Second, func() bool {
		for _, who := range order {
			if who == "polite" {
				return true
			}
		}
		return false
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	pos := 0
	for i, who := range order {
		if who == "polite" {
			pos = i
		}
	}
	// Between sending and handling, at most the flooder's in-flight
	// messages (plus a few already being handed over) went first.
	if waited := pos - before; waited > limit+8 {
		t.Fatalf("polite message waited behind %d flood messages (limit %d)", waited, limit)
	}
}

// A peer that keeps sending undecodable envelopes is banned: disconnected,
// and refused when it comes back.
func TestGarbageSenderIsBanned(t *testing.T) {
	c := newCond()
	var left []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		a.OnDisconnect(func(_ Context, who AgentDetail) { c.update(func() { left = append(left, who.Name) }) })
	}, WithMaxBadMessages(5))
	evil := startClient(t, "evil", admin, func(a *Agent) {
		a.OnDisconnect(func(_ Context, who AgentDetail) { c.update(func() { left = append(left, "evil saw "+who.Name) }) })
	}, WithReconnect(false))
	ctx := testCtx(t)
	for range 5 {
		if err := evil.Node().Send(ctx, admin.Node().ID(), []byte("not an envelope")); err != nil {
			t.Fatal(err)
		}
	}
	c.await(t, "the ban, seen from both sides", 10*time.Second, func() bool { return len(left) == 2 })
	if admin.Node().Stats().Bans != 1 || admin.Stats().DroppedBad != 5 {
		t.Fatalf("stats: node %+v agent %+v", admin.Node().Stats(), admin.Stats())
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := evil.Node().Connect(short, admin.Addrs()[0]); err == nil {
		t.Fatal("banned peer reconnected")
	}
}

// A client whose connection to the admin drops reconnects by itself. A
// blip shorter than the leave grace is not a leave: neither side sees the
// other leave and join again.
func TestClientReconnects(t *testing.T) {
	c := newCond()
	joins, leaves := 0, 0
	var got []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		a.OnConnect(func(Context, AgentDetail) { c.update(func() { joins++ }) })
		a.OnDisconnect(func(Context, AgentDetail) { c.update(func() { leaves++ }) })
		On(a, func(ctx Context, m note) error { c.update(func() { got = append(got, m.Text) }); return nil })
	}, WithPeerOptions(peer.WithLeaveGrace(time.Minute)))
	client := startClient(t, "client", admin, nil)
	c.await(t, "first join", 10*time.Second, func() bool { return joins == 1 })
	// Cut every connection between them, from the admin's side.
	if err := admin.Node().Host().Network().ClosePeer(client.Node().ID()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the client back", func() bool {
		return admin.Node().Host().Network().Connectedness(client.Node().ID()) == network.Connected
	})
	if err := client.Send(testCtx(t), admin.ID(), note{Text: "back"}); err != nil {
		t.Fatal(err)
	}
	c.await(t, "a message after reconnecting", 10*time.Second, func() bool { return len(got) == 1 })
	c.mu.Lock()
	defer c.mu.Unlock()
	if joins != 1 || leaves != 0 {
		t.Fatalf("a blip showed as %d joins and %d leaves", joins, leaves)
	}
}

// With no leave grace, a dropped connection is a leave, and the client
// that comes back joins again.
func TestClientRejoinsAfterALeave(t *testing.T) {
	c := newCond()
	joins, leaves := 0, 0
	grace := WithPeerOptions(peer.WithLeaveGrace(0))
	admin := startAdmin(t, "admin", func(a *Agent) {
		a.OnConnect(func(Context, AgentDetail) { c.update(func() { joins++ }) })
		a.OnDisconnect(func(Context, AgentDetail) { c.update(func() { leaves++ }) })
	}, grace)
	client := startClient(t, "client", admin, nil, grace)
	c.await(t, "first join", 10*time.Second, func() bool { return joins == 1 })
	if err := admin.Node().Host().Network().ClosePeer(client.Node().ID()); err != nil {
		t.Fatal(err)
	}
	c.await(t, "a leave and a join", 10*time.Second, func() bool { return leaves == 1 && joins == 2 })
	eventually(t, "the client sees the admin again", func() bool { return len(client.ConnectedAgents()) == 1 })
}

// A worker whose link drops for longer than the leave grace loses its
// tasks to requeue, reconnects, and takes tasks again.
func TestWorkerReconnectsAndResumes(t *testing.T) {
	grace := WithPeerOptions(peer.WithLeaveGrace(0))
	m := startManager(t, WithManagerAgent(grace))
	var mu sync.Mutex
	ran := map[string]int{}
	block := make(chan struct{})
	w := startWorker(t, m, "W", func(w *WorkerAgent) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			mu.Lock()
			ran[job.Task.ID]++
			mu.Unlock()
			if job.Task.ID == "held" && job.Attempt == 1 {
				select {
				case <-block:
				case <-ctx.Done():
					return nil, context.Cause(ctx)
				}
			}
			return []byte("ok"), nil
		})
	}, WithMaxConcurrency(2), WithWorkerAgent(grace))
	ctx := testCtx(t)
	if err := m.Submit(ctx, messages.Task{ID: "held", Type: "job", Description: "held when the link drops"}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, m, "held")
	if err := m.Agent().Node().Host().Network().ClosePeer(w.Agent().Node().ID()); err != nil {
		t.Fatal(err)
	}
	r, err := m.Wait(ctx, "held")
	if err != nil || !r.Success || r.Attempt != 2 {
		t.Fatalf("held task after the drop: %+v %v", r, err)
	}
	for i := range 10 {
		if r := runTask(t, m, messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "after"}); !r.Success {
			t.Fatalf("task %d: %+v", i, r)
		}
	}
	close(block)
	rep, _ := m.Report(ctx)
	if rep.Requeued != 1 || rep.Succeeded != 11 {
		t.Fatalf("report: %+v", rep)
	}
	mu.Lock()
	defer mu.Unlock()
	if ran["held"] != 2 {
		t.Fatalf("held ran %d times, want 2 (its first attempt, then the requeued one)", ran["held"])
	}
}

// A worker whose link blips (shorter than the leave grace) keeps its
// running task: nothing is requeued, and the result arrives over the new
// connection.
func TestWorkerKeepsItsTaskThroughABlip(t *testing.T) {
	grace := WithPeerOptions(peer.WithLeaveGrace(time.Minute))
	m := startManager(t, WithManagerAgent(grace))
	block := make(chan struct{})
	startWorker(t, m, "W", func(w *WorkerAgent) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			select {
			case <-block:
				return []byte("ok"), nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		})
	}, WithWorkerAgent(grace))
	ctx := testCtx(t)
	if err := m.Submit(ctx, messages.Task{ID: "held", Type: "job", Description: "held through a blip"}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, m, "held")
	wid := m.Agent().ConnectedAgents()[0].ID
	pid, _ := peer.ParseID(wid)
	if err := m.Agent().Node().Host().Network().ClosePeer(pid); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker back", func() bool {
		return m.Agent().Node().Host().Network().Connectedness(pid) == network.Connected
	})
	close(block)
	r, err := m.Wait(ctx, "held")
	if err != nil || !r.Success || r.Attempt != 1 {
		t.Fatalf("held task after the blip: %+v %v", r, err)
	}
	if rep, _ := m.Report(ctx); rep.Requeued != 0 {
		t.Fatalf("a blip requeued: %+v", rep)
	}
}

// With a secret, agents without it (or with another) get nothing in and
// nothing out, while the workspace keeps working.
func TestSecretWorkspace(t *testing.T) {
	c := newCond()
	var got []string
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error {
			c.update(func() { got = append(got, ctx.Sender().Name+":"+m.Text) })
			return nil
		})
	}, WithSecret("open sesame"))
	member := startClient(t, "member", admin, nil, WithSecret("open sesame"))
	ctx := testCtx(t)
	for _, opts := range [][]Option{nil, {WithSecret("wrong")}} {
		intruder, err := New("intruder", append([]Option{loopback, WithWorkspace("ws-" + t.Name()), WithJoin(admin.Addrs()[0])}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = intruder.Start(short)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("intruder joined, or the error does not point at the secret: %v", err)
		}
		if err := member.Send(ctx, admin.ID(), note{Text: "still working"}); err != nil {
			t.Fatal(err)
		}
	}
	c.await(t, "members' messages", 10*time.Second, func() bool { return len(got) == 2 })
	st := admin.Stats()
	if st.Received != 2 || st.DroppedBad+st.DroppedSpoofed+st.DroppedUnknown != 0 || len(admin.ConnectedAgents()) != 1 {
		t.Fatalf("admin heard from an intruder: %+v, %v", st, admin.ConnectedAgents())
	}
}

// Roles are self-declared: a worker only obeys the manager it joined
// through, not another agent calling itself a task manager.
func TestWorkerIgnoresImpostorManager(t *testing.T) {
	m := startManager(t)
	var ranMu sync.Mutex
	ran := map[string]bool{}
	w := startWorker(t, m, "W", func(w *WorkerAgent) {
		w.Handle("job", func(_ context.Context, job *Job) ([]byte, error) {
			ranMu.Lock()
			ran[job.Task.ID] = true
			ranMu.Unlock()
			return nil, nil
		})
	})
	c := newCond()
	impostor := startClient(t, "impostor", m.Agent(), func(a *Agent) {
		a.OnConnect(func(Context, AgentDetail) { c.update(func() {}) })
	}, WithRole(ManagerRole))
	c.await(t, "the impostor meets the worker", 10*time.Second, func() bool { return len(impostor.ConnectedAgents()) == 2 })
	ctx := testCtx(t)
	if err := impostor.Send(ctx, w.Agent().ID(), messages.Shutdown{Reason: "trust me"}); err != nil {
		t.Fatal(err)
	}
	as := messages.TaskAssignment{Task: messages.Task{ID: "evil", Type: "job", Description: "d"}, Attempt: 1}
	if err := impostor.Send(ctx, w.Agent().ID(), as); err != nil {
		t.Fatal(err)
	}
	// The worker keeps serving its manager.
	for i := range 5 {
		if r := runTask(t, m, messages.Task{ID: fmt.Sprint(i), Type: "job", Description: "real"}); !r.Success || r.Worker != "W" {
			t.Fatalf("task %d: %+v", i, r)
		}
	}
	eventually(t, "the impostor's messages refused", func() bool { return w.Agent().Stats().HandlerErrors >= 2 })
	select {
	case <-w.Done():
		t.Fatal("the worker obeyed an impostor's shutdown")
	default:
	}
	ranMu.Lock()
	defer ranMu.Unlock()
	if ran["evil"] || len(ran) != 5 {
		t.Fatalf("the worker ran %v", ran)
	}
}

// A result lost on the way: the worker's next heartbeat says it no longer
// holds the attempt, and the manager requeues it at once instead of
// waiting out the lease.
func TestHeartbeatRecoversALostResult(t *testing.T) {
	// A heartbeat takes an attempt back after half the ack timeout, its
	// ack deadline after all of it: with heartbeats every 50 ms, one
	// lands in the second half, however loaded the machine.
	m := startManager(t, WithAckTimeout(4*time.Second))
	startWorker(t, m, "W", func(w *WorkerAgent) {
		w.dropResults = 1
		w.Handle("job", noop)
	}, WithHeartbeatInterval(50*time.Millisecond))

	start := time.Now()
	r := runTask(t, m, messages.Task{ID: "t", Type: "job", Description: "its first result is lost", Timeout: time.Minute})
	if !r.Success || r.Attempt != 2 {
		t.Fatalf("result: %+v", r)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("took %v: waited for the lease", el)
	}
	info, _ := m.Task(testCtx(t), "t")
	if !strings.Contains(info.Attempts[0].Outcome, "does not hold it") {
		t.Fatalf("attempts: %+v", info.Attempts)
	}
}

// An assignment lost on the way to a worker whose heartbeats stopped: no
// ack comes, and at the ack deadline the attempt goes back to the queue.
func TestAckDeadlineRequeuesALostAssignment(t *testing.T) {
	m := startManager(t, WithAckTimeout(300*time.Millisecond), WithTick(10*time.Millisecond), WithHeartbeatTimeout(time.Hour))
	startWorker(t, m, "W", func(w *WorkerAgent) {
		w.dropAssignments = 1
		w.Handle("job", noop)
	}, WithHeartbeatInterval(time.Hour))
	r := runTask(t, m, messages.Task{ID: "t", Type: "job", Description: "its first assignment is lost", Timeout: time.Minute})
	if !r.Success || r.Attempt != 2 {
		t.Fatalf("result: %+v", r)
	}
	info, _ := m.Task(testCtx(t), "t")
	if len(info.Attempts) != 2 || info.Attempts[0].Outcome != "lost: no acknowledgement" {
		t.Fatalf("attempts: %+v", info.Attempts)
	}
}

// A cancel lost on the way: the worker keeps running the attempt, its
// heartbeat shows it, and the manager cancels it again.
func TestHeartbeatRepeatsALostCancel(t *testing.T) {
	m := startManager(t)
	causes := make(chan error, 1)
	startWorker(t, m, "W", func(w *WorkerAgent) {
		w.dropCancels = 1
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return nil, ctx.Err()
		})
	}, WithHeartbeatInterval(50*time.Millisecond))
	ctx := testCtx(t)
	if err := m.Submit(ctx, messages.Task{ID: "t", Type: "job", Description: "cancelled twice"}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, m, "t")
	if err := m.Cancel(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	select {
	case cause := <-causes:
		if !errors.Is(cause, ErrCancelledByManager) {
			t.Fatalf("cause: %v", cause)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt was never cancelled")
	}
}

// Envelopes of a known kind whose bodies do not decode count toward a ban
// like any other garbage.
func TestUndecodableBodiesAreBanned(t *testing.T) {
	c := newCond()
	gone := false
	admin := startAdmin(t, "admin", func(a *Agent) {
		On(a, func(ctx Context, m note) error { return nil })
		a.OnDisconnect(func(_ Context, who AgentDetail) { c.update(func() { gone = gone || who.Name == "evil" }) })
	}, WithMaxBadMessages(10), WithPeerOptions(peer.WithLeaveGrace(0)))
	evil := startClient(t, "evil", admin, nil, WithReconnect(false))
	ctx := testCtx(t)
	for i := range 100 {
		env := messages.Envelope{ID: uint64(i + 1), Kind: note{}.Kind(), From: evil.ID(), Body: []byte{0xc1}}
		if err := evil.Node().Send(ctx, admin.Node().ID(), env.Encode()); err != nil {
			break // banned, disconnected
		}
	}
	c.await(t, "the ban", 10*time.Second, func() bool { return gone })
	if st := admin.Node().Stats(); st.Bans != 1 {
		t.Fatalf("node stats %+v", st)
	}
}

// Broadcast garbage counts against its author, who signed it, even one
// that never presented itself to the receiver: it is rejected (neither
// delivered nor forwarded) and the author is banned.
func TestBroadcastGarbageIsBanned(t *testing.T) {
	admin := startAdmin(t, "admin", nil, WithMaxBadMessages(10))
	// A raw node of the workspace: it publishes on the topic without an
	// agent (so without envelopes) and never opens a direct stream.
	evil, err := peer.New(testCtx(t), peer.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), peer.WithWorkspace("ws-"+t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	ai, _ := peer.ParseAddr(admin.Addrs()[0])
	if err := evil.Host().Connect(testCtx(t), ai); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the admin on the topic", func() bool { return evil.Stats().TopicPeers == 1 })
	for i := 0; i < 100 && evil.Stats().Conns > 0; i++ {
		_ = evil.Publish(testCtx(t), []byte("not an envelope"))
	}
	eventually(t, "the ban", func() bool { return admin.Node().Stats().Bans == 1 })
	if st := admin.Node().Stats(); st.GossipRejected < 10 || st.BroadcastIn != 0 {
		t.Fatalf("node stats %+v", st)
	}
	if admin.Stats().Received != 0 {
		t.Fatal("garbage delivered")
	}
}

// A worker whose connection drops, again and again (cut from either side,
// with no leave grace so that every drop is a leave), is registered again
// each time and takes work: it never silently stops getting tasks.
func TestWorkerReregistersAfterEveryDrop(t *testing.T) {
	grace := WithPeerOptions(peer.WithLeaveGrace(0))
	m := startManager(t, WithManagerAgent(grace))
	w := startWorker(t, m, "W", func(w *WorkerAgent) { w.Handle("job", noop) }, WithWorkerAgent(grace))
	mid, wid := m.Agent().Node().ID(), w.Agent().Node().ID()
	for i := range 50 {
		from, to := m.Agent().Node(), wid
		if i%2 == 1 {
			from, to = w.Agent().Node(), mid
		}
		if err := from.Host().Network().ClosePeer(to); err != nil {
			t.Fatal(err)
		}
		if r := runTask(t, m, messages.Task{ID: fmt.Sprint("after-drop-", i), Type: "job", Description: "after a drop"}); !r.Success || r.Worker != "W" {
			t.Fatalf("drop %d: %+v", i, r)
		}
	}
}
