package task

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Journal errors.
var (
	// ErrJournalCorrupt reports a journal file that is not a readable
	// journal (damaged, truncated, or not a bbolt file at all).
	ErrJournalCorrupt = errors.New("task: journal corrupt")
	// ErrJournalVersion reports a journal written by an incompatible
	// version, or for another workspace.
	ErrJournalVersion = errors.New("task: journal incompatible")
	// ErrJournalLocked reports a journal another process has open.
	ErrJournalLocked = errors.New("task: journal in use by another process")
	// ErrJournalWrite reports a failed write: the change is not durable.
	// Submit returns it for tasks that are accepted in memory but would be
	// lost by a restart; the manager logs later failures and goes on (it
	// never blocks work on a broken disk).
	ErrJournalWrite = errors.New("task: journal write failed")
)

// journalVersion is written into every journal and checked on open.
// Version 4 keeps each worker's statistics under its name (a commit writes
// those of the workers that changed: version 3 wrote every worker's, the
// whole table, in every commit); version 3 keys task records by their
// sequence number (so a commit appends to the B+tree's last pages whatever
// the task IDs look like: random IDs made version 2 rewrite about four
// times the pages); version 2 keys every record by stable names and
// stores statuses by name. Journals of versions 1 to 3 are migrated when
// opened (journal_v1.go, journal_v2.go, journal_v3.go).
const journalVersion = "ceylon-journal/4"

var (
	bucketMeta    = []byte("meta")
	bucketTasks   = []byte("tasks")
	bucketWorkers = []byte("workers") // each worker's statistics, by name
	keyVersion    = []byte("version")
	keyWorkspc    = []byte("workspace")
	keyWorkers    = []byte("workers") // of meta: the whole table, in versions 1 to 3
)

// Journal is an embedded bbolt file where a Manager records every task
// it accepts and every final result, so that a restarted manager resumes:
// finished tasks keep their results, the others run again. Other layers
// (the playground) keep their own records in it too. Open one with
// [OpenJournal] and give it to the manager with [WithJournal]; it is safe
// for concurrent use.
type Journal struct {
	db   *bolt.DB
	path string
	// beforeWrite, when set (tests), runs before every write of task
	// records, told how many records and worker statistics it holds: a
	// slow or stuck disk; failWrite makes the write fail.
	beforeWrite func(records, workers int)
	failWrite   func() error
	failApply   atomic.Pointer[func() error] // the same for replicated entries (set while Raft runs)
}

// OpenJournal opens (or creates, if there is no file at path) the journal
// at path for a workspace. A file that is not a journal fails with
// [ErrJournalCorrupt]: an empty one (remove it to start a new journal: an
// empty file where a journal should be is a history lost, not a new one),
// a damaged one (every page is checked when the journal is opened), or
// another kind of file. One from another version or workspace fails with
// [ErrJournalVersion], one held by a running process with
// [ErrJournalLocked].
func OpenJournal(path, workspace string) (j *Journal, err error) {
	var db *bolt.DB
	defer func() {
		// bbolt panics on some damaged pages; a damaged file is an error.
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close() // and its lock goes with it
			}
			j, err = nil, fmt.Errorf("%w: %s: %v", ErrJournalCorrupt, path, r)
		}
	}()
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() == 0 {
		return nil, fmt.Errorf("%w: %s is empty (remove it to start a new journal)", ErrJournalCorrupt, path)
	}
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s", ErrJournalLocked, path)
	case errors.Is(err, os.ErrPermission) || errors.Is(err, os.ErrNotExist):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrJournalCorrupt, path, err)
	}
	// Every page is checked before anything is written to the file.
	err = db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			meta, err := tx.CreateBucketIfNotExists(bucketMeta)
			if err != nil {
				return err
			}
			if v := meta.Get(keyVersion); v == nil {
				if err := meta.Put(keyVersion, []byte(journalVersion)); err != nil {
					return err
				}
				if err := meta.Put(keyWorkspc, []byte(workspace)); err != nil {
					return err
				}
			} else if !knownVersion(v) {
				return fmt.Errorf("%w: %s was written by %q, this is %q", ErrJournalVersion, path, v, journalVersion)
			} else if ws := meta.Get(keyWorkspc); !bytes.Equal(ws, []byte(workspace)) {
				return fmt.Errorf("%w: %s belongs to workspace %q, not %q", ErrJournalVersion, path, ws, workspace)
			}
			if _, err := tx.CreateBucketIfNotExists(bucketTasks); err != nil {
				return err
			}
			if err := upgrade(tx); err != nil {
				return err
			}
			_, err = tx.CreateBucketIfNotExists(bucketWorkers)
			return err
		})
	}
	if err != nil {
		_ = db.Close()
		if errors.Is(err, ErrJournalVersion) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrJournalCorrupt, path, err)
	}
	return &Journal{db: db, path: path}, nil
}

// Close closes the journal file.
func (j *Journal) Close() error { return j.db.Close() }

// Path is the journal's file.
func (j *Journal) Path() string { return j.path }

// checkBucket refuses the manager's own buckets to layers above it.
func checkBucket(bucket string) error {
	if bucket == "" || bucket == string(bucketMeta) || bucket == string(bucketTasks) || bucket == string(bucketWorkers) {
		return fmt.Errorf("task: journal bucket %q is reserved", bucket)
	}
	return nil
}

// forEach calls fn for every pair of the bucket, in key order.
func (j *Journal) forEach(bucket string, fn func(key, value []byte) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrJournalCorrupt, r)
		}
	}()
	return j.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(fn)
	})
}

// writeTasks stores task records, with the records of layers above the
// manager that go with them, in one durable write.
func (j *Journal) writeTasks(recs []*taskRecord, workers map[string]WorkerStats, deletes []journalDelete, puts []journalPut) error {
	if j.beforeWrite != nil {
		j.beforeWrite(len(recs), len(workers))
	}
	if j.failWrite != nil {
		if err := j.failWrite(); err != nil {
			return fmt.Errorf("task: journal write: %w", err)
		}
	}
	return j.writeLocal(recs, workers, deletes, puts)
}

// writeLocal writes a batch to the journal's file.
func (j *Journal) writeLocal(recs []*taskRecord, workers map[string]WorkerStats, deletes []journalDelete, puts []journalPut) error {
	return j.writeMany([]journalWrite{{recs, workers, deletes, puts}})
}

// journalWrite is one commit's writes.
type journalWrite struct {
	recs    []*taskRecord
	workers map[string]WorkerStats
	deletes []journalDelete
	puts    []journalPut
}

// journalDelete names a task record to delete: by its sequence number,
// the record's key. A replicated log entry of version 2 names only the
// task's ID (seq 0): that record is looked for.
type journalDelete struct {
	id  string
	seq uint64
}

// seqKey is the key of the task record with sequence number seq: big
// endian, so keys sort in submission order.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

// writeMany writes commits to the journal's file in one transaction, in
// order.
func (j *Journal) writeMany(ws []journalWrite) error {
	// Keys and values are appended to one buffer, sized up front, and put
	// as slices of it (bbolt keeps them until the commit): one buffer a
	// commit, reused by the next.
	size := 0
	for _, w := range ws {
		for _, r := range w.recs {
			size += 8 + r.Msgsize() // an upper bound: the buffer never grows
		}
	}
	ap := arenas.Get().(*[]byte)
	if cap(*ap) < size {
		*ap = make([]byte, 0, size)
	}
	arena := (*ap)[:0]
	err := j.db.Update(func(tx *bolt.Tx) error {
		for _, w := range ws {
			var err error
			if arena, err = writeTx(tx, arena, w.recs, w.workers, w.deletes, w.puts); err != nil {
				return err
			}
		}
		return nil
	})
	if cap(*ap) <= maxPooledArena { // bbolt is done with it
		arenas.Put(ap)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJournalWrite, err)
	}
	return nil
}

// arenas are the buffers of commits' records; one of more than
// maxPooledArena bytes (a commit of a huge batch) is left to the GC.
var arenas = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledArena = 8 << 20

// writeTx writes one commit in tx, its records' keys and values appended
// to arena (which has room for them); it returns arena.
func writeTx(tx *bolt.Tx, arena []byte, recs []*taskRecord, workers map[string]WorkerStats, deletes []journalDelete, puts []journalPut) ([]byte, error) {
	if len(workers) > 0 {
		wb, err := tx.CreateBucketIfNotExists(bucketWorkers)
		if err != nil {
			return arena, err
		}
		for name, st := range workers {
			v, err := st.MarshalMsg(nil)
			if err != nil {
				return arena, err
			}
			if err := wb.Put([]byte(name), v); err != nil {
				return arena, err
			}
		}
	}
	b := tx.Bucket(bucketTasks)
	for _, d := range deletes {
		k := seqKey(d.seq)
		if d.seq == 0 {
			if k = findTask(b, d.id); k == nil {
				continue
			}
		}
		if err := b.Delete(k); err != nil {
			return arena, err
		}
	}
	for _, r := range recs {
		start := len(arena)
		arena = binary.BigEndian.AppendUint64(arena, r.Seq)
		mid := len(arena)
		var err error
		if arena, err = r.MarshalMsg(arena); err != nil {
			return arena, err
		}
		if err := b.Put(arena[start:mid:mid], arena[mid:len(arena):len(arena)]); err != nil {
			return arena, err
		}
	}
	for _, p := range puts {
		pb, err := tx.CreateBucketIfNotExists([]byte(p.bucket))
		if err != nil {
			return arena, err
		}
		if err := pb.Put(p.key, p.value); err != nil {
			return arena, err
		}
	}
	return arena, nil
}

// Len counts the task records in the journal.
func (j *Journal) Len() (int, error) {
	n := 0
	err := j.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketTasks).Stats().KeyN
		return nil
	})
	return n, err
}

// loadTasks reads every task record, in submission order.
func (j *Journal) loadTasks() (recs []*taskRecord, err error) {
	defer func() {
		if r := recover(); r != nil {
			recs, err = nil, fmt.Errorf("%w: %s: %v", ErrJournalCorrupt, j.path, r)
		}
	}()
	err = j.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).ForEach(func(k, v []byte) error {
			r := new(taskRecord)
			if err := messages.Unmarshal(v, r); err != nil {
				return fmt.Errorf("%w: %s: task record %x: %w", ErrJournalCorrupt, j.path, k, err)
			}
			recs = append(recs, r)
			return nil
		})
	})
	sort.Slice(recs, func(a, b int) bool { return recs[a].Seq < recs[b].Seq })
	return recs, err
}

// loadWorkers reads every worker's statistics as last committed.
func (j *Journal) loadWorkers() (map[string]WorkerStats, error) {
	out := map[string]WorkerStats{}
	err := j.forEach(string(bucketWorkers), func(k, v []byte) error {
		var st WorkerStats
		if err := messages.Unmarshal(v, &st); err != nil {
			return fmt.Errorf("%w: %s: statistics of worker %q: %w", ErrJournalCorrupt, j.path, k, err)
		}
		out[string(k)] = st
		return nil
	})
	return out, err
}
