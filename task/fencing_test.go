package task

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// An assignment goes out without waiting for its commit: while the
// journal's disk is stuck, a task submitted then runs on its worker; its
// acceptance and its result are still reported only once durable.
func TestAssignmentGoesOutBeforeItsCommit(t *testing.T) {
	t.Parallel()
	j := openJournal(t, filepath.Join(t.TempDir(), "early.db"))
	var holding atomic.Bool
	entered, hold := make(chan struct{}, 1), make(chan struct{})
	j.beforeWrite = func(int, int) {
		if holding.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-hold
		}
	}
	m := startManager(t, WithJournal(j))
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before the manager stops: it waits for the commit
	ran := make(chan string, 1)
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("job", func(_ context.Context, job *Job) ([]byte, error) {
			ran <- job.Task.ID
			return []byte("out"), nil
		})
	})
	ctx := testutil.Context(t)
	holding.Store(true)
	updated := make(chan error, 1)
	go func() {
		updated <- m.Update(ctx, func(tx *Tx) error { return tx.Put("layer", []byte("k"), []byte("v")) })
	}()
	<-entered // the disk is stuck from now on

	f, err := m.SubmitAsync(ctx, messages.Task{ID: "x", Type: "job", Description: "runs before it is durable"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-ran:
		if id != "x" {
			t.Fatalf("ran %q", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the assignment waited for the stuck commit")
	}
	testutil.Eventually(t, "x's result at the manager", func() bool {
		var done bool
		_ = m.View(ctx, func(*Tx) error {
			done = m.tasks["x"] != nil && m.tasks["x"].status == StatusCompleted
			return nil
		})
		return done
	})
	waited := make(chan messages.TaskResult, 1)
	go func() { r, _ := m.Wait(ctx, "x"); waited <- r }()
	select {
	case <-f.Done():
		t.Fatal("the submission was acknowledged before it was durable")
	case r := <-waited:
		t.Fatalf("a result reported before it was durable: %+v", r)
	default:
	}
	release()
	if err := <-updated; err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-waited; !r.Success || string(r.Output) != "out" {
		t.Fatalf("result: %+v", r)
	}
	// The journal has the attempt: a manager resuming from it knows it.
	recs, err := j.loadTasks()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Status != StatusCompleted || len(recs[0].Attempts) != 1 || recs[0].Attempts[0].Worker != "W" {
		t.Fatalf("journal: %+v", recs)
	}
}

// fakeManager is an admin agent that sends a worker assignments by hand
// and collects its results.
type fakeManager struct {
	a       *agent.Agent
	mu      sync.Mutex
	results []messages.TaskResult
}

func startFakeManager(t *testing.T, on agent.Option) *fakeManager {
	t.Helper()
	a, err := agent.New("manager", on, agent.WithWorkspace("ws-"+t.Name()), agent.AsAdmin())
	if err != nil {
		t.Fatal(err)
	}
	fm := &fakeManager{a: a}
	agent.On(a, func(_ agent.Context, r messages.TaskResult) error {
		fm.mu.Lock()
		defer fm.mu.Unlock()
		fm.results = append(fm.results, r)
		return nil
	})
	if err := a.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	return fm
}

func (fm *fakeManager) got() []messages.TaskResult {
	fm.mu.Lock()
	defer fm.mu.Unlock()
	return append([]messages.TaskResult(nil), fm.results...)
}

// blockingFirst starts a worker joined to fm whose processor blocks its
// first call (whatever its context says) until release is closed, and
// answers every later call at once. The first call's context's cause is
// sent on cause once it ends.
func blockingFirst(t *testing.T, fm *fakeManager, on agent.Option) (w *Worker, release chan struct{}, cause chan error) {
	t.Helper()
	a, err := agent.New("W", on, agent.WithWorkspace("ws-"+t.Name()), agent.WithJoin(fm.a.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	if w, err = NewWorker(a); err != nil {
		t.Fatal(err)
	}
	release, cause = make(chan struct{}), make(chan error, 1)
	var calls atomic.Int32
	w.Handle("job", func(ctx context.Context, _ *Job) ([]byte, error) {
		if calls.Add(1) == 1 {
			<-ctx.Done()
			cause <- context.Cause(ctx)
			<-release
			return []byte("first"), nil
		}
		return []byte("second"), nil
	})
	if err := w.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w, release, cause
}

func (fm *fakeManager) assign(t *testing.T, to *Worker, epoch uint64) {
	t.Helper()
	as := messages.TaskAssignment{Task: messages.Task{ID: "x", Type: "job", Description: "d"}, Attempt: 1, AssignedAt: time.Now(), Epoch: epoch}
	if err := fm.a.Send(testutil.Context(t), to.Agent().ID(), as); err != nil {
		t.Fatal(err)
	}
}

// A leader that never committed an attempt it sent is replaced; the next
// leader assigns the same task with the same attempt number in its own
// term. The worker runs it afresh (not "a duplicate"), cancels the stale
// run and never reports it.
func TestWorkerRunsANewTermsAttemptOfTheSameNumber(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		fm := startFakeManager(t, on)
		w, release, cause := blockingFirst(t, fm, on)
		synctest.Wait()
		fm.assign(t, w, 1)
		synctest.Wait()
		fm.assign(t, w, 2)
		if err := within(t, cause); !errors.Is(err, ErrStaleAssignment) {
			t.Fatalf("the stale run's cause: %v", err)
		}
		close(release)
		synctest.Wait()
		got := fm.got()
		if len(got) != 1 || got[0].Epoch != 2 || string(got[0].Output) != "second" || !got[0].Success {
			t.Fatalf("results: %+v, want only the second term's", got)
		}
	})
}

// A worker that loses its (unreplicated) manager drops what it ran for
// it: when the manager comes back (restarted on a journal that never had
// the attempt) and assigns the same attempt again, it runs afresh, and the
// dropped run's outcome goes nowhere.
func TestWorkerRunsAgainWhatItDroppedForALostManager(t *testing.T) {
	onMemnet(t, func(t *testing.T, net *memnet.Network, on agent.Option) {
		fm := startFakeManager(t, on)
		w, release, cause := blockingFirst(t, fm, on)
		synctest.Wait()
		fm.assign(t, w, 0)
		synctest.Wait()
		mid, _ := peer.ParseID(fm.a.ID())
		wid, _ := peer.ParseID(w.Agent().ID())
		net.Cut(mid, wid)
		if err := within(t, cause); !errors.Is(err, ErrManagerLost) {
			t.Fatalf("the dropped run's cause: %v", err)
		}
		net.Heal(mid, wid)
		synctest.Wait()
		fm.assign(t, w, 0)
		synctest.Wait()
		close(release)
		synctest.Wait()
		got := fm.got()
		if len(got) != 1 || string(got[0].Output) != "second" || !got[0].Success {
			t.Fatalf("results: %+v, want only the second run's", got)
		}
	})
}

// within receives from c, failing the test after a (virtual) minute.
func within(t *testing.T, c chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(time.Minute):
		t.Fatal("the first run was never cancelled")
		return nil
	}
}

// leadAs makes m lead for a term, resuming from recs, as a replica taking
// the lead does.
func leadAs(t *testing.T, m *testManager, term uint64, recs ...*taskRecord) {
	t.Helper()
	if _, err := agent.Call(testutil.Context(t), m.agent, func() (struct{}, error) {
		m.takeLead(term, &recovered{recs: recs})
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
}

var fencedX = messages.Task{ID: "x", Type: "job", Description: "d", MaxRetries: messages.NoRetry}

func pendingX() *taskRecord {
	return &taskRecord{Seq: 1, Task: fencedX, Status: StatusPending, SubmittedAt: time.Now()}
}

// Term 5 sends (x,1), which fails at once, and is lost before committing
// either; a later leader (term 6, here skipped) assigned (x,1) again and
// committed that; term 7 takes (x,1) over from the journal. The worker
// sends term 7 the results it kept, term 5's failure among them: it must
// not count for the attempt term 6 assigned.
func TestAnAdoptedAttemptTakesOnlyItsEpochsResult(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on)
		release := make(chan struct{})
		defer close(release)
		var calls atomic.Int32
		w := startWorker(t, m, "W", func(w *Worker) {
			w.Handle("job", func(ctx context.Context, _ *Job) ([]byte, error) {
				if calls.Add(1) == 1 {
					return nil, errors.New("term 5's run failed")
				}
				return untilReleased(release, "a later run")(ctx, nil)
			})
		}, on)
		ctx := testutil.Context(t)
		leadAs(t, m, 5)
		if err := m.Submit(ctx, fencedX); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if calls.Load() != 1 {
			t.Fatalf("%d calls, want term 5's", calls.Load())
		}
		leadAs(t, m, 7, &taskRecord{Seq: 1, Task: fencedX, Status: StatusAssigned, Attempt: 1, SubmittedAt: time.Now(),
			Attempts: []AttemptInfo{{Attempt: 1, Worker: "W", WorkerID: w.Agent().ID(), AssignedAt: time.Now(), Epoch: leaderEpoch(6, 0)}}})
		if info, _ := m.Task(ctx, "x"); info.Status.Final() {
			t.Fatalf("term 7 took term 5's result: %v %+v", info.Status, info.Result)
		}
	})
}

// A leader that rebuilds its state in the same term (a resync after a
// failed commit) and assigns again an attempt it had sent but not
// committed: the worker runs the new one, and the old run (cancelled as
// not wanted) does not count for it.
func TestARebuiltLeaderFencesItsOwnLostAttempts(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on)
		release := make(chan struct{})
		startWorker(t, m, "W", func(w *Worker) {
			w.Handle("job", untilReleased(release, "ok"))
		}, on)
		ctx := testutil.Context(t)
		leadAs(t, m, 5)
		if err := m.Submit(ctx, fencedX); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		leadAs(t, m, 5, pendingX()) // the same term
		close(release)
		synctest.Wait()
		if info, _ := m.Task(ctx, "x"); info.Status != StatusCompleted {
			t.Fatalf("x: %v %+v", info.Status, info.Result)
		}
	})
}

// An older epoch's attempt waiting in the worker's queue is replaced by
// the same attempt of a newer epoch: it never runs beside it, and the
// worker's actor never blocks on a processor it thinks it has.
func TestAQueuedAttemptOfAnOlderEpochIsReplaced(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		fm := startFakeManager(t, on)
		a, err := agent.New("W", on, agent.WithWorkspace("ws-"+t.Name()), agent.WithJoin(fm.a.Addrs()[0]))
		if err != nil {
			t.Fatal(err)
		}
		w, err := NewWorker(a, WithMaxConcurrency(2))
		if err != nil {
			t.Fatal(err)
		}
		releaseA := make(chan struct{})
		var xNow, xMax, xRuns atomic.Int32
		w.Handle("job", func(ctx context.Context, job *Job) ([]byte, error) {
			if job.Task.ID != "x" {
				<-releaseA
				return nil, nil
			}
			xRuns.Add(1)
			n := xNow.Add(1)
			defer xNow.Add(-1)
			xMax.Store(max(xMax.Load(), n))
			<-ctx.Done()
			return nil, ctx.Err()
		})
		if err := w.Start(testutil.Context(t)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop() })
		synctest.Wait()
		send := func(id string, epoch uint64) {
			as := messages.TaskAssignment{Task: messages.Task{ID: id, Type: "job", Description: "d"}, Attempt: 1, AssignedAt: time.Now(), Epoch: epoch}
			if err := fm.a.Send(testutil.Context(t), w.Agent().ID(), as); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		send("a1", 1)
		send("a2", 1)
		send("x", 2) // queued: both processors are busy
		send("x", 3) // replaces it
		close(releaseA)
		synctest.Wait()
		if xMax.Load() != 1 || xRuns.Load() != 1 {
			t.Errorf("(x,1) ran %d times, at most %d at once; want once", xRuns.Load(), xMax.Load())
		}
		send("b", 3)
		ctx, cancel := context.WithTimeout(testutil.Context(t), 10*time.Second)
		defer cancel()
		if _, err := agent.Call(ctx, w.Agent(), func() (int, error) { return w.busy(), nil }); err != nil {
			t.Errorf("worker actor stuck: %v", err)
		}
	})
}

// untilReleased is a processor that answers out once release is closed,
// or fails with its context's cause.
func untilReleased(release chan struct{}, out string) HandlerFunc {
	return func(ctx context.Context, _ *Job) ([]byte, error) {
		select {
		case <-release:
			return []byte(out), nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}
