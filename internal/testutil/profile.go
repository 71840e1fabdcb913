package testutil

import (
	"os"
	"runtime/pprof"
	"slices"
	"testing"
	"time"
)

// ProfileChild writes a CPU profile of a benchmark's child process to
// $CEYLON_BENCH_CHILD_CPUPROFILE, if set; call the result to stop it.
func ProfileChild() (stop func()) {
	path := os.Getenv("CEYLON_BENCH_CHILD_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		panic(err)
	}
	_ = pprof.StartCPUProfile(f)
	return pprof.StopCPUProfile
}

// ReportLatency reports the median and 99th percentile of lat (sorted in
// place) as the benchmark's p50-µs and p99-µs metrics.
func ReportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
