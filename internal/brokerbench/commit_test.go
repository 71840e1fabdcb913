package brokerbench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	bolt "go.etcd.io/bbolt"
)

// The floor under a durable acknowledgement on this machine's disk: one
// commit of ten 200-byte records, synced, as the task journal's group
// commit makes under light load. An append and fsync of 4 KiB (what a
// write-ahead log does), a bbolt transaction (what the journal does: its
// data pages, a sync, its meta page, a sync) and a pebble batch committed
// with Sync (one WAL append and sync). A task's round trip with the
// journal waits for two such commits (its acceptance and its result).

func reportCommits(b *testing.B, commit func(i int)) {
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		commit(i)
		lat[i] = time.Since(t0)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

var record = make([]byte, 200)

// BenchmarkCommitFloorAppendSync: 4 KiB appended to a file, then fsync
// (os.File.Sync; make bench runs 2,000).
func BenchmarkCommitFloorAppendSync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, 4096)
	reportCommits(b, func(int) {
		if _, err := f.Write(page); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkCommitFloorBbolt: a bbolt transaction putting ten records,
// with the options of the task journal's raft log store (the journal's
// own file has the defaults; both sync twice per commit).
func BenchmarkCommitFloorBbolt(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "b.db"), 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("t")); return err }); err != nil {
		b.Fatal(err)
	}
	reportCommits(b, func(i int) {
		err := db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket([]byte("t"))
			for k := range 10 {
				if err := bk.Put(fmt.Appendf(nil, "%09d-%d", i, k), record); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkCommitFloorPebble: a pebble batch of ten records committed
// with pebble.Sync.
func BenchmarkCommitFloorPebble(b *testing.B) {
	db, err := pebble.Open(filepath.Join(b.TempDir(), "p"), &pebble.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	reportCommits(b, func(i int) {
		batch := db.NewBatch()
		for k := range 10 {
			if err := batch.Set(fmt.Appendf(nil, "%09d-%d", i, k), record, nil); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(pebble.Sync); err != nil {
			b.Fatal(err)
		}
	})
}
