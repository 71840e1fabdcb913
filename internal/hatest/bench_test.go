package hatest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/peer"
)

// loopManagers starts n manager processes on loopback (role "manager", or
// "manager-single" for one with only its own journal), each joining those
// before it; it returns them and their addresses.
func loopManagers(b *testing.B, dir, role string, n int) ([]*proc, []string) {
	b.Helper()
	var ids []string
	for i := range n {
		k, err := peer.LoadOrCreateIdentity(filepath.Join(dir, fmt.Sprintf("m%d.key", i)))
		if err != nil {
			b.Fatal(err)
		}
		id, err := peer.IDFromKey(k)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, id.String())
	}
	if role == "manager-single" {
		ids = nil
	}
	var procs []*proc
	var addrs []string
	for i := range n {
		p := start(b, nil, nil, fmt.Sprintf("manager-%d", i), role,
			"/ip4/127.0.0.1/tcp/0", dir, strconv.Itoa(i), strings.Join(ids, ","), strings.Join(addrs, ","))
		addrs = append(addrs, strings.Fields(p.log.AwaitLine(b, "ADDR", time.Minute))[1])
		procs = append(procs, p)
	}
	return procs, addrs
}

// leaderOf waits for one of ps to lead (after since) and returns its index.
func leaderOf(b *testing.B, ps []*proc, since int64, not ...int) (int, int64) {
	b.Helper()
	return awaitLeading(b, ps, since, time.Minute, not...)
}

// The throughput and round trip of no-op tasks with one manager on its
// journal and with three replicating managers, in the same run: the
// leader submits b.N tasks at once and waits for them all (4 worker
// processes of 64 slots each), then runs 1,000 tasks one after the other.
func BenchmarkReplicatedThroughput(b *testing.B) {
	for _, mode := range []struct {
		name, role string
		managers   int
	}{{"journal", "manager-single", 1}, {"replicated-3", "manager", 3}} {
		b.Run(mode.name, func(b *testing.B) {
			mgrs, addrs := loopManagers(b, b.TempDir(), mode.role, mode.managers)
			lead := 0
			if mode.managers > 1 {
				lead, _ = leaderOf(b, mgrs, 0)
			}
			for i := range 4 {
				w := start(b, nil, nil, fmt.Sprintf("w%d", i), "worker", "/ip4/127.0.0.1/tcp/0", fmt.Sprintf("w%d", i),
					strings.Join(addrs, ","), "64", "0")
				w.log.AwaitLine(b, "STARTED", time.Minute)
			}
			mgrs[lead].ask(b, "WORKERS 4", "WORKERS 4", time.Minute)
			b.ResetTimer()
			f := strings.Fields(mgrs[lead].ask(b, fmt.Sprintf("BENCH %d 1000", b.N), "BENCH", 10*time.Minute))
			b.StopTimer()
			ns, _ := strconv.ParseFloat(f[1], 64)
			p50, _ := strconv.ParseFloat(f[2], 64)
			p99, _ := strconv.ParseFloat(f[3], 64)
			if os.Getenv("CEYLON_HA_PROFILE_DIR") != "" || os.Getenv("CEYLON_HA_RAFT_METRICS") != "" {
				for _, m := range mgrs {
					m.ask(b, "STOPPROF", "STOPPED", time.Minute)
				}
			}
			for _, l := range mgrs[lead].log.Lines() {
				if strings.HasPrefix(l, "RAFTM") {
					b.Log(l)
				}
			}
			b.ReportMetric(float64(b.N)/(ns/1e9), "tasks/s")
			b.ReportMetric(p50, "p50-µs")
			b.ReportMetric(p99, "p99-µs")
		})
	}
}

// Failover: three replicating managers on loopback, a worker, a producer
// streaming short tasks; ten times, the leader is SIGKILLed, and the time
// until another manager assigns its first task is measured (p50-ms,
// max-ms; and until it leads, elected-p50-ms); the killed manager comes
// back as a follower before the next round.
func BenchmarkFailover(b *testing.B) {
	dir := b.TempDir()
	mgrs, addrs := loopManagers(b, dir, "manager", 3)
	lead, _ := leaderOf(b, mgrs, 0)
	// Fewer slots than a batch of the stream: tasks wait, so a new
	// leader has some to assign at once.
	w := start(b, nil, nil, "w0", "worker", "/ip4/127.0.0.1/tcp/0", "w0", strings.Join(addrs, ","), "4", "5")
	w.log.AwaitLine(b, "STARTED", time.Minute)
	p := start(b, nil, nil, "producer", "producer", "/ip4/127.0.0.1/tcp/0", strings.Join(addrs, ","))
	p.log.AwaitLine(b, "STARTED", time.Minute)
	p.send(b, "STREAM")
	var ids []string
	for i := range 3 {
		k, _ := peer.LoadOrCreateIdentity(filepath.Join(dir, fmt.Sprintf("m%d.key", i)))
		id, _ := peer.IDFromKey(k)
		ids = append(ids, id.String())
	}
	const runs = 10
	var took, elected []time.Duration
	b.ResetTimer()
	for range runs {
		mgrs[lead].log.AwaitLine(b, "FIRSTASSIGN", time.Minute) // it works
		mgrs[lead].kill()
		killed := time.Now().UnixNano()
		next, led := leaderOf(b, mgrs, killed, lead)
		elected = append(elected, time.Duration(led-killed))
		var at int64
		mgrs[next].log.Await(b, "the new leader's first assignment", time.Minute, func(lines []string) bool {
			for _, l := range lines {
				if f := strings.Fields(l); len(f) == 3 && f[0] == "FIRSTASSIGN" {
					if v, _ := strconv.ParseInt(f[2], 10, 64); v > killed {
						at = v
						return true
					}
				}
			}
			return false
		})
		took = append(took, time.Duration(at-killed))
		// The killed manager comes back at its address, a follower.
		var joins []string
		for i, a := range addrs {
			if i != lead {
				joins = append(joins, a)
			}
		}
		back := start(b, nil, nil, fmt.Sprintf("manager-%d", lead), "manager",
			strings.Join(strings.Split(addrs[lead], "/")[:5], "/"), dir, strconv.Itoa(lead), strings.Join(ids, ","), strings.Join(joins, ","))
		back.log.AwaitLine(b, "ADDR", time.Minute)
		if s := back.ask(b, "SYNCED", "SYNCED", 2*time.Minute); !strings.HasPrefix(s, "SYNCED Follower") {
			b.Fatalf("manager-%d came back as %q", lead, s)
		}
		mgrs[lead] = back
		lead = next
	}
	b.StopTimer()
	slices.Sort(took)
	slices.Sort(elected)
	b.ReportMetric(float64(took[runs/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[runs-1].Milliseconds()), "max-ms")
	b.ReportMetric(float64(elected[runs/2].Milliseconds()), "elected-p50-ms")
	b.Logf("kill to first assignment: %v", took)
	b.Logf("kill to a new leader: %v", elected)
}
