package task

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/network"
)

// A worker whose link drops for longer than the leave grace loses its
// tasks to requeue, reconnects, and takes tasks again.
func TestWorkerReconnectsAndResumes(t *testing.T) {
	t.Parallel()
	grace := agent.WithPeerOptions(peer.WithLeaveGrace(0))
	m := startManager(t, grace)
	var mu sync.Mutex
	ran := map[string]int{}
	block := make(chan struct{})
	w := startWorker(t, m, "W", func(w *Worker) {
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
	}, WithMaxConcurrency(2), grace)
	ctx := testutil.Context(t)
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
	rep, _ := m.Stats(ctx)
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
	t.Parallel()
	grace := agent.WithPeerOptions(peer.WithLeaveGrace(time.Minute))
	m := startManager(t, grace)
	block := make(chan struct{})
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			select {
			case <-block:
				return []byte("ok"), nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		})
	}, grace)
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "held", Type: "job", Description: "held through a blip"}); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, m, "held")
	wid := m.Agent().ConnectedAgents()[0].ID
	pid, _ := peer.ParseID(wid)
	if err := m.Agent().Node().Host().Network().ClosePeer(pid); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the worker back", func() bool {
		return m.Agent().Node().Host().Network().Connectedness(pid) == network.Connected
	})
	close(block)
	r, err := m.Wait(ctx, "held")
	if err != nil || !r.Success || r.Attempt != 1 {
		t.Fatalf("held task after the blip: %+v %v", r, err)
	}
	if rep, _ := m.Stats(ctx); rep.Requeued != 0 {
		t.Fatalf("a blip requeued: %+v", rep)
	}
}

// Modes are self-declared: a worker only obeys the manager it joined
// through, not another admin in the workspace.
func TestWorkerIgnoresImpostorManager(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	var ranMu sync.Mutex
	ran := map[string]bool{}
	w := startWorker(t, m, "W", func(w *Worker) {
		w.Handle("job", func(_ context.Context, job *Job) ([]byte, error) {
			ranMu.Lock()
			ran[job.Task.ID] = true
			ranMu.Unlock()
			return nil, nil
		})
	})
	c := testutil.NewCond()
	impostor, err := agent.New("impostor", loopback, agent.WithWorkspace("ws-"+t.Name()), agent.AsAdmin(), agent.WithJoin(m.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	impostor.OnConnect(func(agent.Context, agent.AgentDetail) { c.Update(func() {}) })
	if err := impostor.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = impostor.Stop() })
	c.Await(t, "the impostor meets the worker", 10*time.Second, func() bool { return len(impostor.ConnectedAgents()) == 2 })
	ctx := testutil.Context(t)
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
	testutil.Eventually(t, "the impostor's messages refused", func() bool { return w.Agent().Stats().HandlerErrors >= 2 })
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

// onMemnet runs a test on an in-memory network, in a synctest bubble:
// its timers are virtual, so waiting out a lease or a heartbeat costs
// nothing, and faults come from the network (memnet), not from hooks in
// the production types.
func onMemnet(t *testing.T, test func(t *testing.T, net *memnet.Network, on agent.Option)) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		testutil.SettleActors(t)
		net := memnet.New()
		test(t, net, agent.WithNetwork(net.Factory()))
	})
}

// A result lost on the way: the worker's next heartbeat says it no longer
// holds the attempt, and the manager requeues it at once instead of
// waiting out the lease (a minute).
func TestHeartbeatRecoversALostResult(t *testing.T) {
	onMemnet(t, func(t *testing.T, net *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithAckTimeout(4*time.Second))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on, WithHeartbeatInterval(50*time.Millisecond))
		net.DropNext(messages.TaskResult{}.Kind(), 1)
		start := time.Now()
		r := runTask(t, m, messages.Task{ID: "t", Type: "job", Description: "its first result is lost", Timeout: time.Minute})
		if !r.Success || r.Attempt != 2 {
			t.Fatalf("result: %+v", r)
		}
		// Half the ack timeout, and a heartbeat.
		if el := time.Since(start); el < 2*time.Second || el > 3*time.Second {
			t.Fatalf("took %v (virtual): the heartbeat should take it back after 2 s", el)
		}
		info, _ := m.Task(testutil.Context(t), "t")
		if !strings.Contains(info.Attempts[0].Outcome, "does not hold it") {
			t.Fatalf("attempts: %+v", info.Attempts)
		}
	})
}

// An assignment lost on the way to a worker whose heartbeats stopped: no
// ack comes, and at the ack deadline the attempt goes back to the queue.
func TestAckDeadlineRequeuesALostAssignment(t *testing.T) {
	onMemnet(t, func(t *testing.T, net *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithAckTimeout(300*time.Millisecond), WithTick(10*time.Millisecond), WithHeartbeatTimeout(time.Hour))
		startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, on, WithHeartbeatInterval(time.Hour))
		net.DropNext(messages.TaskAssignment{}.Kind(), 1)
		start := time.Now()
		r := runTask(t, m, messages.Task{ID: "t", Type: "job", Description: "its first assignment is lost", Timeout: time.Minute})
		if !r.Success || r.Attempt != 2 {
			t.Fatalf("result: %+v", r)
		}
		if el := time.Since(start); el < 300*time.Millisecond || el > 400*time.Millisecond {
			t.Fatalf("requeued after %v (virtual), not at the 300 ms ack deadline", el)
		}
		info, _ := m.Task(testutil.Context(t), "t")
		if len(info.Attempts) != 2 || info.Attempts[0].Outcome != "lost: no acknowledgement" {
			t.Fatalf("attempts: %+v", info.Attempts)
		}
	})
}

// A cancel lost on the way: the worker keeps running the attempt, its
// heartbeat shows it, and the manager cancels it again.
func TestHeartbeatRepeatsALostCancel(t *testing.T) {
	onMemnet(t, func(t *testing.T, net *memnet.Network, on agent.Option) {
		m := startManager(t, on)
		causes := make(chan error, 1)
		startWorker(t, m, "W", func(w *Worker) {
			w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
				<-ctx.Done()
				causes <- context.Cause(ctx)
				return nil, ctx.Err()
			})
		}, on, WithHeartbeatInterval(50*time.Millisecond))
		ctx := testutil.Context(t)
		if err := m.Submit(ctx, messages.Task{ID: "t", Type: "job", Description: "cancelled twice"}); err != nil {
			t.Fatal(err)
		}
		waitAcked(t, m, "t")
		net.DropNext(messages.TaskCancel{}.Kind(), 1)
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
	})
}

// A worker whose connection drops, again and again (cut from either side,
// with no leave grace so that every drop is a leave), is registered again
// each time and takes work: it never silently stops getting tasks.
func TestWorkerReregistersAfterEveryDrop(t *testing.T) {
	t.Parallel()
	grace := agent.WithPeerOptions(peer.WithLeaveGrace(0))
	m := startManager(t, grace)
	w := startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, grace)
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

func TestWorkerStartFailureThenStop(t *testing.T) {
	t.Parallel()
	a, err := agent.New("w", loopback) // no join address
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); !errors.Is(err, agent.ErrNoJoinAddress) {
		t.Fatalf("start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop hung after a failed Start")
	}
	m := startManager(t)
	if err := m.Start(context.Background()); !errors.Is(err, agent.ErrAlreadyStarted) {
		t.Fatalf("second manager Start: %v", err)
	}
}

// A manager needs an admin agent.
func TestManagerNeedsAnAdmin(t *testing.T) {
	t.Parallel()
	a, err := agent.New("client", loopback)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewManager(a); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("manager on a client: %v", err)
	}
	if _, err := NewManager(nil); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("manager on nil: %v", err)
	}
}

// A worker tells (and logs) when its manager is lost and when it is back,
// and with WithStopWithoutManager stops once it has been gone long enough
// (a manager that stopped without Shutdown leaves no orphans).
func TestWorkerWatchesItsManager(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		dir := t.TempDir()
		key := filepath.Join(dir, "admin.key")
		m1 := startManager(t, on, agent.WithIdentityFile(key), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
		port := regexp.MustCompile(`/tcp/(\d+)/`).FindStringSubmatch(m1.Addrs()[0])[1]
		c := testutil.NewCond()
		var seen []string
		watch := WithManagerWatch(func(who agent.AgentDetail, present bool) {
			c.Update(func() { seen = append(seen, fmt.Sprint(who.Name, " ", present)) })
		})
		w := startWorker(t, m1, "W", func(w *Worker) { w.Handle("job", noop) }, watch, on)
		quitter := startWorker(t, m1, "Q", func(w *Worker) { w.Handle("job", noop) }, WithStopWithoutManager(300*time.Millisecond), on)
		c.Await(t, "the manager adopted", 10*time.Second, func() bool { return slices.Equal(seen, []string{"task_manager true"}) })

		if err := m1.Stop(); err != nil { // no Shutdown: the workers are on their own
			t.Fatal(err)
		}
		c.Await(t, "the manager lost", 10*time.Second, func() bool { return len(seen) == 2 && seen[1] == "task_manager false" })
		select {
		case <-quitter.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the worker with WithStopWithoutManager did not stop")
		}

		m2 := startManager(t, on, agent.WithIdentityFile(key), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/"+port))
		c.Await(t, "the manager back", 10*time.Second, func() bool { return len(seen) == 3 && seen[2] == "task_manager true" })
		if r := runTask(t, m2, messages.Task{ID: "after", Type: "job", Description: "on the manager that came back"}); !r.Success || r.Worker != "W" {
			t.Fatalf("after the manager came back: %+v", r)
		}
		select {
		case <-w.Done():
			t.Fatal("the worker without WithStopWithoutManager stopped")
		default:
		}
	})
}

// Stop does not hang on a processor that ignores its context: it waits
// for the stop grace, then says so.
func TestStopLeavesAStuckProcessorBehind(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	started := make(chan struct{}, 1)
	w := startWorker(t, m, "W", func(w *Worker) {
		w.Handle("stuck", func(context.Context, *Job) ([]byte, error) {
			started <- struct{}{}
			<-release // ignores ctx
			return nil, nil
		})
	}, WithStopGrace(200*time.Millisecond))
	if err := m.Submit(testutil.Context(t), messages.Task{ID: "s", Type: "stuck", Description: "ignores its context"}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := w.Stop(); !errors.Is(err, ErrProcessorsRunning) {
		t.Fatalf("stop with a stuck processor: %v", err)
	}
}
