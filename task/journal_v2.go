package task

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
)

// journalVersionV2 is the second journal format: the current records,
// keyed by task ID. A journal of that version is migrated to the third
// (keyed by sequence number), and on, when it is opened, and so is a
// replicated snapshot of one.
const journalVersionV2 = "ceylon-journal/2"

// knownVersion reports whether v is a journal version this code reads.
func knownVersion(v []byte) bool {
	return bytes.Equal(v, []byte(journalVersion)) || bytes.Equal(v, []byte(journalVersionV3)) ||
		bytes.Equal(v, []byte(journalVersionV2)) || bytes.Equal(v, []byte(journalVersionV1))
}

// upgrade migrates tx's journal, of any known version, to the current one.
func upgrade(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if bytes.Equal(meta.Get(keyVersion), []byte(journalVersionV1)) {
		if err := migrateV1(tx); err != nil {
			return err
		}
	}
	if bytes.Equal(meta.Get(keyVersion), []byte(journalVersionV2)) {
		if err := migrateV2(tx); err != nil {
			return err
		}
	}
	if bytes.Equal(meta.Get(keyVersion), []byte(journalVersionV3)) {
		if err := migrateV3(tx); err != nil {
			return err
		}
	}
	if v := meta.Get(keyVersion); !bytes.Equal(v, []byte(journalVersion)) {
		return fmt.Errorf("%w: version %q", ErrJournalVersion, v)
	}
	return nil
}

// migrateV2 re-keys every task record of tx's journal by its sequence
// number. A record without one, or with one another record has too (a
// version 2 journal never wrote such, but its keys were the IDs), gets
// the next free number after the highest.
func migrateV2(tx *bolt.Tx) error {
	tasks := tx.Bucket(bucketTasks)
	if tasks != nil {
		type rec struct {
			r *taskRecord
			v []byte
		}
		var recs []rec
		var top uint64
		err := tasks.ForEach(func(k, v []byte) error {
			r := new(taskRecord)
			if err := messages.Unmarshal(v, r); err != nil {
				return fmt.Errorf("version 2 task %q: %w", k, err)
			}
			recs = append(recs, rec{r, bytes.Clone(v)})
			top = max(top, r.Seq)
			return nil
		})
		if err != nil {
			return err
		}
		slices.SortStableFunc(recs, func(a, b rec) int {
			switch {
			case a.r.Seq < b.r.Seq:
				return -1
			case a.r.Seq > b.r.Seq:
				return 1
			}
			return 0
		})
		if err := tx.DeleteBucket(bucketTasks); err != nil {
			return err
		}
		if tasks, err = tx.CreateBucket(bucketTasks); err != nil {
			return err
		}
		seen := make(map[uint64]bool, len(recs))
		for _, x := range recs {
			if x.r.Seq == 0 || seen[x.r.Seq] {
				top++
				x.r.Seq = top
				if x.v, err = x.r.MarshalMsg(nil); err != nil {
					return err
				}
			}
			seen[x.r.Seq] = true
			if err := tasks.Put(seqKey(x.r.Seq), x.v); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bucketMeta).Put(keyVersion, []byte(journalVersionV3))
}

var errFound = errors.New("found")

// findTask is the key of the record of the task with this ID, nil if
// there is none: a scan, for the deletes of replicated log entries made
// by version 2, which name the task only.
func findTask(b *bolt.Bucket, id string) []byte {
	var found []byte
	_ = b.ForEach(func(k, v []byte) error {
		r := new(taskRecord)
		if messages.Unmarshal(v, r) == nil && r.Task.ID == id {
			found = bytes.Clone(k)
			return errFound
		}
		return nil
	})
	return found
}
