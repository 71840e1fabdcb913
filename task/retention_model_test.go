package task

// A model check of the retention of finished tasks: random interleavings
// of completions, failures, cancels, retries, deletes and restarts, each
// step checked in the actor against a recount and against a model of the
// finish order (the newest k are kept), and edge cases found by an
// attack on it (restored journals far over the bound, a hook that settles
// another task, WithForgetFinished with a journal).

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/memnet"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

type retState struct {
	kept, recount, live, stale, nilEntries, expLen int
	settled                                        []string
	pending                                        []string
	problems                                       []string
}

func readRet(t *testing.T, m *testManager) retState {
	t.Helper()
	ctx := testutil.Context(t)
	st, err := agent.Call(ctx, m.Agent(), func() (retState, error) {
		var s retState
		s.kept = m.kept
		s.expLen = len(m.expiring)
		liveOf := map[*taskState]int{}
		var prev time.Time
		for _, e := range m.expiring {
			if e.t == nil {
				s.nilEntries++
				continue
			}
			if m.liveEntry(e) {
				s.live++
				liveOf[e.t]++
				if e.at.Before(prev) {
					s.problems = append(s.problems, fmt.Sprintf("expiring out of order at %s", e.t.task.ID))
				}
				prev = e.at
			} else {
				s.stale++
			}
		}
		limits := !m.cfg.forget && (m.cfg.retention > 0 || m.cfg.keepFinished > 0)
		for id, ts := range m.tasks {
			if ts.settled {
				s.settled = append(s.settled, id)
			} else if !ts.status.Final() {
				s.pending = append(s.pending, id)
			}
			if ts.settled && ts.kept {
				s.recount++
			}
			if ts.kept && !ts.settled {
				s.problems = append(s.problems, "kept but not settled: "+id)
			}
			if ts.kept && liveOf[ts] != 1 {
				s.problems = append(s.problems, fmt.Sprintf("%s kept with %d live entries", id, liveOf[ts]))
			}
			if limits && ts.settled && !ts.kept {
				s.problems = append(s.problems, "settled but not kept (never expires): "+id)
			}
		}
		sort.Strings(s.settled)
		sort.Strings(s.pending)
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// keptCount reads only m.kept: what the waits poll (readRet walks every
// task, and a wait polls every 5 ms of the bubble's clock, hundreds of
// times between two of the manager's sweeps).
func keptCount(t *testing.T, m *testManager) int {
	t.Helper()
	n, err := agent.Call(testutil.Context(t), m.Agent(), func() (int, error) { return m.kept, nil })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func checkRet(t *testing.T, m *testManager, k int, step string) retState {
	t.Helper()
	s := readRet(t, m)
	if s.kept != s.recount || s.kept < 0 || s.kept != s.live {
		t.Fatalf("%s: m.kept %d, recount %d, live entries %d", step, s.kept, s.recount, s.live)
	}
	if k > 0 && s.kept > k {
		t.Fatalf("%s: m.kept %d > k %d", step, s.kept, k)
	}
	if s.nilEntries > 0 {
		t.Fatalf("%s: %d nil entries in expiring", step, s.nilEntries)
	}
	if s.expLen > 2*s.kept+64+1 {
		t.Fatalf("%s: len(expiring) %d for kept %d", step, s.expLen, s.kept)
	}
	if len(s.problems) > 0 {
		t.Fatalf("%s: %v", step, s.problems)
	}
	return s
}

// model: order of last finish; the newest k are expected settled.
type retModel struct {
	order   []string // final IDs, by last settle
	typ     map[string]string
	pending map[string]bool
}

func (md *retModel) finished(id string) {
	md.order = slices.DeleteFunc(md.order, func(s string) bool { return s == id })
	md.order = append(md.order, id)
	delete(md.pending, id)
}

func (md *retModel) want(k int) []string {
	o := md.order
	if k > 0 && len(o) > k {
		o = o[len(o)-k:]
	}
	md.order = slices.Clone(o) // the forgotten are gone for good
	w := slices.Clone(o)
	sort.Strings(w)
	return w
}

func retWorker(t *testing.T, m *testManager, on agent.Option, name string) {
	startWorker(t, m, name, func(w *Worker) {
		w.Handle("job", noop)
		w.Handle("fail", func(context.Context, *Job) ([]byte, error) { return nil, errors.New("boom") })
	}, on)
}

func runRandomRet(t *testing.T, seed int64, k int, withJournal bool, steps int) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		path := filepath.Join(t.TempDir(), "ret.db")
		var j *Journal
		opts := func() []any {
			o := []any{on, WithKeepFinished(k), WithRetention(0), WithTick(10 * time.Millisecond)}
			if withJournal {
				o = append(o, WithJournal(j))
			}
			return o
		}
		if withJournal {
			j = openJournal(t, path)
		}
		m := startManager(t, opts()...)
		retWorker(t, m, on, "W0")
		ctx := testutil.Context(t)
		rng := rand.New(rand.NewSource(seed))
		md := &retModel{typ: map[string]string{}, pending: map[string]bool{}}
		n := 0
		awaitStatus := func(id string, want Status) {
			t.Helper()
			testutil.Eventually(t, id+" "+want.String(), func() bool {
				ok, err := agent.Call(ctx, m.Agent(), func() (bool, error) {
					ts := m.tasks[id]
					return ts != nil && ts.settled && ts.status == want, nil
				})
				return err == nil && ok
			})
		}
		finals := func(failedOnly bool) []string {
			var out []string
			for _, id := range md.want(k) {
				if !failedOnly || md.typ[id] != "job" {
					out = append(out, id)
				}
			}
			return out
		}
		restarts := 0
		for step := 0; step < steps; step++ {
			op := rng.Intn(10)
			var desc string
			switch {
			case op <= 1:
				id := fmt.Sprint("ok", n)
				n++
				md.typ[id] = "job"
				runTask(t, m, messages.Task{ID: id, Type: "job", Description: "d"})
				md.finished(id)
				desc = "ok " + id
			case op == 2:
				id := fmt.Sprint("f", n)
				n++
				md.typ[id] = "fail"
				runTask(t, m, messages.Task{ID: id, Type: "fail", Description: "d", MaxRetries: messages.NoRetry})
				md.finished(id)
				desc = "fail " + id
			case op == 3:
				id := fmt.Sprint("c", n)
				n++
				md.typ[id] = "nobody"
				if err := m.Submit(ctx, messages.Task{ID: id, Type: "nobody", Description: "d"}); err != nil {
					t.Fatal(err)
				}
				md.pending[id] = true
				if rng.Intn(3) > 0 {
					if err := m.Cancel(ctx, id); err != nil {
						t.Fatal(err)
					}
					awaitStatus(id, StatusCancelled)
					md.finished(id)
					desc = "cancel " + id
				} else {
					desc = "pending " + id
				}
			case op == 4 || op == 5:
				fs := finals(true)
				if len(fs) == 0 {
					continue
				}
				id := fs[rng.Intn(len(fs))]
				if err := m.Retry(ctx, id); err != nil {
					var evs []string
					m.events.Update(func() {
						for _, ev := range m.log[max(0, len(m.log)-12):] {
							evs = append(evs, fmt.Sprint(ev.Type, " ", ev.TaskID, " ", ev.Err))
						}
					})
					t.Fatalf("retry %s: %v; state %+v; events %q", id, err, readRet(t, m), evs)
				}
				md.order = slices.DeleteFunc(md.order, func(s string) bool { return s == id })
				md.pending[id] = true
				// a delete of the pending one must fail
				if md.typ[id] == "nobody" {
					if err := m.Delete(ctx, id); !errors.Is(err, ErrNotFinal) {
						t.Fatalf("delete of retried %s: %v", id, err)
					}
				}
				if md.typ[id] == "fail" {
					if _, err := m.Wait(ctx, id); err != nil {
						t.Fatal(err)
					}
					md.finished(id)
				} else if rng.Intn(2) == 0 {
					if err := m.Cancel(ctx, id); err != nil {
						t.Fatal(err)
					}
					awaitStatus(id, StatusCancelled)
					md.finished(id)
				}
				desc = "retry " + id
			case op == 6 || op == 7:
				fs := finals(false)
				if len(fs) == 0 {
					continue
				}
				id := fs[rng.Intn(len(fs))]
				if err := m.Delete(ctx, id); err != nil {
					t.Fatalf("delete %s: %v", id, err)
				}
				md.order = slices.DeleteFunc(md.order, func(s string) bool { return s == id })
				desc = "delete " + id
				if rng.Intn(2) == 0 { // the ID is free: reuse it at once
					runTask(t, m, messages.Task{ID: id, Type: "job", Description: "again"})
					md.typ[id] = "job"
					md.finished(id)
					desc += " + resubmit"
				}
			case op == 8:
				// a pending one cancelled
				var ps []string
				for id := range md.pending {
					ps = append(ps, id)
				}
				sort.Strings(ps)
				if len(ps) == 0 || md.typ[ps[0]] != "nobody" {
					continue
				}
				id := ps[rng.Intn(len(ps))]
				if md.typ[id] != "nobody" {
					continue
				}
				if err := m.Cancel(ctx, id); err != nil {
					t.Fatal(err)
				}
				awaitStatus(id, StatusCancelled)
				md.finished(id)
				desc = "cancel pending " + id
			case op == 9:
				if !withJournal || restarts > 3 {
					continue
				}
				restarts++
				if err := m.Stop(); err != nil {
					t.Fatal(err)
				}
				_ = j.Close()
				j = openJournal(t, path)
				m = startManager(t, opts()...)
				retWorker(t, m, on, fmt.Sprint("W", restarts))
				// let one sweep trim what the previous run had not deleted yet
				time.Sleep(50 * time.Millisecond)
				desc = "restart"
			}

			s := checkRet(t, m, k, fmt.Sprintf("step %d (%s)", step, desc))
			if want := md.want(k); !slices.Equal(s.settled, want) {
				t.Fatalf("step %d (%s): settled %v, want %v", step, desc, s.settled, want)
			}
			for id := range md.pending {
				if !slices.Contains(s.pending, id) {
					t.Fatalf("step %d (%s): pending %s forgotten (pending %v)", step, desc, id, s.pending)
				}
			}
			if withJournal {
				want := len(md.want(k)) + len(md.pending)
				testutil.Eventually(t, fmt.Sprintf("step %d (%s): journal to hold %d", step, desc, want), func() bool {
					n, err := j.Len()
					return err == nil && n == want
				})
			}
		}
	})
}

func TestRetentionModelRandomMem(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		for _, k := range []int{1, 3} {
			t.Run(fmt.Sprint(seed, "/", k), func(t *testing.T) { runRandomRet(t, seed, k, false, 150) })
		}
	}
}

func TestRetentionModelRandomJournal(t *testing.T) {
	for seed := int64(1); seed <= 3; seed++ {
		for _, k := range []int{1, 4} {
			t.Run(fmt.Sprint(seed, "/", k), func(t *testing.T) { runRandomRet(t, seed, k, true, 120) })
		}
	}
}

// writeFinished writes n finished task records straight into a journal,
// finishing at base + i ms.
func writeFinished(t *testing.T, j *Journal, prefix string, n int, base time.Time, step time.Duration) {
	t.Helper()
	for lo := 0; lo < n; lo += 1000 {
		var recs []*taskRecord
		for i := lo; i < min(n, lo+1000); i++ {
			id := fmt.Sprintf("%s%06d", prefix, i)
			recs = append(recs, &taskRecord{
				Seq: uint64(i + 1), Task: messages.Task{ID: id, Type: "job", Description: "d"},
				SubmittedAt: base, Status: StatusCompleted, Attempt: 1,
				Result:     &messages.TaskResult{TaskID: id, Attempt: 1, Success: true},
				FinishedAt: base.Add(time.Duration(i) * step),
			})
		}
		if err := j.writeTasks(recs, nil, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// A journal restored with far more than k is trimmed over sweeps, the
// newest kept.
func TestRetentionModelRestoreOverK(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		path := filepath.Join(t.TempDir(), "big.db")
		j := openJournal(t, path)
		writeFinished(t, j, "r", 9000, time.Now().Add(-time.Hour), time.Millisecond)
		m := startManager(t, on, WithJournal(j), WithKeepFinished(10), WithRetention(0), WithTick(time.Second))
		s := readRet(t, m)
		testutil.Eventually(t, "trimmed to 10", func() bool { return keptCount(t, m) == 10 })
		s = checkRet(t, m, 10, "trimmed")
		want := []string{}
		for i := 8990; i < 9000; i++ {
			want = append(want, fmt.Sprintf("r%06d", i))
		}
		if !slices.Equal(s.settled, want) {
			t.Fatalf("kept %v, want %v", s.settled, want)
		}
		testutil.Eventually(t, "journal to 10", func() bool { n, _ := j.Len(); return n == 10 })
	})
}

// A finish right after a restore with far more than k: how many deletes
// in one go?
func TestRetentionModelRestoreOverKThenFinish(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		path := filepath.Join(t.TempDir(), "big.db")
		j := openJournal(t, path)
		writeFinished(t, j, "r", 9000, time.Now().Add(-time.Hour), time.Millisecond)
		m := startManager(t, on, WithJournal(j), WithKeepFinished(10), WithRetention(0), WithTick(time.Hour))
		retWorker(t, m, on, "W")
		runTask(t, m, messages.Task{ID: "new", Type: "job", Description: "d"})
		s := readRet(t, m)
		if s.kept != 9001-expireBatch {
			t.Fatalf("one finish left %d of 9,001 finished tasks kept, want %d: at most %d forgotten at once, the sweeps trim the rest", s.kept, 9001-expireBatch, expireBatch)
		}
		testutil.Eventually(t, "the journal to follow", func() bool {
			n, err := j.Len()
			return err == nil && n == s.kept
		})
	})
}

// Restored with retention expired: the old ones go, the newer stay until
// their time. (Every test here runs in a synctest bubble: its sleeps move
// the bubble's clock, they wait for nothing.)
func TestRetentionModelRestoreRetention(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		path := filepath.Join(t.TempDir(), "ret.db")
		j := openJournal(t, path)
		now := time.Now()
		writeFinished(t, j, "old", 5000, now.Add(-3*time.Hour), 0)
		writeFinished(t, j, "new", 5, now.Add(-30*time.Minute), time.Minute) // expire at +30..34 min
		m := startManager(t, on, WithJournal(j), WithRetention(time.Hour), WithKeepFinished(0), WithTick(time.Second))
		testutil.Eventually(t, "old gone", func() bool { return keptCount(t, m) == 5 })
		checkRet(t, m, 0, "old gone")
		testutil.Eventually(t, "journal to 5", func() bool { n, _ := j.Len(); return n == 5 })
		time.Sleep(29 * time.Minute)
		if s := checkRet(t, m, 0, "29min"); s.kept != 5 {
			t.Fatalf("at 29 min: kept %d, want 5", s.kept)
		}
		time.Sleep(3 * time.Minute) // 32 min: new0 and new1 are past their hour; new2 ends at the 32nd minute, within a tick
		s := checkRet(t, m, 0, "32min")
		if len(s.settled) < 2 || len(s.settled) > 3 {
			t.Fatalf("at 32 min: %v, want new2 (or new3) to new4 kept", s.settled)
		}
		time.Sleep(10 * time.Minute)
		if s := checkRet(t, m, 0, "42min"); s.kept != 0 || len(s.settled) != 0 {
			t.Fatalf("at 42 min: %+v", s)
		}
	})
}

// Retention while a task is retried: the new finish restarts its time.
func TestRetentionModelRetentionRetry(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		j := openJournal(t, filepath.Join(t.TempDir(), "rr.db"))
		m := startManager(t, on, WithJournal(j), WithRetention(2*time.Second), WithKeepFinished(3), WithTick(10*time.Millisecond))
		retWorker(t, m, on, "W")
		ctx := testutil.Context(t)
		for i := range 3 {
			runTask(t, m, messages.Task{ID: fmt.Sprint("f", i), Type: "fail", Description: "d", MaxRetries: messages.NoRetry})
		}
		time.Sleep(1500 * time.Millisecond)
		for i := range 3 {
			if err := m.Retry(ctx, fmt.Sprint("f", i)); err != nil {
				t.Fatal(err)
			}
			checkRet(t, m, 3, "retry")
		}
		for i := range 3 {
			if _, err := m.Wait(ctx, fmt.Sprint("f", i)); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(1000 * time.Millisecond) // 2.5 s after first finish, 1 s after second
		if s := checkRet(t, m, 3, "after retry"); s.kept != 3 {
			t.Fatalf("kept %d, want 3 (refinished 1 s ago)", s.kept)
		}
		time.Sleep(1500 * time.Millisecond)
		if s := checkRet(t, m, 3, "after expiry"); s.kept != 0 || s.expLen != 0 {
			t.Fatalf("after expiry: %+v", s)
		}
		testutil.Eventually(t, "journal empty", func() bool { n, _ := j.Len(); return n == 0 })
	})
}

// Forget + journal + restart: is the journal ever trimmed?
func TestRetentionModelForgetJournal(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		path := filepath.Join(t.TempDir(), "fg.db")
		j := openJournal(t, path)
		m := startManager(t, on, WithJournal(j), WithForgetFinished(), WithKeepFinished(2), WithRetention(time.Second), WithTick(10*time.Millisecond))
		retWorker(t, m, on, "W")
		for i := range 10 {
			runTask(t, m, messages.Task{ID: fmt.Sprint("t", i), Type: "job", Description: "d"})
		}
		checkRet(t, m, 2, "forget")
		time.Sleep(3 * time.Second)
		if n, _ := j.Len(); n != 10 {
			t.Fatalf("forget: the journal holds %d final records after the retention, want all 10 (the layer above reads them at a restart)", n)
		}
		_ = m.Stop()
		_ = j.Close()
		j = openJournal(t, path)
		m = startManager(t, on, WithJournal(j), WithForgetFinished(), WithKeepFinished(2), WithRetention(time.Second), WithTick(10*time.Millisecond))
		time.Sleep(3 * time.Second)
		if s := checkRet(t, m, 2, "forget restart"); len(s.settled) != 0 {
			t.Fatalf("forget restart: %d final tasks held in memory, want none", len(s.settled))
		}
		if n, _ := j.Len(); n != 10 {
			t.Fatalf("forget restart: the journal holds %d, want 10", n)
		}
	})
}

// Many deletes: the queue stays small, the count exact.
func TestRetentionModelManyDeletes(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		j := openJournal(t, filepath.Join(t.TempDir(), "del.db"))
		writeFinished(t, j, "d", 6000, time.Now().Add(-time.Minute), time.Millisecond)
		m := startManager(t, on, WithJournal(j), WithTick(10*time.Millisecond)) // defaults
		ctx := testutil.Context(t)
		checkRet(t, m, 0, "restored")
		errs := make(chan error, 6000)
		for i := 0; i < 6000; i++ {
			go func(i int) { errs <- m.Delete(ctx, fmt.Sprintf("d%06d", i)) }(i)
		}
		for range 6000 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		s := checkRet(t, m, 0, "all deleted")
		if s.kept != 0 || len(s.settled) != 0 || s.expLen > 64 {
			t.Fatalf("after deletes: kept %d settled %d expiring %d", s.kept, len(s.settled), s.expLen)
		}
		if n, _ := j.Len(); n != 0 {
			t.Fatalf("journal %d", n)
		}
	})
}

// A hook that cancels another task while the first settles: which is
// forgotten first under k=1?
func TestRetentionModelHookNestedSettle(t *testing.T) {
	onMemnet(t, func(t *testing.T, _ *memnet.Network, on agent.Option) {
		m := startManager(t, on, WithKeepFinished(1), WithRetention(0), WithHook(func(tx *Tx, ev Event) {
			if ev.Type == EventCompleted && ev.TaskID == "a" {
				_ = tx.Cancel("b", "chained")
			}
		}))
		retWorker(t, m, on, "W")
		ctx := testutil.Context(t)
		if err := m.Submit(ctx, messages.Task{ID: "b", Type: "nobody", Description: "d"}); err != nil {
			t.Fatal(err)
		}
		runTask(t, m, messages.Task{ID: "a", Type: "job", Description: "d"})
		type fin struct {
			ID string
			At time.Time
		}
		var fs []fin
		for _, id := range []string{"a", "b"} {
			if info, err := m.Task(ctx, id); err == nil { // else forgotten
				fs = append(fs, fin{id, info.FinishedAt})
			}
		}
		if len(fs) != 1 || fs[0].ID != "b" {
			t.Fatalf("kept %v, want only b (cancelled by the hook, so it finished after a)", fs)
		}
		checkRet(t, m, 1, "nested")
	})
}
