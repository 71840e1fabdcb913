package task

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
	"github.com/prometheus/client_golang/prometheus"
)

// A private workspace's replicas: TCP only (private networks cannot use
// QUIC).
var replicaNet = []agent.Option{agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithSecret("replica-secret")}

// replicaSet is n replicating managers of one workspace.
type replicaSet struct {
	t     *testing.T
	ws    string
	dir   string
	ids   []peer.ID
	mgrs  []*Manager
	opts  []ReplicaOption
	mopts []ManagerOption // more options for every manager
}

// startReplicas starts n managers that bootstrap one group, each with its
// own journal and Raft directory; each joins the ones started before it.
func startReplicas(t *testing.T, n int, opts ...ReplicaOption) *replicaSet {
	t.Helper()
	return startReplicasWith(t, n, nil, opts...)
}

// startReplicasWith is startReplicas with more manager options.
func startReplicasWith(t *testing.T, n int, mopts []ManagerOption, opts ...ReplicaOption) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t, ws: "ws-" + t.Name(), dir: t.TempDir(), opts: opts, mopts: mopts}
	for i := range n {
		k, err := peer.LoadOrCreateIdentity(rs.keyPath(i))
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		rs.ids = append(rs.ids, id)
	}
	rs.mgrs = make([]*Manager, n)
	for i := range n {
		rs.start(i, true)
	}
	return rs
}

func (rs *replicaSet) keyPath(i int) string {
	return filepath.Join(rs.dir, fmt.Sprintf("m%d.key", i))
}

// start (re)starts manager i; bootstrap gives it the group's first
// configuration.
func (rs *replicaSet) start(i int, bootstrap bool) *Manager {
	t := rs.t
	t.Helper()
	opts := append([]agent.Option{agent.WithWorkspace(rs.ws), agent.AsAdmin(), agent.WithIdentityFile(rs.keyPath(i))}, replicaNet...)
	if joins := rs.addrs(i); len(joins) > 0 {
		opts = append(opts, agent.WithJoin(joins...))
	}
	a, err := agent.New(fmt.Sprintf("manager-%d", i), opts...)
	if err != nil {
		t.Fatal(err)
	}
	j, err := OpenJournal(filepath.Join(rs.dir, fmt.Sprintf("journal-%d.db", i)), rs.ws)
	if err != nil {
		t.Fatal(err)
	}
	ropts := append([]ReplicaOption{}, rs.opts...)
	if bootstrap {
		ropts = append(ropts, ReplicaBootstrap(rs.ids...))
	}
	m, err := NewManager(a, append([]ManagerOption{WithJournal(j), WithReplication(filepath.Join(rs.dir, fmt.Sprintf("raft-%d", i)), ropts...)}, rs.mopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	rs.mgrs[i] = m
	t.Cleanup(func() { _ = m.Stop(); _ = j.Close() })
	return m
}

// addrs are the addresses of the running managers other than skip.
func (rs *replicaSet) addrs(skip int) []string {
	var out []string
	for i, m := range rs.mgrs {
		if m != nil && i != skip && m.Agent().ID() != "" {
			out = append(out, m.Addrs()[0])
		}
	}
	return out
}

// leader waits until exactly one running manager (not among down) leads,
// and returns its index.
func (rs *replicaSet) leader(down ...int) int {
	rs.t.Helper()
	idx := -1
	testutil.Eventually(rs.t, "one leading manager", func() bool {
		idx = -1
		n := 0
		for i, m := range rs.mgrs {
			if m == nil || containsInt(down, i) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			on, _, err := m.Leading(ctx)
			cancel()
			if err == nil && on {
				idx = i
				n++
			}
		}
		return n == 1
	})
	return idx
}

// client starts a producer of the group's workspace joined to joins.
func (rs *replicaSet) client(t *testing.T, joins []string, aopts []agent.Option, opts ...ClientOption) *Client {
	t.Helper()
	pa, err := agent.New("producer", append(append([]agent.Option{agent.WithWorkspace(rs.ws), agent.WithJoin(joins...)}, replicaNet...), aopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(pa, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := pa.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pa.Stop() })
	return c
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// execLog counts the successful runs of each task on the workers' side.
type execLog struct {
	mu   sync.Mutex
	runs map[string]int
	// hold, when set, keeps the runs of tasks whose IDs sort in
	// [holdFrom, holdTo) until it is closed (so they are in flight at a
	// failover; fewer than the workers' slots, so the rest go on).
	hold             chan struct{}
	holdFrom, holdTo string
}

func (l *execLog) add(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[id]++
}

// startReplicaWorker starts a worker that joins every manager of rs.
func startReplicaWorker(t *testing.T, rs *replicaSet, name string, log *execLog) *Worker {
	t.Helper()
	a, err := agent.New(name, append([]agent.Option{agent.WithWorkspace(rs.ws), agent.WithJoin(rs.addrs(-1)...)}, replicaNet...)...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(a, WithMaxConcurrency(8))
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("echo", func(ctx context.Context, j *Job) ([]byte, error) {
		if log.hold != nil && j.Task.ID >= log.holdFrom && j.Task.ID < log.holdTo {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-log.hold:
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		log.add(j.Task.ID)
		return j.Task.Input, nil
	})
	if err := w.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

// Three replicating managers: one leads; a producer that knows all three
// submits to whichever it meets (a standby sends it on to the leader);
// the leader's agent dies mid-run (its Raft, cut off from the others, can
// no longer commit); another manager leads within seconds, the workers
// follow it by themselves, and every task ends succeeded exactly once as
// the producer and the new leader see it.
func TestReplicatedManagersFailOver(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3)
	first := rs.leader()
	const n = 600
	// Eight runs just past the first 30 % wait for the failover: they are
	// in flight when the leader dies, however fast the workers are (the
	// workers have 16 slots: the rest go on).
	log := &execLog{runs: map[string]int{}, hold: make(chan struct{}),
		holdFrom: fmt.Sprintf("t%03d", n*3/10), holdTo: fmt.Sprintf("t%03d", n*3/10+8)}
	for i := range 2 {
		startReplicaWorker(t, rs, fmt.Sprintf("w%d", i), log)
	}
	ctx := testutil.Context(t)
	if err := rs.mgrs[first].WaitForWorkers(ctx, 2); err != nil {
		t.Fatal(err)
	}

	pa, err := agent.New("producer", append([]agent.Option{agent.WithWorkspace(rs.ws), agent.WithJoin(rs.addrs(-1)...)}, replicaNet...)...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(pa)
	if err != nil {
		t.Fatal(err)
	}
	if err := pa.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pa.Stop() })

	var tasks []messages.Task
	for i := range n {
		tasks = append(tasks, messages.Task{ID: fmt.Sprintf("t%03d", i), Type: "echo", Input: []byte(fmt.Sprint(i))})
	}
	if err := c.SubmitAll(ctx, tasks[:n/2]); err != nil {
		t.Fatal(err)
	}
	// Wait for ~30 % of the results, then kill the leader's agent.
	for i := range n * 3 / 10 {
		if r, err := c.Wait(ctx, tasks[i].ID); err != nil || !r.Success {
			t.Fatalf("wait %s before the failover: %+v %v", tasks[i].ID, r, err)
		}
	}
	killed := time.Now()
	if err := rs.mgrs[first].Agent().Stop(); err != nil {
		t.Fatal(err)
	}
	close(log.hold)
	next := rs.leader(first)
	t.Logf("manager-%d leads %v after manager-%d's agent stopped", next, time.Since(killed).Round(time.Millisecond), first)
	if err := c.SubmitAll(ctx, tasks[n/2:]); err != nil {
		t.Fatal(err)
	}
	for i, task := range tasks {
		r, err := c.Wait(ctx, task.ID)
		if err != nil || !r.Success || string(r.Output) != fmt.Sprint(i) {
			t.Fatalf("wait %s: %+v %v", task.ID, r, err)
		}
	}
	st, err := rs.mgrs[next].Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Replica == nil || st.Replica.State != "Leader" || st.Replica.Leader != rs.mgrs[next].Agent().ID() {
		t.Fatalf("new leader's stats: replica %+v", st.Replica)
	}
	if st.Submitted != n || st.Succeeded != n || st.Failed != 0 {
		t.Fatalf("new leader's stats: submitted %d succeeded %d failed %d, want %d %d 0", st.Submitted, st.Succeeded, st.Failed, n, n)
	}
	infos, err := rs.mgrs[next].Tasks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	adopted := 0
	for _, in := range infos {
		ok := 0
		for _, at := range in.Attempts {
			if at.Outcome == "ok" {
				ok++
				if at.AssignedAt.Before(killed) && at.EndedAt.After(killed) {
					adopted++ // assigned by the old leader, settled by the new one
				}
			}
		}
		if in.Status != StatusCompleted || ok > 1 {
			t.Fatalf("task %s: %v with %d successful attempts: %+v", in.Task.ID, in.Status, ok, in.Attempts)
		}
	}
	log.mu.Lock()
	ran, twice := len(log.runs), 0
	for _, k := range log.runs {
		if k > 1 {
			twice++
		}
	}
	log.mu.Unlock()
	if ran != n {
		t.Fatalf("workers ran %d distinct tasks, want %d", ran, n)
	}
	t.Logf("%d attempts taken over by the new leader, %d tasks ran twice (in flight when the leader died, and not taken over)", adopted, twice)
	if adopted == 0 {
		t.Fatal("no attempt in flight at the failover was taken over by the new leader")
	}
	// A standby refuses to take work and says who leads.
	for i, m := range rs.mgrs {
		if i == first || i == next {
			continue
		}
		err := m.Submit(ctx, messages.Task{ID: "x", Type: "echo"})
		if !errors.Is(err, ErrNotLeader) {
			t.Fatalf("submit to standby manager-%d: %v, want ErrNotLeader", i, err)
		}
	}
}

// A standby that lost its files (journal and Raft log) comes back empty
// and catches up from the leader's snapshot: its journal then holds every
// task, and the log behind the snapshot is gone.
func TestReplicaCatchesUpFromSnapshot(t *testing.T) {
	t.Parallel()
	// The leader must stay the leader throughout: on a loaded machine the
	// default lease (250 ms) lapsed now and then, and the submissions
	// failed with ErrNotLeader.
	rs := startReplicas(t, 3, WithSnapshots(8, 20*time.Millisecond), WithElectionTimeout(2*time.Second))
	lead := rs.leader()
	log := &execLog{runs: map[string]int{}}
	startReplicaWorker(t, rs, "w0", log)
	ctx := testutil.Context(t)
	const n = 120
	for i := range n { // one commit (log entry) or more each
		if _, err := rs.mgrs[lead].Run(ctx, messages.Task{ID: fmt.Sprintf("t%03d", i), Type: "echo"}); err != nil {
			t.Fatal(err)
		}
	}
	f := (lead + 1) % 3
	if err := rs.mgrs[f].Stop(); err != nil {
		t.Fatal(err)
	}
	if err := rs.mgrs[f].cfg.journal.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fmt.Sprintf("journal-%d.db", f), fmt.Sprintf("raft-%d", f)} {
		if err := os.RemoveAll(filepath.Join(rs.dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	for range 20 { // more entries while it is away, past a snapshot
		if _, err := rs.mgrs[lead].Run(ctx, messages.Task{ID: fmt.Sprintf("late%d", time.Now().UnixNano()), Type: "echo"}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "a snapshot on the leader", func() bool {
		snaps, _ := filepath.Glob(filepath.Join(rs.dir, fmt.Sprintf("raft-%d", lead), "snapshots", "*"))
		return len(snaps) > 0
	})
	back := rs.start(f, false) // no bootstrap: an empty replica waits for the leader
	testutil.Eventually(t, "the wiped replica's journal holds every task", func() bool {
		recs, err := back.cfg.journal.loadTasks()
		return err == nil && len(recs) == n+20
	})
	snaps, err := filepath.Glob(filepath.Join(rs.dir, fmt.Sprintf("raft-%d", f), "snapshots", "*"))
	if err != nil || len(snaps) == 0 {
		t.Fatalf("no snapshot installed on the wiped replica: %v %v", snaps, err)
	}
}

// Replication refuses to run where it could not be safe: without a
// journal, in an open workspace (anyone could take part in the vote).
func TestReplicationMisconfigured(t *testing.T) {
	t.Parallel()
	a, err := agent.New("m", agent.WithWorkspace("ws-"+t.Name()), agent.AsAdmin(), loopback)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewManager(a, WithReplication(t.TempDir())); !errors.Is(err, ErrReplicaConfig) {
		t.Fatalf("without a journal: %v", err)
	}
	j, err := OpenJournal(filepath.Join(t.TempDir(), "j.db"), "ws-"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m, err := NewManager(a, WithJournal(j), WithReplication(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(testutil.Context(t)); !errors.Is(err, ErrReplicaConfig) {
		t.Fatalf("open workspace: %v", err)
	}
	_ = m.Stop()
}

// A leader that stops (Manager.Stop) hands the lead to another manager
// first, so the group has a leader again at once rather than after an
// election timeout; tasks submitted before go on at the new leader.
func TestReplicaHandsOverOnStop(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3, WithElectionTimeout(2*time.Second)) // an election would take seconds
	first := rs.leader()
	log := &execLog{runs: map[string]int{}}
	startReplicaWorker(t, rs, "w0", log)
	ctx := testutil.Context(t)
	if _, err := rs.mgrs[first].Run(ctx, messages.Task{ID: "before", Type: "echo"}); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	if err := rs.mgrs[first].Stop(); err != nil {
		t.Fatal(err)
	}
	next := rs.leader(first)
	took := time.Since(stopped)
	t.Logf("manager-%d leads %v after manager-%d stopped", next, took.Round(time.Millisecond), first)
	if took > 2*time.Second {
		t.Fatalf("the lead passed on after %v, not handed over (election timeout 2s)", took)
	}
	r, err := rs.mgrs[next].Wait(ctx, "before")
	if err != nil || !r.Success {
		t.Fatalf("the task finished before the handover, at the new leader: %+v %v", r, err)
	}
}

// A member of the workspace that is not one of the group's managers (a
// worker holds the secret too) cannot speak Raft to them: its stream is
// closed unread, so it cannot send an AppendEntries with a higher term.
func TestReplicaRefusesNonMembers(t *testing.T) {
	t.Parallel()
	// A lease of 1 s: a 250 ms one can lapse on a loaded machine, and the
	// re-election would look like the intruder's doing.
	rs := startReplicas(t, 3, WithElectionTimeout(2*time.Second))
	lead := rs.leader()
	a, err := agent.New("intruder", append([]agent.Option{agent.WithWorkspace(rs.ws), agent.WithJoin(rs.addrs(-1)...)}, replicaNet...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testutil.Context(t)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	c, err := gostream.Dial(ctx, a.Node().Host(), rs.ids[lead], ReplicaProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, _ = c.Write([]byte{0}) // rpcAppendEntries, whatever follows
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !strings.Contains(fmt.Sprint(err), "reset") {
		t.Fatalf("the stream was not closed: %v", err)
	}
	if on, _, err := rs.mgrs[lead].Leading(ctx); err != nil || !on {
		t.Fatalf("the leader after the intrusion: %v %v", on, err)
	}
}

// A worker the leader sees leave (its connection dropped for longer than
// the leave grace) keeps running its attempts, and the leader keeps them
// for it: when it is back (here: heard from again, so called over with a
// Welcome) it takes them back, and nothing runs twice (a manager without
// replication requeues them at once).
func TestReplicaKeepsAttemptsOfAWorkerThatLeft(t *testing.T) {
	t.Parallel()
	// Elections are not what this is about: a 2 s election timeout keeps
	// the lead where it is on a loaded machine.
	rs := startReplicas(t, 3, WithElectionTimeout(2*time.Second))
	lead := rs.leader()
	started := testutil.NewCond()
	runs := map[string]int{}
	release := make(chan struct{})
	a, err := agent.New("w0", append([]agent.Option{agent.WithWorkspace(rs.ws), agent.WithJoin(rs.addrs(-1)...)}, replicaNet...)...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorker(a, WithMaxConcurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	w.Handle("slow", func(ctx context.Context, j *Job) ([]byte, error) {
		started.Update(func() { runs[j.Task.ID]++ })
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-release:
		}
		return nil, nil
	})
	ctx := testutil.Context(t)
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	m := rs.mgrs[lead]
	if err := m.WaitForWorkers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := m.Submit(ctx, messages.Task{ID: fmt.Sprint("s", i), Type: "slow"}); err != nil {
			t.Fatal(err)
		}
	}
	started.Await(t, "four runs", 10*time.Second, func() bool { return len(runs) == 4 })
	// The leader sees the worker leave; the worker, still connected, goes
	// on heartbeating, so the leader calls it over again.
	left := make(chan struct{})
	if err := m.agent.Post(func() {
		m.onDisconnect(nil, a.Detail())
		if st := m.stats(); st.InFlight != 0 || len(m.orphans["w0"]) != 4 {
			t.Errorf("after the leave: %d in flight, %d set aside", st.InFlight, len(m.orphans["w0"]))
		}
		close(left)
	}); err != nil {
		t.Fatal(err)
	}
	<-left
	var st Stats
	testutil.EventuallyShow(t, "the worker back with the leader, its attempts with it", func() bool {
		var err error
		st, err = m.Stats(ctx)
		return err == nil && len(st.Workers) == 1 && st.Workers[0].Connected && st.InFlight == 4
	}, func() string {
		on, term, _ := m.Leading(ctx)
		return fmt.Sprintf("leading %v (term %d), %d in flight, workers %+v", on, term, st.InFlight, st.Workers)
	})
	close(release)
	for i := range 4 {
		if r, err := m.Wait(ctx, fmt.Sprint("s", i)); err != nil || !r.Success {
			t.Fatalf("s%d: %+v %v", i, r, err)
		}
	}
	started.Lock()
	defer started.Unlock()
	for id, n := range runs {
		if n != 1 {
			in, _ := m.Task(ctx, id)
			t.Errorf("%s ran %d times: %+v", id, n, in.Attempts)
		}
	}
}

// A manager whose journal cannot apply the log (its disk failed) leaves
// the group rather than fall behind it for good (it could lead with less
// than the log holds); the others go on.
func TestReplicaLeavesWhenItsJournalFails(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3)
	lead := rs.leader()
	f := (lead + 1) % 3
	fail := func() error { return errors.New("disk full") }
	rs.mgrs[f].cfg.journal.failApply.Store(&fail)
	ctx := testutil.Context(t)
	if err := rs.mgrs[lead].Submit(ctx, messages.Task{ID: "t", Type: "none"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the failed replica out of the group", func() bool {
		st, err := rs.mgrs[f].Replica()
		return err == nil && st.State == "Shutdown"
	})
	if err := rs.mgrs[lead].Submit(ctx, messages.Task{ID: "u", Type: "none"}); err != nil {
		t.Fatalf("the group after one replica left: %v", err)
	}
}

// A standby's LeaderOperator shows and steers the leader (under strict
// grants too: the managers of the group need none from each other); the
// standby's own admin API refuses.
func TestStandbyLeaderOperator(t *testing.T) {
	t.Parallel()
	rs := startReplicasWith(t, 3, []ManagerOption{WithGrantsRequired()})
	lead := rs.leader()
	ctx := testutil.Context(t)
	for _, id := range []string{"q1", "q2"} {
		if err := rs.mgrs[lead].Submit(ctx, messages.Task{ID: id, Type: "nobody-runs"}); err != nil {
			t.Fatal(err)
		}
	}
	sb := rs.mgrs[(lead+1)%3]
	if _, err := sb.ListTasks(ctx, TaskFilter{}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the standby's own ListTasks: %v, want ErrNotLeader", err)
	}
	op := sb.LeaderOperator()
	st, err := op.Stats(ctx)
	if err != nil || st.Submitted != 2 {
		t.Fatalf("the leader's stats through a standby: %d submitted, %v", st.Submitted, err)
	}
	page, err := op.ListTasks(ctx, TaskFilter{})
	if err != nil || len(page.Tasks) != 2 {
		t.Fatalf("the leader's tasks through a standby: %+v %v", page, err)
	}
	if err := op.Cancel(ctx, "q1"); err != nil {
		t.Fatal(err)
	}
	d, err := op.TaskDetail(ctx, "q1")
	if err != nil || d.Status != StatusCancelled.String() {
		t.Fatalf("q1 through a standby after its cancel: %+v %v", d.TaskSummary, err)
	}
	if _, ok := op.(interface{ Metrics() *prometheus.Registry }); !ok {
		t.Error("LeaderOperator serves no metrics (the monitor's /metrics)")
	}
	if _, err := rs.mgrs[lead].LeaderOperator().Stats(ctx); err != nil {
		t.Fatalf("the leader's own: %v", err)
	}
}

// When every connection to the leader closes (its process died), its
// followers wait only the leader lease before they stand for election,
// and go back to the heartbeat timeout configured a few election
// timeouts later.
func TestFollowersStandSoonerWhenTheLeaderGoes(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3)
	first := rs.leader()
	hb := func(i int) time.Duration { return rs.mgrs[i].rep.Load().raft.ReloadableConfig().HeartbeatTimeout }
	normal, lease := rs.mgrs[first].cfg.replica.election, rs.mgrs[first].cfg.replica.election/2
	others := []int{(first + 1) % 3, (first + 2) % 3}
	for _, i := range others {
		if d := hb(i); d != normal {
			t.Fatalf("manager-%d: heartbeat timeout %v before, want %v", i, d, normal)
		}
	}
	if err := rs.mgrs[first].Agent().Stop(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "a follower's heartbeat timeout down to the lease", func() bool {
		return hb(others[0]) == lease || hb(others[1]) == lease
	})
	rs.leader(first)
	testutil.Eventually(t, "the heartbeat timeouts back to normal", func() bool {
		return hb(others[0]) == normal && hb(others[1]) == normal
	})
}

// A replicated entry may put only the manager's own meta records and
// layers' buckets.
func TestReplicatedEntryPuts(t *testing.T) {
	j := openJournal(t, filepath.Join(t.TempDir(), "j.db"))
	for _, c := range []struct {
		put batchPut
		ok  bool
	}{
		{batchPut{Bucket: "meta", Key: keyPaused, Value: []byte{0x90}}, true},
		{batchPut{Bucket: "meta", Key: keyRevoked, Value: []byte{0x80}}, true},
		{batchPut{Bucket: "meta", Key: keyPeriodic, Value: []byte{0x80}}, true},
		{batchPut{Bucket: "meta", Key: keyUnique, Value: []byte{0x80}}, true},
		{batchPut{Bucket: "playground/graph", Key: []byte("k"), Value: []byte("v")}, true},
		{batchPut{Bucket: "meta", Key: keyVersion, Value: []byte("ceylon-journal/0")}, false},
		{batchPut{Bucket: "meta", Key: keyWorkspc, Value: []byte("another")}, false},
		{batchPut{Bucket: "tasks", Key: []byte("k"), Value: []byte("v")}, false},
		{batchPut{Bucket: "", Key: []byte("k"), Value: []byte("v")}, false},
	} {
		data, err := journalBatch{Puts: []batchPut{c.put}}.MarshalMsg([]byte{entryBatch})
		if err != nil {
			t.Fatal(err)
		}
		_, err = j.decodeEntry(data)
		if got := err == nil; got != c.ok || !c.ok && !errors.Is(err, ErrReplicaEntry) {
			t.Errorf("put to %s/%s: %v, want accepted %v", c.put.Bucket, c.put.Key, err, c.ok)
		}
	}
}

// Under WithGrantsRequired, a grant signed by one manager of the group
// holds at the others: at a standby the client meets first, and at the
// next leader.
func TestReplicatedGrantsOfAnyManager(t *testing.T) {
	t.Parallel()
	rs := startReplicasWith(t, 3, []ManagerOption{WithGrantsRequired()})
	first := rs.leader()
	ctx := testutil.Context(t)
	keyPath := filepath.Join(t.TempDir(), "producer.key")
	k, err := peer.LoadOrCreateIdentity(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := peer.IDFromKey(k)
	g, err := rs.mgrs[first].IssueGrant(Grant{ID: "lg", Subject: pid, Roles: []Role{RoleProducer}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c := rs.client(t, rs.addrs(-1), []agent.Option{agent.WithIdentityFile(keyPath)}, WithClientGrants(g))
	if err := c.Submit(ctx, messages.Task{ID: "p1", Type: "nobody-runs"}); err != nil {
		t.Fatalf("submit with the leader's grant: %v", err)
	}
	if err := rs.mgrs[first].Stop(); err != nil {
		t.Fatal(err)
	}
	rs.leader(first)
	if err := c.Submit(ctx, messages.Task{ID: "p2", Type: "nobody-runs"}); err != nil {
		t.Fatalf("submit at the next leader with the first leader's grant: %v", err)
	}
}

// A client that joined one standby only reaches the leader: the standby
// names it, and the client trusts whom a manager it trusts names.
func TestClientThroughAStandbyFindsTheLeader(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3)
	first := rs.leader()
	standby := (first + 1) % 3
	ctx := testutil.Context(t)
	c := rs.client(t, rs.mgrs[standby].Addrs()[:1], nil)
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.Submit(ctx, messages.Task{ID: "c1", Type: "nobody-runs"}); err != nil {
		t.Fatalf("submit through a standby: %v", err)
	}
	if err := c.Cancel(ctx, "c1"); err != nil {
		t.Fatalf("cancel through a standby: %v", err)
	}
	if in, err := rs.mgrs[first].Task(ctx, "c1"); err != nil || in.Status != StatusCancelled {
		t.Fatalf("c1 at the leader: %v %v", in.Status, err)
	}
	// The leader goes: the client comes back to the managers it knows.
	if err := rs.mgrs[first].Stop(); err != nil {
		t.Fatal(err)
	}
	rs.leader(first)
	if err := c.Submit(ctx, messages.Task{ID: "c2", Type: "nobody-runs"}); err != nil {
		t.Fatalf("submit after the leader it was told of left: %v", err)
	}
}

// What an operator did on the leader holds at the next leader, when the
// leader's process dies right after the calls returned (no hand-over): a
// paused type (pausing once made every replica refuse the entry, as a
// write to the manager's meta bucket, and leave its group), cancels (a
// Cancel returned before its commit, so the next leader had them
// pending), and a Unique key whose task was deleted (the keys were rebuilt
// from task records only).
func TestReplicatedStateSurvivesALeaderCrash(t *testing.T) {
	t.Parallel()
	rs := startReplicas(t, 3)
	first := rs.leader()
	ctx := testutil.Context(t)
	m := rs.mgrs[first]
	if err := m.Pause(ctx, "held"); err != nil {
		t.Fatalf("pause on the leader: %v", err)
	}
	const n = 20
	for i := range n {
		if err := m.Submit(ctx, messages.Task{ID: fmt.Sprint("k", i), Type: "nobody-runs"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if err := m.Cancel(ctx, fmt.Sprint("k", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Submit(ctx, messages.Task{ID: "u1", Type: "nobody-runs"}, Unique("key", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := m.Cancel(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs.mgrs {
		if r.rep.Load().left.Load() {
			t.Fatalf("manager-%d left its group", i)
		}
	}
	_ = m.Agent().Stop() // the process dies: no hand-over
	next := rs.leader(first)
	paused, err := rs.mgrs[next].Paused(ctx)
	if err != nil || !slices.Equal(paused, []string{"held"}) {
		t.Fatalf("paused at the next leader, manager-%d: %v %v", next, paused, err)
	}
	for i := range n {
		if in, err := rs.mgrs[next].Task(ctx, fmt.Sprint("k", i)); err != nil || in.Status != StatusCancelled {
			t.Fatalf("k%d, cancelled at the first leader, at the next: %v %v", i, in.Status, err)
		}
	}
	if err := rs.mgrs[next].Submit(ctx, messages.Task{ID: "u2", Type: "nobody-runs"}, Unique("key", time.Hour)); !errors.Is(err, ErrDuplicateUnique) {
		t.Fatalf("at the next leader, the key of a deleted task: %v, want ErrDuplicateUnique", err)
	}
}
