package task

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/messages"
)

// A replicated log entry arrives from another manager: whatever its bytes,
// applying it either writes a well-formed batch or fails with
// ErrReplicaEntry (or ErrJournalWrite), never panics, and never touches
// the manager's reserved buckets through a put.
func FuzzApplyEntry(f *testing.F) {
	good := journalBatch{
		Records: []*taskRecord{{Seq: 1, Task: messages.Task{ID: "a", Type: "echo"}, SubmittedAt: time.Unix(1, 0), Status: StatusPending}},
		Workers: workerTable{"w": {Name: "w", Results: 1}},
		Deletes: []string{"old"},
		Puts:    []batchPut{{Bucket: "playground", Key: []byte("k"), Value: []byte("v")}},
	}
	data, err := good.MarshalMsg([]byte{entryBatch})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte{entryBatch})
	f.Add([]byte{2, 0x80})
	bad, _ := journalBatch{Puts: []batchPut{{Bucket: "tasks", Key: []byte("k")}}}.MarshalMsg([]byte{entryBatch})
	f.Add(bad)
	nilRec, _ := journalBatch{Records: []*taskRecord{nil}}.MarshalMsg([]byte{entryBatch})
	f.Add(nilRec)
	bySeq, _ := journalBatch{Deletes: []string{"a", "b"}, DeleteSeqs: []uint64{1, 9}}.MarshalMsg([]byte{entryBatch}) // format 3's deletes
	f.Add(bySeq)
	j, err := OpenJournal(filepath.Join(f.TempDir(), "j.db"), "ws")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = j.Close() })
	j.db.NoSync = true
	f.Fuzz(func(t *testing.T, data []byte) {
		err := j.applyEntry(data)
		if err != nil && !errors.Is(err, ErrReplicaEntry) && !errors.Is(err, ErrJournalWrite) {
			t.Fatalf("unnamed error: %v", err)
		}
	})
}
