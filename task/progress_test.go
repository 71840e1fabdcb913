package task

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// A running task's progress reaches the manager (Task, EventProgress),
// rate-limited on the wire, the latest report always through; values out
// of range are clamped and long messages cut.
func TestProgress(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	release := make(chan struct{})
	reported := make(chan struct{})
	startWorker(t, m, "W", func(w *Worker) {
		w.Handle("job", func(ctx context.Context, j *Job) ([]byte, error) {
			for i := range 1000 {
				j.Progress(float64(i)/1000, "working")
			}
			j.Progress(0.5, "half way")
			j.Progress(7, strings.Repeat("x", 1000)) // clamped, cut
			j.Progress(0.75, "three quarters")
			close(reported)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil, nil
		})
	})
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "p", Type: "job", Description: "reports progress"}); err != nil {
		t.Fatal(err)
	}
	<-reported
	start := time.Now()
	m.awaitEvent(t, "the last report", func(ev Event) bool {
		return ev.Type == EventProgress && ev.ProgressMessage == "three quarters"
	})
	info, err := m.Task(ctx, "p")
	if err != nil || info.Progress != 0.75 || info.ProgressMessage != "three quarters" {
		t.Fatalf("progress: %+v %v", info, err)
	}
	// The stats (the dashboard's running table) show it too.
	st, err := m.Stats(ctx)
	if err != nil || len(st.Running) != 1 || st.Running[0].ID != "p" || st.Running[0].Worker != "W" ||
		st.Running[0].Progress != 0.75 || st.Running[0].ProgressMessage != "three quarters" {
		t.Fatalf("running in the stats: %+v %v", st.Running, err)
	}
	m.events.Lock()
	n := 0
	for _, ev := range m.log {
		if ev.Type == EventProgress {
			n++
			if ev.Progress < 0 || ev.Progress > 1 || len(ev.ProgressMessage) > messages.MaxProgressMessage {
				t.Errorf("a report out of bounds: %+v", ev)
			}
		}
	}
	m.events.Unlock()
	// 1,003 calls: the first goes at once, the rest are coalesced into one
	// report per 200 ms.
	if limit := 2 + int(time.Since(start)/progressEvery) + 2; n > limit {
		t.Fatalf("%d progress reports on the wire, want at most %d", n, limit)
	}
	close(release)
	if r, err := m.Wait(ctx, "p"); err != nil || !r.Success {
		t.Fatalf("result: %+v %v", r, err)
	}
}

// A report sent at once (its window passed) supersedes one still pending:
// the timer that was to flush the older one, due at about the same time,
// does not send it after the newer (the skill-routing example printed
// "step 6 of 7" before "step 5 of 7").
func TestProgressNeverGoesBack(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var sent []string
		s := &progressSender{send: func(p messages.TaskProgress) { sent = append(sent, p.Message) }}
		s.report(messages.TaskProgress{Message: "1"}) // at once
		s.report(messages.TaskProgress{Message: "5"}) // within the window: pending
		// The window passes, and report 6 takes the lock before the
		// timer's flush does.
		s.mu.Lock()
		s.last = s.last.Add(-progressEvery)
		s.mu.Unlock()
		s.report(messages.TaskProgress{Message: "6"})
		time.Sleep(2 * progressEvery)
		synctest.Wait()
		if got := strings.Join(sent, " "); got != "1 6" {
			t.Fatalf("sent %q, want \"1 6\"", got)
		}
	})
}

// A timer disarmed while its flush waited for the lock sends nothing: the
// rate limit holds for the report pending after it, and the handler's
// last report, held back when it returns, still goes out.
func TestProgressStaleFlushAndLastReport(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var sent []string
		var at []time.Time
		s := &progressSender{send: func(p messages.TaskProgress) { sent = append(sent, p.Message); at = append(at, time.Now()) }}
		got := func() string { // sends run under s.mu, some on the timer's goroutine
			s.mu.Lock()
			defer s.mu.Unlock()
			return strings.Join(sent, " ")
		}
		s.report(messages.TaskProgress{Message: "1"})
		s.report(messages.TaskProgress{Message: "5"}) // pending, a timer armed
		stale := s.gen
		s.mu.Lock()
		s.last = s.last.Add(-progressEvery)
		s.mu.Unlock()
		s.report(messages.TaskProgress{Message: "6"}) // at once: the timer is disarmed
		s.report(messages.TaskProgress{Message: "7"}) // pending, a new timer armed
		s.flush(stale)                                // the old timer's flush, late for the lock
		if got := got(); got != "1 6" {
			t.Fatalf("after the stale flush: sent %q, want \"1 6\"", got)
		}
		time.Sleep(2 * progressEvery)
		synctest.Wait()
		if got := got(); got != "1 6 7" || at[2].Sub(at[1]) < progressEvery {
			t.Fatalf("sent %q at %v, want \"1 6 7\", 7 no sooner than %v after 6", got, at, progressEvery)
		}
		s.report(messages.TaskProgress{Message: "last"}) // within the window: held back
		s.stop()
		s.stop()
		if got := got(); got != "1 6 7 last" {
			t.Fatalf("after stop: sent %q, want the last report too", got)
		}
	})
}
