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
	j.beforeWrite = func() {
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
