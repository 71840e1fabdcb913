package task

import (
	"fmt"

	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
)

// journalVersionV3 is the third journal format: task records keyed by
// sequence number, as now, and the statistics of every worker in one
// table under the meta bucket's "workers", written whole by every commit.
// A journal of that version is migrated to the current one (each worker's
// statistics under its name) when it is opened, and so is a replicated
// snapshot of one.
const journalVersionV3 = "ceylon-journal/3"

// migrateV3 moves the worker table of tx's journal into a bucket, a
// worker a record.
func migrateV3(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	wb, err := tx.CreateBucketIfNotExists(bucketWorkers)
	if err != nil {
		return err
	}
	if v := meta.Get(keyWorkers); v != nil {
		var table workerTable
		if err := messages.Unmarshal(v, &table); err != nil {
			return fmt.Errorf("version 3 worker statistics: %w", err)
		}
		for name, st := range table {
			nv, err := st.MarshalMsg(nil)
			if err != nil {
				return err
			}
			if err := wb.Put([]byte(name), nv); err != nil {
				return err
			}
		}
		if err := meta.Delete(keyWorkers); err != nil {
			return err
		}
	}
	return meta.Put(keyVersion, []byte(journalVersion))
}
