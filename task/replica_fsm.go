package task

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// The replicated journal: every commit of the leading manager is an entry
// of the replicas' Raft log, applied to each replica's own journal file in
// log order; a snapshot of the log is a copy of that file.

// entryBatch marks a log entry holding one journalBatch (the first byte
// of every entry names its kind, so others can be added).
const entryBatch byte = 1

// ErrReplicaEntry reports a replicated log entry this version cannot read.
var ErrReplicaEntry = errors.New("task: unreadable replicated journal entry")

// journalFSM applies the log to a journal. An entry it cannot apply (a
// disk that fails, an entry it cannot read) leaves the journal behind the
// log for good: failed is told, and the replica leaves its group.
type journalFSM struct {
	j      *Journal
	failed func(error)
}

// Apply implements raft.FSM. Its result is the error of the write (nil
// when it succeeded); the leader's commit returns it.
func (f *journalFSM) Apply(l *raft.Log) (res any) {
	if l.Type != raft.LogCommand {
		return nil
	}
	defer func() {
		if r := recover(); r != nil { // a bug, not a reason to crash every replica on replay
			err := fmt.Errorf("%w: index %d: %v", ErrReplicaEntry, l.Index, r)
			if f.failed != nil {
				f.failed(err)
			}
			res = err
		}
	}()
	if err := f.j.applyEntry(l.Data); err != nil {
		if f.failed != nil {
			f.failed(fmt.Errorf("index %d: %w", l.Index, err))
		}
		return err
	}
	return nil
}

// ApplyBatch implements raft.BatchingFSM: the entries Raft hands over
// together (committed together, or applied while catching up) are written
// in one journal transaction, in log order. Each result is as Apply's.
// An entry that cannot be read fails with those after it in the batch
// (the replica leaves its group: see failed).
func (f *journalFSM) ApplyBatch(logs []*raft.Log) (res []any) {
	res = make([]any, len(logs))
	fail := func(from int, err error) {
		for i := from; i < len(logs); i++ {
			if logs[i].Type == raft.LogCommand && res[i] == nil {
				res[i] = err
			}
		}
		if f.failed != nil {
			f.failed(err)
		}
	}
	first := -1
	defer func() {
		if r := recover(); r != nil {
			fail(max(first, 0), fmt.Errorf("%w: from index %d: %v", ErrReplicaEntry, logs[max(first, 0)].Index, r))
		}
	}()
	var ws []journalWrite
	bad, badErr := -1, error(nil)
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		w, err := f.j.decodeEntry(l.Data)
		if err != nil {
			bad, badErr = i, fmt.Errorf("index %d: %w", l.Index, err)
			break
		}
		if first < 0 {
			first = i
		}
		ws = append(ws, w)
	}
	if len(ws) > 0 {
		if err := f.j.writeMany(ws); err != nil {
			fail(first, fmt.Errorf("from index %d: %w", logs[first].Index, err))
			return res
		}
	}
	if bad >= 0 {
		fail(bad, badErr)
	}
	return res
}

// applyEntry writes one replicated log entry to the journal's file.
func (j *Journal) applyEntry(data []byte) error {
	w, err := j.decodeEntry(data)
	if err != nil {
		return err
	}
	return j.writeMany([]journalWrite{w})
}

// decodeEntry reads one replicated log entry's writes.
func (j *Journal) decodeEntry(data []byte) (journalWrite, error) {
	if fail := j.failApply.Load(); fail != nil {
		if err := (*fail)(); err != nil {
			return journalWrite{}, fmt.Errorf("%w: %w", ErrJournalWrite, err)
		}
	}
	if len(data) == 0 || data[0] != entryBatch {
		return journalWrite{}, fmt.Errorf("%w: kind %v", ErrReplicaEntry, data[:min(1, len(data))])
	}
	var b journalBatch
	if _, err := b.UnmarshalMsg(data[1:]); err != nil {
		return journalWrite{}, fmt.Errorf("%w: %w", ErrReplicaEntry, err)
	}
	for i, r := range b.Records {
		if r == nil || r.Task.ID == "" || r.Seq == 0 {
			return journalWrite{}, fmt.Errorf("%w: record %d has no task or no sequence number", ErrReplicaEntry, i)
		}
	}
	puts := make([]journalPut, len(b.Puts))
	for i, p := range b.Puts {
		if err := checkEntryPut(p); err != nil {
			return journalWrite{}, fmt.Errorf("%w: %w", ErrReplicaEntry, err)
		}
		puts[i] = journalPut{bucket: p.Bucket, key: p.Key, value: p.Value}
	}
	var workers map[string]WorkerStats
	if b.Workers != nil {
		workers = b.Workers
	}
	deletes := make([]journalDelete, len(b.Deletes))
	for i, id := range b.Deletes {
		deletes[i].id = id
		if len(b.DeleteSeqs) == len(b.Deletes) {
			deletes[i].seq = b.DeleteSeqs[i]
		}
	}
	return journalWrite{b.Records, workers, deletes, puts}, nil
}

// checkEntryPut refuses a put of a replicated entry that no manager
// makes: the manager's own records of the meta bucket (paused types,
// revoked grants, periodic tasks' last runs, Unique keys that outlive
// their tasks) and the records of layers above it (their own buckets) are
// the only ones.
func checkEntryPut(p batchPut) error {
	if p.Bucket == string(bucketMeta) {
		for _, k := range [][]byte{keyPaused, keyRevoked, keyPeriodic, keyUnique} {
			if bytes.Equal(p.Key, k) {
				return nil
			}
		}
		return fmt.Errorf("task: journal record %q of bucket %q is not the manager's to put", p.Key, p.Bucket)
	}
	return checkBucket(p.Bucket)
}

// Snapshot implements raft.FSM: a read transaction, consistent with the
// entries applied so far, that Persist copies out while applies go on.
func (f *journalFSM) Snapshot() (raft.FSMSnapshot, error) {
	tx, err := f.j.db.Begin(false)
	if err != nil {
		return nil, fmt.Errorf("task: journal snapshot: %w", err)
	}
	return &journalSnapshot{tx: tx}, nil
}

// Restore implements raft.FSM: the journal's content becomes the
// snapshot's (a replica that lost its files, or fell too far behind).
func (f *journalFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(f.j.path), ".journal-restore-*")
	if err != nil {
		return fmt.Errorf("task: journal restore: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("task: journal restore: %w", err)
	}
	src, err := bolt.Open(tmp.Name(), 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%w: snapshot: %w", ErrJournalCorrupt, err)
	}
	defer src.Close()
	return f.j.replaceWith(src)
}

// replaceWith makes the journal's content a copy of src's, in one
// transaction. src must be a journal of the same workspace.
func (j *Journal) replaceWith(src *bolt.DB) error {
	return src.View(func(stx *bolt.Tx) error {
		meta := stx.Bucket(bucketMeta)
		if meta == nil || stx.Bucket(bucketTasks) == nil {
			return fmt.Errorf("%w: snapshot is not a journal", ErrJournalCorrupt)
		}
		return j.db.Update(func(tx *bolt.Tx) error {
			if ws := tx.Bucket(bucketMeta).Get(keyWorkspc); !bytes.Equal(ws, meta.Get(keyWorkspc)) {
				return fmt.Errorf("%w: snapshot of workspace %q, journal of %q", ErrJournalVersion, meta.Get(keyWorkspc), ws)
			}
			var names [][]byte
			if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, bytes.Clone(name))
				return nil
			}); err != nil {
				return err
			}
			for _, name := range names {
				if err := tx.DeleteBucket(name); err != nil {
					return err
				}
			}
			if err := stx.ForEach(func(name []byte, b *bolt.Bucket) error {
				nb, err := tx.CreateBucket(name)
				if err != nil {
					return err
				}
				return copyBucket(nb, b)
			}); err != nil {
				return err
			}
			// A snapshot of an older version (a leader not yet upgraded)
			// is migrated as its file would be when opened.
			if !knownVersion(tx.Bucket(bucketMeta).Get(keyVersion)) {
				return fmt.Errorf("%w: snapshot of version %q", ErrJournalVersion, tx.Bucket(bucketMeta).Get(keyVersion))
			}
			return upgrade(tx)
		})
	})
}

// copyBucket copies src's pairs and nested buckets into dst.
func copyBucket(dst, src *bolt.Bucket) error {
	return src.ForEach(func(k, v []byte) error {
		if v != nil {
			return dst.Put(bytes.Clone(k), bytes.Clone(v))
		}
		nd, err := dst.CreateBucket(bytes.Clone(k))
		if err != nil {
			return err
		}
		return copyBucket(nd, src.Bucket(k))
	})
}

// journalSnapshot is a journal as of one log index.
type journalSnapshot struct{ tx *bolt.Tx }

// Persist implements raft.FSMSnapshot.
func (s *journalSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("task: journal snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *journalSnapshot) Release() { _ = s.tx.Rollback() }
