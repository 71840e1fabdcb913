package task

import (
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	bolt "go.etcd.io/bbolt"
)

// journalVersionV1 is the first journal format: attempt and worker
// records keyed by Go field names, statuses stored as numbers. A journal
// of that version is migrated to the current one when it is opened, in
// the same transaction that checks it.
const journalVersionV1 = "ceylon-journal/1"

// The version 1 records, frozen as that version wrote them; decoded by
// reflection.
type (
	taskRecordV1 struct {
		Seq         uint64               `msgpack:"seq"`
		Task        messages.Task        `msgpack:"task"`
		Inputs      map[string][]byte    `msgpack:"inputs,omitempty"`
		SubmittedAt time.Time            `msgpack:"submitted"`
		Status      int                  `msgpack:"status"`
		Attempt     int                  `msgpack:"attempt,omitempty"`
		Retries     int                  `msgpack:"retries,omitempty"`
		Lost        int                  `msgpack:"lost,omitempty"`
		Attempts    []attemptV1          `msgpack:"attempts,omitempty"`
		Result      *messages.TaskResult `msgpack:"result,omitempty"`
		FinishedAt  time.Time            `msgpack:"finished,omitempty"`
	}
	attemptV1 struct {
		Attempt    int
		Worker     string
		AssignedAt time.Time
		EndedAt    time.Time
		Outcome    string
	}
	workerStatsV1 struct {
		Name         string
		Skill        int
		Capabilities []string
		Completed    int
		Successful   int
		TotalTime    time.Duration
		InFlight     int
		Connected    bool
	}
)

// statusesV1 are version 1's status numbers.
var statusesV1 = [...]Status{StatusPending, StatusWaiting, StatusAssigned, StatusRunning, StatusRetrying, StatusCompleted, StatusFailed, StatusCancelled}

// migrateV1 rewrites every version 1 record of tx's journal in the
// version 2 format (upgrade then takes it on to the current one).
func migrateV1(tx *bolt.Tx) error {
	tasks := tx.Bucket(bucketTasks)
	if tasks != nil {
		var kvs [][2][]byte
		err := tasks.ForEach(func(k, v []byte) error {
			var old taskRecordV1
			if err := messages.Unmarshal(v, &old); err != nil {
				return fmt.Errorf("version 1 task %q: %w", k, err)
			}
			if old.Status < 0 || old.Status >= len(statusesV1) {
				return fmt.Errorf("version 1 task %q: %w: %d", k, ErrUnknownStatus, old.Status)
			}
			r := taskRecord{
				Seq: old.Seq, Task: old.Task, Inputs: old.Inputs, SubmittedAt: old.SubmittedAt,
				Status: statusesV1[old.Status], Attempt: old.Attempt, Retries: old.Retries, Lost: old.Lost,
				Result: old.Result, FinishedAt: old.FinishedAt,
			}
			for _, a := range old.Attempts {
				r.Attempts = append(r.Attempts, AttemptInfo{Attempt: a.Attempt, Worker: a.Worker, AssignedAt: a.AssignedAt, EndedAt: a.EndedAt, Outcome: a.Outcome})
			}
			nv, err := r.MarshalMsg(nil)
			if err != nil {
				return err
			}
			kvs = append(kvs, [2][]byte{append([]byte(nil), k...), nv})
			return nil
		})
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			if err := tasks.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
	}
	meta := tx.Bucket(bucketMeta)
	if v := meta.Get(keyWorkers); v != nil {
		var old map[string]workerStatsV1
		if err := messages.Unmarshal(v, &old); err != nil {
			return fmt.Errorf("version 1 worker statistics: %w", err)
		}
		table := make(workerTable, len(old))
		for name, st := range old {
			table[name] = WorkerStats{Name: st.Name, Skill: st.Skill, Capabilities: st.Capabilities, Results: st.Completed,
				Successful: st.Successful, TotalTime: st.TotalTime, InFlight: st.InFlight, Connected: st.Connected}
		}
		nv, err := table.MarshalMsg(nil)
		if err != nil {
			return err
		}
		if err := meta.Put(keyWorkers, nv); err != nil {
			return err
		}
	}
	return meta.Put(keyVersion, []byte(journalVersionV2))
}
