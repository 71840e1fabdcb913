package task

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
)

// openTestdata opens a copy of a committed test journal, for workspace;
// it is closed after the test.
func openTestdata(t *testing.T, name, workspace string) *Journal {
	t.Helper()
	in, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	path := filepath.Join(t.TempDir(), name)
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(path, workspace)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

// A journal written by version 1 (testdata/journal-v1.db: six tasks, one
// of each status, two workers' statistics, a layer's record) opens: its
// records are rewritten in the current format, and a manager resumes on
// it.
func TestJournalV1IsMigrated(t *testing.T) {
	t.Parallel()
	j := openTestdata(t, "journal-v1.db", "ws-v1")
	recs, err := j.loadTasks()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	byID := map[string]*taskRecord{}
	for _, r := range recs {
		byID[r.Task.ID] = r
	}
	want := map[string]Status{"done": StatusCompleted, "failed": StatusFailed, "cancelled": StatusCancelled,
		"running": StatusRunning, "retrying": StatusRetrying, "pending": StatusPending}
	for id, st := range want {
		if r := byID[id]; r == nil || r.Status != st {
			t.Fatalf("task %s: %+v, want status %v", id, r, st)
		}
	}
	done, failed := byID["done"], byID["failed"]
	if string(done.Result.Output) != "out" || done.Task.Timeout != time.Second || !done.FinishedAt.Equal(at.Add(time.Second)) ||
		len(done.Attempts) != 1 || done.Attempts[0].Worker != "W" || done.Attempts[0].Outcome != "ok" || !done.Attempts[0].EndedAt.Equal(at.Add(time.Second)) {
		t.Fatalf("done: %+v", done)
	}
	if string(failed.Inputs["done"]) != "out" || failed.Retries != 1 || len(failed.Attempts) != 2 || failed.Attempts[1].Worker != "V" {
		t.Fatalf("failed: %+v", failed)
	}
	workers, err := j.loadWorkers()
	if err != nil {
		t.Fatal(err)
	}
	if w := workers["W"]; w.Skill != 5 || w.Results != 2 || w.Successful != 1 || w.TotalTime != 2*time.Second || w.Capabilities[0] != "gpu" {
		t.Fatalf("worker W: %+v", w)
	}
	var layer []string
	_ = j.forEach("layer", func(k, v []byte) error { layer = append(layer, string(k)+"="+string(v)); return nil })
	if len(layer) != 1 || layer[0] != "k=v" {
		t.Fatalf("a layer's records: %v", layer)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, it is a current journal; a manager resumes on it.
	j2, err := OpenJournal(j.Path(), "ws-v1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j2.Close() })
	// Its finished tasks ended on a fixed day, long past the default
	// retention (a day).
	m := startManager(t, WithJournal(j2), WithRetention(0), agent.WithWorkspace("ws-v1"))
	ctx := testutil.Context(t)
	if r, err := m.Wait(ctx, "done"); err != nil || !r.Success || string(r.Output) != "out" {
		t.Fatalf("done after the migration: %+v %v", r, err)
	}
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, agent.WithWorkspace("ws-v1"), WithCapabilities("gpu"))
	for _, id := range []string{"running", "retrying"} {
		if r, err := m.Wait(ctx, id); err != nil || !r.Success {
			t.Fatalf("%s after the migration: %+v %v", id, r, err)
		}
	}
}

// Every field of the journal's records survives their codec.
func TestJournalRecordsKeepEveryField(t *testing.T) {
	t.Parallel()
	var r taskRecord
	testutil.Fill(&r)
	b, err := r.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back taskRecord
	if err := messages.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(r, back) {
		t.Fatalf("task record:\n in %+v\nout %+v (%v)", r, back, err)
	}
	var ws workerTable
	testutil.Fill(&ws)
	b, err = ws.MarshalMsg(nil)
	if err != nil {
		t.Fatal(err)
	}
	var wback workerTable
	if err := messages.Unmarshal(b, &wback); err != nil || !reflect.DeepEqual(ws, wback) {
		t.Fatalf("worker statistics:\n in %+v\nout %+v (%v)", ws, wback, err)
	}
	for s := range StatusCancelled + 1 {
		b, _ := s.MarshalMsg(nil)
		var back Status
		if err := messages.Unmarshal(b, &back); err != nil || back != s {
			t.Fatalf("status %v: %v %v", s, back, err)
		}
	}
	bad, _ := messages.Marshal(messages.Shutdown{Reason: "x"})
	var st Status
	if err := messages.Unmarshal(bad, &st); err == nil {
		t.Fatal("a map decoded as a status")
	}
}
