package task

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/hashicorp/raft"
)

var _ raft.BatchingFSM = (*journalFSM)(nil)

// Entries Raft hands over together are written in one transaction, in
// order; one that cannot be read fails with every entry after it, and the
// replica is told to leave, while those before it are written.
func TestApplyBatch(t *testing.T) {
	j, err := OpenJournal(filepath.Join(t.TempDir(), "j.db"), "ws")
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	seqs := map[string]uint64{"a": 1, "b": 2, "c": 3, "d": 4}
	entry := func(id string, st Status) []byte {
		b, err := journalBatch{Records: []*taskRecord{{Seq: seqs[id], Task: messages.Task{ID: id, Type: "echo"}, SubmittedAt: time.Unix(1, 0), Status: st}}}.MarshalMsg([]byte{entryBatch})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var left []error
	f := &journalFSM{j: j, failed: func(err error) { left = append(left, err) }}
	logs := []*raft.Log{
		{Index: 1, Type: raft.LogCommand, Data: entry("a", StatusPending)},
		{Index: 2, Type: raft.LogConfiguration},
		{Index: 3, Type: raft.LogCommand, Data: entry("a", StatusCompleted)}, // the later write wins
		{Index: 4, Type: raft.LogCommand, Data: entry("b", StatusPending)},
	}
	res := f.ApplyBatch(logs)
	if len(res) != 4 || res[0] != nil || res[1] != nil || res[2] != nil || res[3] != nil || len(left) != 0 {
		t.Fatalf("a good batch: %v, left %v", res, left)
	}
	recs, err := j.loadTasks()
	if err != nil || len(recs) != 2 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Task.ID == "a" && r.Status != StatusCompleted {
			t.Fatalf("a is %v, want the later write", r.Status)
		}
	}
	res = f.ApplyBatch([]*raft.Log{
		{Index: 5, Type: raft.LogCommand, Data: entry("c", StatusPending)},
		{Index: 6, Type: raft.LogCommand, Data: []byte{9}},
		{Index: 7, Type: raft.LogCommand, Data: entry("d", StatusPending)},
	})
	if res[0] != nil || len(left) != 1 {
		t.Fatalf("the entry before the bad one: %v, left %v", res[0], left)
	}
	for _, r := range res[1:] {
		if err, _ := r.(error); !errors.Is(err, ErrReplicaEntry) {
			t.Fatalf("the bad entry and the one after: %v, want ErrReplicaEntry", res)
		}
	}
	if n, _ := j.Len(); n != 3 {
		t.Fatalf("%d records, want a, b and c", n)
	}
}
