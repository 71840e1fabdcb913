package task

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
)

// A journal written by version 2 (testdata/journal-v2.db: tasks zeta,
// alpha and beta completed in that order, mid completed and deleted,
// waiting never run, a layer's record) opens: its records are keyed by
// sequence number from then on, and a manager resumes on it, deleting
// and adding records by the new keys.
func TestJournalV2IsMigrated(t *testing.T) {
	t.Parallel()
	j := openTestdata(t, "journal-v2.db", "ws-v2")
	keys := func() (ids []string) {
		t.Helper()
		err := j.db.View(func(tx *bolt.Tx) error {
			if v := tx.Bucket(bucketMeta).Get(keyVersion); !bytes.Equal(v, []byte(journalVersion)) {
				t.Fatalf("version %q after the migration", v)
			}
			return tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
				var r taskRecord
				if err := messages.Unmarshal(v, &r); err != nil {
					return err
				}
				if len(k) != 8 || binary.BigEndian.Uint64(k) != r.Seq {
					t.Fatalf("task %q has key %x, its sequence number is %d", r.Task.ID, k, r.Seq)
				}
				ids = append(ids, r.Task.ID)
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if got := keys(); !slices.Equal(got, []string{"zeta", "alpha", "beta", "waiting"}) {
		t.Fatalf("records in key order: %v, want submission order", got)
	}
	// The test data was written on a fixed day: the default retention
	// (a day) would expire its finished tasks as soon as the manager starts.
	m := startManager(t, WithJournal(j), WithRetention(0), agent.WithWorkspace("ws-v2"))
	ctx := testutil.Context(t)
	for _, id := range []string{"zeta", "alpha", "beta"} {
		if r, err := m.Wait(ctx, id); err != nil || !r.Success {
			t.Fatalf("%s after the migration: %+v %v", id, r, err)
		}
	}
	if _, err := m.Task(ctx, "mid"); err == nil {
		t.Fatal("the deleted task is back")
	}
	var layer []string
	_ = j.forEach("layer", func(k, v []byte) error { layer = append(layer, string(k)+"="+string(v)); return nil })
	if len(layer) != 1 || layer[0] != "k=v" {
		t.Fatalf("a layer's records: %v", layer)
	}
	if err := m.Delete(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) }, agent.WithWorkspace("ws-v2"))
	if _, err := m.Run(ctx, messages.Task{ID: "new", Type: "job", Description: "d"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(ctx, func(*Tx) error { return nil }); err != nil { // everything before is durable
		t.Fatal(err)
	}
	if got := keys(); !slices.Equal(got, []string{"zeta", "beta", "waiting", "new"}) {
		t.Fatalf("records after a delete and a new task: %v", got)
	}
}

// A replicated log entry of version 2 names a deleted task by ID only: the
// record is found and deleted all the same.
func TestVersion2DeleteByID(t *testing.T) {
	t.Parallel()
	j := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	recs := []*taskRecord{{Seq: 7, Task: messages.Task{ID: "a", Type: "job"}}, {Seq: 9, Task: messages.Task{ID: "b", Type: "job"}}}
	if err := j.writeTasks(recs, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	data, err := journalBatch{Deletes: []string{"a", "nosuch"}}.MarshalMsg([]byte{entryBatch})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.applyEntry(data); err != nil {
		t.Fatal(err)
	}
	got, err := j.loadTasks()
	if err != nil || len(got) != 1 || got[0].Task.ID != "b" {
		t.Fatalf("after deleting a by ID: %+v %v", got, err)
	}
}

// A manager that forgets finished tasks takes their IDs again: each use
// has its own record (keyed by its sequence number), and a restart keeps
// only the last, deleting the others.
func TestAReusedIDKeepsOneRecord(t *testing.T) {
	t.Parallel()
	j := openJournal(t, filepath.Join(t.TempDir(), "f.db"))
	m := startManager(t, WithJournal(j), WithForgetFinished())
	startWorker(t, m, "W", func(w *Worker) { w.Handle("job", noop) })
	ctx := testutil.Context(t)
	for range 3 {
		if _, err := m.Run(ctx, messages.Task{ID: "a", Type: "job", Description: "d"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	m2 := startManager(t, WithJournal(j), WithForgetFinished())
	st, err := m2.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := m2.Update(ctx, func(*Tx) error { return nil }); err != nil { // the deletes are durable
		t.Fatal(err)
	}
	if n, _ := j.Len(); n != 1 || st.Submitted != 1 || st.Succeeded != 1 {
		t.Fatalf("%d task records for one ID, %d submitted, %d succeeded; want 1, 1, 1", n, st.Submitted, st.Succeeded)
	}
}
