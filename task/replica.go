package task

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/peer"
)

// Replication errors.
var (
	// ErrNotLeader reports a request to a standby manager, or a change the
	// manager could not commit because it lost the lead meanwhile: ask the
	// leader (a [Client] does, by itself).
	ErrNotLeader = errors.New("task: not the leading manager")
	// ErrReplicaConfig reports replication that cannot run as configured:
	// without a journal, in an open workspace, or on a network other than
	// libp2p.
	ErrReplicaConfig = errors.New("task: replication misconfigured")
)

// ReplicaOption configures replication ([WithReplication]).
type ReplicaOption func(*replicaConfig) error

type replicaConfig struct {
	dir       string
	bootstrap []peer.ID
	boot      bool // ReplicaBootstrap given
	election  time.Duration
	snapshot  uint64
	snapEvery time.Duration
	apply     time.Duration
}

// WithReplication makes the manager one of several that replicate the
// workspace's tasks: every journal commit is an entry of a Raft log
// (hashicorp/raft, its log in bbolt under dir, over the workspace's own
// libp2p connections on [ReplicaProtocol]) and is durable once a majority
// of the managers hold it. One manager leads: it alone assigns tasks and
// answers producers; the others are standbys that keep the journal
// (WithJournal is required: it is the replicated state) and take over,
// resuming from it, when the leader is lost. The workspace needs a secret
// (only its holders can connect, so only they can take part).
//
// Start a new group with [ReplicaBootstrap] on its first managers; add and
// remove managers later with [Manager.AddStandby] and
// [Manager.RemoveStandby] on the leader.
func WithReplication(dir string, opts ...ReplicaOption) ManagerOption {
	return func(c *managerConfig) error {
		if dir == "" {
			return fmt.Errorf("%w: no directory", ErrReplicaConfig)
		}
		rc := &replicaConfig{dir: dir, election: 500 * time.Millisecond, snapshot: 4096, snapEvery: 10 * time.Second, apply: 10 * time.Second}
		for _, o := range opts {
			if err := o(rc); err != nil {
				return err
			}
		}
		c.replica = rc
		return nil
	}
}

// ReplicaBootstrap starts a new group whose voters are these managers, by
// peer ID (the manager itself is always one: with no IDs, a group of one,
// to which standbys are added later). Give the same list to each of them;
// a manager whose directory already holds a group's state ignores it, so
// it may stay in the configuration of every start. A manager without it
// waits to be added to a group ([Manager.AddStandby] on its leader).
func ReplicaBootstrap(voters ...peer.ID) ReplicaOption {
	return func(c *replicaConfig) error {
		c.boot = true
		c.bootstrap = append(c.bootstrap, voters...)
		return nil
	}
}

// WithElectionTimeout sets how long a standby hears nothing from the
// leader before it stands for election (default 500 ms; Raft's heartbeat
// and election timeouts, the leader's lease is half of it). A leader is
// replaced within about two of it.
func WithElectionTimeout(d time.Duration) ReplicaOption {
	return func(c *replicaConfig) error {
		if d < 20*time.Millisecond {
			return fmt.Errorf("%w: election timeout %v below 20ms", ErrReplicaConfig, d)
		}
		c.election = d
		return nil
	}
}

// WithSnapshots sets when the journal is snapshotted: once at least
// threshold log entries were written since the last snapshot, looked at
// every interval or so (default 4096 entries, 10 s). The log is truncated
// behind a snapshot (threshold entries are kept, for standbys a little
// behind), so it does not grow without end; a standby further behind, or
// new, is sent the snapshot.
func WithSnapshots(threshold uint64, interval time.Duration) ReplicaOption {
	return func(c *replicaConfig) error {
		if threshold == 0 || interval < 5*time.Millisecond {
			return fmt.Errorf("%w: snapshots every %d entries, looked at every %v", ErrReplicaConfig, threshold, interval)
		}
		c.snapshot, c.snapEvery = threshold, interval
		return nil
	}
}

// WithLeadership calls fn (in the manager's actor: keep it quick) when a
// replicated manager takes the lead for a term (leading true: it assigns
// and answers from now on) and when it loses it (false). Given several
// times, every fn is called, in the order given.
func WithLeadership(fn func(leading bool, term uint64)) ManagerOption {
	return func(c *managerConfig) error {
		if fn == nil {
			return errors.New("task: nil leadership callback")
		}
		c.leadership = append(c.leadership, fn)
		return nil
	}
}

// replica is a manager's part in the replicas' Raft group.
type replica struct {
	m        *Manager
	cfg      *replicaConfig
	raft     *raft.Raft
	store    *raftboltdb.BoltStore
	trans    *raft.NetworkTransport
	boot     []peer.ID     // the bootstrap voters: members before the configuration is known
	left     atomic.Bool   // the journal failed: out of the group (leave)
	leftDone chan struct{} // closed once leave has shut Raft down
	notify   chan bool
	changed  chan struct{} // a leadership change to look at (watch)
	resync   chan struct{}
	commits  chan pendingCommit // handed to the log, in order
	link     *leaderLink        // set once Raft runs
	stop     chan struct{}
	wg       sync.WaitGroup
}

// startReplica joins the manager's Raft group. Called by Start once the
// agent runs.
func (m *Manager) startReplica() error {
	cfg := m.cfg.replica
	n := m.agent.Node()
	switch {
	case n == nil:
		return fmt.Errorf("%w: the agent's network is not libp2p", ErrReplicaConfig)
	case !n.Private():
		return fmt.Errorf("%w: the workspace has no secret (agent.WithSecret)", ErrReplicaConfig)
	}
	if err := os.MkdirAll(cfg.dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrReplicaConfig, err)
	}
	logger := raftLogger(m.agent.Logger())
	// The log is appended to and truncated behind snapshots for ever: its
	// free pages are many, and writing their list at every commit is
	// what bbolt would do by default (etcd turns it off too; it is
	// rebuilt when the file is opened).
	store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}})
	if err != nil {
		return fmt.Errorf("task: replica log: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.dir, 2, logger)
	if err != nil {
		_ = store.Close()
		return fmt.Errorf("task: replica snapshots: %w", err)
	}
	sl, err := newStreamLayer(n)
	if err != nil {
		_ = store.Close()
		return err
	}
	var rp atomic.Pointer[replica] // set once Raft runs
	sl.allow = func(id peer.ID) bool {
		if r := rp.Load(); r != nil {
			return r.member(id)
		}
		return slices.Contains(cfg.bootstrap, id)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: sl, MaxPool: 3, Timeout: 2 * time.Second, Logger: logger,
	})
	r := &replica{m: m, cfg: cfg, store: store, trans: trans, boot: cfg.bootstrap,
		notify: make(chan bool, 16), changed: make(chan struct{}, 1), resync: make(chan struct{}, 1), stop: make(chan struct{}),
		commits: make(chan pendingCommit, replicaInFlight), leftDone: make(chan struct{})}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(n.ID().String())
	conf.HeartbeatTimeout = cfg.election
	conf.ElectionTimeout = cfg.election
	conf.LeaderLeaseTimeout = cfg.election / 2
	conf.SnapshotThreshold = cfg.snapshot
	conf.SnapshotInterval = cfg.snapEvery
	conf.TrailingLogs = cfg.snapshot
	conf.BatchApplyCh = true
	conf.NotifyCh = r.notify
	conf.Logger = logger
	// The Raft log is what is durable now: the journal's file is rebuilt
	// from its snapshot and the entries after it whenever a replica starts.
	j := m.cfg.journal
	j.db.NoSync = true
	fsm := &journalFSM{j: j, failed: r.leave}
	if r.raft, err = raft.NewRaft(conf, fsm, store, store, snaps, trans); err != nil {
		_ = trans.Close()
		_ = store.Close()
		return fmt.Errorf("task: replica: %w", err)
	}
	rp.Store(r)
	r.link = watchLeaderLink(r, n.Host().Network(), conf)
	if cfg.boot {
		has, err := raft.HasExistingState(store, store, snaps)
		if err == nil && !has {
			servers := []raft.Server{{ID: conf.LocalID, Address: raft.ServerAddress(conf.LocalID)}}
			for _, id := range cfg.bootstrap {
				if id != n.ID() {
					servers = append(servers, raft.Server{ID: raft.ServerID(id.String()), Address: raft.ServerAddress(id.String())})
				}
			}
			err = r.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
		}
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			r.close()
			return fmt.Errorf("task: replica bootstrap: %w", err)
		}
	}
	m.rep.Store(r)
	r.wg.Add(3)
	go r.watch()
	go r.loop()
	go r.waitCommits()
	return nil
}

// replicaInFlight bounds the commits a replicated manager has in the log
// at once (a local journal has one): a commit waits for a round trip to
// the other managers and their disks, so several in flight keep the
// manager's throughput.
const replicaInFlight = 8

// pendingCommit is a batch handed to the log, with the effects waiting
// for it.
type pendingCommit struct {
	f       raft.ApplyFuture
	err     error // it could not be encoded
	records int
	start   time.Time
	after   []func(error)
}

// commit hands a batch to the log. Called in the actor, so batches enter
// the log in the order they were made; at most replicaInFlight are
// pending (jwriting), so the channel never blocks.
func (r *replica) commit(recs []*taskRecord, workers map[string]WorkerStats, deletes []journalDelete, puts []journalPut, after []func(error)) {
	pc := pendingCommit{records: len(recs), start: time.Now(), after: after}
	if len(recs) > 0 || len(deletes) > 0 || len(puts) > 0 {
		b := journalBatch{Records: recs, Workers: workers}
		for _, d := range deletes {
			b.Deletes = append(b.Deletes, d.id)
			b.DeleteSeqs = append(b.DeleteSeqs, d.seq)
		}
		for _, p := range puts {
			b.Puts = append(b.Puts, batchPut{Bucket: p.bucket, Key: p.key, Value: p.value})
		}
		data, err := b.MarshalMsg([]byte{entryBatch})
		if err != nil {
			pc.err = fmt.Errorf("%w: %w", ErrJournalWrite, err)
		} else {
			pc.f = r.raft.Apply(data, r.cfg.apply)
		}
	}
	r.commits <- pc
}

// waitCommits completes the pending commits in order: it waits for each
// and runs its effects in the actor.
func (r *replica) waitCommits() {
	defer r.wg.Done()
	var last error // of the last commit that went to the log
	for pc := range r.commits {
		err := pc.err
		switch {
		case pc.f != nil && err == nil:
			err = r.result(pc.f)
			last = err
		case pc.f == nil && err == nil:
			// Nothing of its own: its effects wait for the commits before
			// it, and fail with them.
			err = last
		}
		took := time.Since(pc.start)
		_ = r.m.agent.Post(func() { r.m.committed(pc.records, took, pc.after, err) }) // fails once stopped: nobody waits for the effects
		r.m.jwg.Done()
	}
}

// result is the outcome of a commit: nil once a majority holds it and
// this replica's journal has it.
func (r *replica) result(f raft.ApplyFuture) error {
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
			errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		r.requestResync()
		return fmt.Errorf("%w: %w", ErrJournalWrite, err)
	}
	if err, ok := f.Response().(error); ok && err != nil {
		r.requestResync()
		return fmt.Errorf("%w: %w", ErrJournalWrite, err)
	}
	return nil
}

// requestResync makes the leader rebuild its state from the journal: a
// commit that failed for another reason than a lost lead may or may not
// be in the log.
func (r *replica) requestResync() {
	select {
	case r.resync <- struct{}{}:
	default:
	}
}

// watch drains Raft's leadership notifications at once (Raft blocks on
// them, and lead waits on Raft), coalescing them into one signal: loop
// then looks at the state Raft is in.
func (r *replica) watch() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case <-r.notify:
			select {
			case r.changed <- struct{}{}:
			default:
			}
		}
	}
}

// loop follows the replica's leadership: it takes the lead (resuming from
// the journal, once every entry committed before is applied to it) and
// stands down.
func (r *replica) loop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.stop:
			return
		case <-r.resync:
			r.m.agent.Post(r.m.standDown)
			if r.raft.State() == raft.Leader {
				r.lead()
			}
		case <-r.changed:
			if r.raft.State() == raft.Leader {
				r.lead()
			} else {
				r.m.agent.Post(r.m.standDown)
			}
		}
	}
}

// lead brings the manager's state up to the log and hands it the lead.
// A manager that still leads (notifications of a lost and a new term
// merged into one) stands down first, so that nothing it commits lands
// between the journal read here and the state it rebuilds from it.
func (r *replica) lead() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	if _, err := agent.Call(ctx, r.m.agent, func() (struct{}, error) {
		r.m.standDown()
		return struct{}{}, nil
	}); err != nil {
		return // stopping
	}
	for r.raft.State() == raft.Leader {
		err := r.raft.Barrier(4 * r.cfg.election).Error()
		if err == nil {
			break
		}
		r.m.agent.Logger().Warn("replica: waiting for the log to apply", "err", err)
		select {
		case <-r.stop:
			return
		case <-time.After(r.cfg.election):
		}
	}
	if r.raft.State() != raft.Leader {
		return
	}
	term := r.raft.CurrentTerm()
	st, err := r.m.loadRecovery()
	if err != nil {
		r.m.agent.Logger().Error("replica: cannot read the journal; handing the lead on", "err", err)
		_ = r.raft.LeadershipTransfer()
		return
	}
	r.m.agent.Post(func() { r.m.takeLead(term, st) })
}

// member reports whether id may speak Raft to this replica: a server of
// the group's configuration (or of the bootstrap list), or anyone while
// this replica knows no configuration yet (a new standby waiting to be
// added: the leader's first contact comes before it knows the group).
func (r *replica) member(id peer.ID) bool {
	if slices.Contains(r.boot, id) {
		return true
	}
	f := r.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	servers := f.Configuration().Servers
	if len(servers) == 0 {
		return true
	}
	for _, s := range servers {
		if string(s.ID) == id.String() {
			return true
		}
	}
	return false
}

// replicaServer reports whether pid is a server of this manager's
// replicated group's configuration (false without replication).
func (m *Manager) replicaServer(pid peer.ID) bool {
	r := m.rep.Load()
	if r == nil {
		return false
	}
	f := r.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == pid.String() {
			return true
		}
	}
	return false
}

// leader is the leading manager's peer ID, "" when unknown.
func (r *replica) leader() string {
	_, id := r.raft.LeaderWithID()
	return string(id)
}

// leave takes the replica out of its group after its journal failed to
// apply an entry: from then on it would hold less than the log says, and
// must neither lead nor vote. The manager stands down; a restart rebuilds
// the journal from the last snapshot and the log. Called on Raft's FSM
// goroutine, so the shutdown runs apart (it waits for that goroutine).
func (r *replica) leave(err error) {
	if !r.left.CompareAndSwap(false, true) {
		return
	}
	r.m.agent.Logger().Error("replica: the journal could not apply the log; leaving the group until restarted", "err", err)
	_ = r.m.agent.Post(r.m.standDown)
	go func() {
		defer close(r.leftDone)
		_ = r.raft.Shutdown().Error()
	}()
}

// handOver transfers the lead to another voter, if this replica leads and
// there is one, waiting at most a few election timeouts.
func (r *replica) handOver() {
	if r.raft.State() != raft.Leader {
		return
	}
	f := r.raft.LeadershipTransfer()
	done := make(chan struct{})
	go func() { _ = f.Error(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * r.cfg.election):
	}
}

// close leaves the group (stops Raft) and closes its files.
func (r *replica) close() {
	select {
	case <-r.stop:
		return
	default:
		close(r.stop)
	}
	if r.link != nil {
		r.link.close()
	}
	if r.raft != nil {
		_ = r.raft.Shutdown().Error() // pending commits fail
		if r.left.Load() {            // set before the FSM stopped, if at all
			<-r.leftDone
		}
	}
	close(r.commits) // the actor has stopped: nothing is handed to the log any more
	r.wg.Wait()
	_ = r.trans.Close()
	_ = r.store.Close()
}

// ReplicaState is this manager's view of its replicated group.
type ReplicaState struct {
	State        string        `json:"state"`           // "Leader", "Follower", "Candidate" or "Shutdown"
	Term         uint64        `json:"term"`            // the current term
	Leader       string        `json:"leader"`          // the leader's peer ID, "" if unknown
	CommitIndex  uint64        `json:"commit_index"`    // the last log index known committed
	AppliedIndex uint64        `json:"applied_index"`   // the last log index applied to the journal
	LastContact  time.Duration `json:"last_contact_ns"` // since the leader was last heard (a follower); 0 if never or leading
}

// Replica returns the manager's replication state ([ErrReplicaConfig]
// without WithReplication).
func (m *Manager) Replica() (ReplicaState, error) {
	r, err := m.replicaOf()
	if err != nil {
		return ReplicaState{}, err
	}
	st := ReplicaState{
		State: r.raft.State().String(), Term: r.raft.CurrentTerm(), Leader: r.leader(),
		CommitIndex: r.raft.CommitIndex(), AppliedIndex: r.raft.AppliedIndex(),
	}
	if lc := r.raft.LastContact(); !lc.IsZero() && r.raft.State() != raft.Leader {
		st.LastContact = time.Since(lc)
	}
	return st, nil
}

// Standby is one manager of a replicated workspace.
type Standby struct {
	ID     peer.ID
	Voter  bool // a voter (false: catching up without a vote)
	Leader bool
}

// Replicas lists the managers of the replicated group as this one knows
// it ([ErrReplicaConfig] without WithReplication).
func (m *Manager) Replicas(ctx context.Context) ([]Standby, error) {
	r, err := m.replicaOf()
	if err != nil {
		return nil, err
	}
	f := r.raft.GetConfiguration()
	if err := waitFuture(ctx, f); err != nil {
		return nil, err
	}
	leader := r.leader()
	var out []Standby
	for _, s := range f.Configuration().Servers {
		id, err := peer.ParseID(string(s.ID))
		if err != nil {
			continue
		}
		out = append(out, Standby{ID: id, Voter: s.Suffrage == raft.Voter, Leader: string(s.ID) == leader})
	}
	return out, nil
}

// AddStandby adds a manager (by peer ID; it must run WithReplication in
// the same workspace) to the group as a voter; it catches up from a
// snapshot and the log. Only the leader can ([ErrNotLeader]).
func (m *Manager) AddStandby(ctx context.Context, id peer.ID) error {
	r, err := m.replicaOf()
	if err != nil {
		return err
	}
	return r.change(ctx, r.raft.AddVoter(raft.ServerID(id.String()), raft.ServerAddress(id.String()), 0, timeoutOf(ctx)))
}

// RemoveStandby removes a manager from the group (the leader itself too:
// another then leads). Only the leader can ([ErrNotLeader]).
func (m *Manager) RemoveStandby(ctx context.Context, id peer.ID) error {
	r, err := m.replicaOf()
	if err != nil {
		return err
	}
	return r.change(ctx, r.raft.RemoveServer(raft.ServerID(id.String()), 0, timeoutOf(ctx)))
}

func (r *replica) change(ctx context.Context, f raft.Future) error {
	err := waitFuture(ctx, f)
	if errors.Is(err, raft.ErrNotLeader) {
		return fmt.Errorf("%w (the leader is %s)", ErrNotLeader, r.leader())
	}
	return err
}

func (m *Manager) replicaOf() (*replica, error) {
	r := m.rep.Load()
	if r == nil {
		return nil, fmt.Errorf("%w: the manager does not replicate (WithReplication), or has not started", ErrReplicaConfig)
	}
	return r, nil
}

// waitFuture waits for a Raft future or ctx.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// timeoutOf is what is left of ctx's deadline (10 s without one).
func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return 10 * time.Second
}

// raftLogger writes Raft's warnings and errors to the agent's log.
func raftLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Warn, DisableTime: true,
		Output: slogWriter{l},
	})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(bytes.TrimSpace(p)))
	return len(p), nil
}
