package task

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/internal/testutil"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/crypto"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
)

// identity is a key and its peer ID, for an agent a grant names.
type identity struct {
	key crypto.PrivKey
	id  peer.ID
}

func newIdentity(t *testing.T) identity {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := libp2ppeer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return identity{k, id}
}

func (i identity) option() agent.Option { return agent.WithIdentity(i.key) }

// grant issues a grant for i with the manager's key.
func grant(t *testing.T, m *testManager, i identity, id string, role Role, types ...string) []byte {
	t.Helper()
	b, err := m.IssueGrant(Grant{ID: id, Subject: i.id, Roles: []Role{role}, Types: types, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startRefusable starts a worker (handlers for types) without waiting for
// its registration.
func startRefusable(t *testing.T, m *testManager, name string, i identity, ran *atomic.Int64, types []string, opts ...any) *Worker {
	t.Helper()
	w := newWorker(t, m, name, append([]any{i.option()}, opts...)...)
	for _, typ := range types {
		w.Handle(typ, func(context.Context, *Job) ([]byte, error) { ran.Add(1); return nil, nil })
	}
	if err := w.Start(testutil.Context(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	return w
}

func refusals(t *testing.T, m *testManager, role Role) float64 {
	t.Helper()
	families, err := m.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "ceylon_auth_refused_total" {
			continue
		}
		for _, mt := range f.GetMetric() {
			if mt.GetLabel()[0].GetValue() == string(role) {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Under the strict policy a worker without a grant is refused (a named
// error on its side, counted on the manager's) and gets no task; handed a
// grant later, without a restart, it registers and runs the task.
func TestStrictRefusesAWorkerWithoutAGrant(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithGrantsRequired())
	ctx := testutil.Context(t)
	wi := newIdentity(t)
	var ran atomic.Int64
	w := startRefusable(t, m, "W", wi, &ran, []string{"job"})
	if _, err := w.Registration(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("registration without a grant: %v, want ErrUnauthorized", err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "j1", Type: "job"}); err != nil {
		t.Fatal(err)
	}
	if n := refusals(t, m, RoleWorker); n < 1 {
		t.Fatalf("%v worker refusals counted", n)
	}
	if info, _ := m.Task(ctx, "j1"); info.Status != StatusPending || len(info.Attempts) != 0 || ran.Load() != 0 {
		t.Fatalf("the refused worker got the task: %+v, ran %d", info, ran.Load())
	}
	if err := w.SetGrants(ctx, grant(t, m, wi, "g1", RoleWorker, "job")); err != nil {
		t.Fatal(err)
	}
	if types, err := w.Registration(ctx); err != nil || !slices.Equal(types, []string{"job"}) {
		t.Fatalf("registration with a grant: %v %v", types, err)
	}
	if r, err := m.Wait(ctx, "j1"); err != nil || !r.Success || ran.Load() != 1 {
		t.Fatalf("%+v %v, ran %d", r, err, ran.Load())
	}
}

// A worker with a grant for type A registers for A only and receives no
// task of type B.
func TestWorkerGrantLimitsItsTypes(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithGrantsRequired())
	ctx := testutil.Context(t)
	wi := newIdentity(t)
	var ran atomic.Int64
	w := startRefusable(t, m, "W", wi, &ran, []string{"a", "b"}, WithWorkerGrants(grant(t, m, wi, "ga", RoleWorker, "a")))
	if types, err := w.Registration(ctx); err != nil || !slices.Equal(types, []string{"a"}) {
		t.Fatalf("registered for %v, %v; want [a]", types, err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "b1", Type: "b"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Run(ctx, messages.Task{ID: "a1", Type: "a"}); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.Task(ctx, "b1"); info.Status != StatusPending || len(info.Attempts) != 0 || ran.Load() != 1 {
		t.Fatalf("type b went to a worker granted a only: %+v (ran %d)", info, ran.Load())
	}
}

// A producer without a submit grant is refused; with one for type A it
// submits A and not B; expired, revoked, untrusted and someone else's
// grants are refused with their named errors.
func TestProducerGrants(t *testing.T) {
	t.Parallel()
	op := newIdentity(t) // an operator key the manager trusts
	m := startManager(t, WithGrantsRequired(op.id))
	ctx := testutil.Context(t)
	var ran atomic.Int64
	wi := newIdentity(t)
	w := startRefusable(t, m, "W", wi, &ran, []string{"a", "b"}, WithWorkerGrants(grant(t, m, wi, "gw", RoleWorker)))
	if _, err := w.Registration(ctx); err != nil {
		t.Fatal(err)
	}
	pi := newIdentity(t)
	task := func(id, typ string) messages.Task { return messages.Task{ID: id, Type: typ} }

	c := startClient(t, m, pi.option())
	if err := c.Submit(ctx, task("p0", "a")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("submit without a grant: %v, want ErrUnauthorized", err)
	}
	if n := refusals(t, m, RoleProducer); n < 1 {
		t.Fatalf("%v producer refusals counted", n)
	}
	if err := c.SetGrants(ctx, grant(t, m, pi, "gp", RoleProducer, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(ctx, task("p1", "a")); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, task("p2", "b")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("submit of a type not granted: %v", err)
	}
	if _, err := m.Task(ctx, "p2"); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("a refused task was kept: %v", err)
	}

	issue := func(key crypto.PrivKey, g Grant) []byte {
		b, err := IssueGrant(key, g)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hour := time.Now().Add(time.Hour)
	for _, c := range []struct {
		name  string
		grant func(pi identity) []byte
		want  error
	}{
		{"expired", func(pi identity) []byte {
			return issue(op.key, Grant{ID: "old", Subject: pi.id, Roles: []Role{RoleProducer}, Expires: time.Now().Add(-time.Minute)})
		}, ErrGrantExpired},
		{"not yet valid", func(pi identity) []byte {
			return issue(op.key, Grant{ID: "soon", Subject: pi.id, Roles: []Role{RoleProducer}, NotBefore: hour, Expires: hour.Add(time.Hour)})
		}, ErrGrantExpired},
		{"untrusted issuer", func(pi identity) []byte {
			return issue(newIdentity(t).key, Grant{ID: "rogue", Subject: pi.id, Roles: []Role{RoleProducer}, Expires: hour})
		}, ErrUntrustedIssuer},
		{"someone else's", func(identity) []byte {
			return issue(op.key, Grant{ID: "other", Subject: newIdentity(t).id, Roles: []Role{RoleProducer}, Expires: hour})
		}, ErrUnauthorized},
		{"garbage", func(identity) []byte { return []byte("not a grant") }, ErrBadGrant},
	} {
		pi := newIdentity(t)
		pc := startClient(t, m, pi.option())
		err := pc.SetGrants(ctx, c.grant(pi))
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		if err := pc.Submit(ctx, task("x-"+strings.ReplaceAll(c.name, " ", "-"), "a")); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("%s: submit: %v", c.name, err)
		}
	}
	// The operator key's grant is good.
	oi := newIdentity(t)
	oc := startClient(t, m, oi.option())
	if err := oc.SetGrants(ctx, issue(op.key, Grant{ID: "by-op", Subject: oi.id, Roles: []Role{RoleProducer}, Expires: hour})); err != nil {
		t.Fatal(err)
	}
	if err := oc.Submit(ctx, task("by-op", "b")); err != nil {
		t.Fatal(err)
	}

	// Revoked: the holder loses it at once, and nobody can present it again.
	if err := m.Revoke(ctx, "gp"); err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, task("p3", "a")); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("submit after the revocation: %v", err)
	}
	if err := c.SetGrants(ctx, grant(t, m, pi, "gp", RoleProducer, "a")); !errors.Is(err, ErrGrantRevoked) {
		t.Fatalf("a revoked grant presented again: %v", err)
	}
}

// Revoking a worker's grant drops the worker (its attempt goes back to
// the queue), and tells it.
func TestRevokedWorker(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithGrantsRequired())
	ctx := testutil.Context(t)
	wi := newIdentity(t)
	w := newWorker(t, m, "W", wi.option(), WithWorkerGrants(grant(t, m, wi, "gw", RoleWorker)))
	started := make(chan struct{}, 1)
	w.Handle("slow", func(ctx context.Context, _ *Job) ([]byte, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	if _, err := w.Registration(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "s", Type: "slow"}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := m.Revoke(ctx, "gw"); err != nil {
		t.Fatal(err)
	}
	m.awaitEvent(t, "the attempt requeued", func(ev Event) bool { return ev.Type == EventRequeued && ev.TaskID == "s" })
	testutil.Eventually(t, "the worker told", func() bool {
		_, err := w.Registration(ctx)
		return errors.Is(err, ErrUnauthorized)
	})
	if names := workerNames(t, m); len(names) != 0 {
		t.Fatalf("workers after the revocation: %v", names)
	}
}

// Operators: without a grant nothing; a viewer reads but does not act; an
// operator acts.
func TestOperatorGrants(t *testing.T) {
	t.Parallel()
	m := startManager(t, WithGrantsRequired())
	ctx := testutil.Context(t)
	if err := m.Submit(ctx, messages.Task{ID: "q", Type: "nobody"}); err != nil {
		t.Fatal(err)
	}
	vi, oi := newIdentity(t), newIdentity(t)
	nobody := startClient(t, m)
	if _, err := nobody.ListTasks(ctx, TaskFilter{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("list without a grant: %v", err)
	}
	viewer := startClient(t, m, vi.option())
	if err := viewer.SetGrants(ctx, grant(t, m, vi, "gv", RoleViewer)); err != nil {
		t.Fatal(err)
	}
	if p, err := viewer.ListTasks(ctx, TaskFilter{}); err != nil || p.Total != 1 {
		t.Fatalf("a viewer lists: %+v %v", p, err)
	}
	if err := viewer.Cancel(ctx, "q"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a viewer cancels: %v", err)
	}
	if err := viewer.Revoke(ctx, "gv"); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a viewer revokes: %v", err)
	}
	operator := startClient(t, m, oi.option())
	if err := operator.SetGrants(ctx, grant(t, m, oi, "go", RoleOperator)); err != nil {
		t.Fatal(err)
	}
	if err := operator.Cancel(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if info, _ := m.Task(ctx, "q"); info.Status != StatusCancelled {
		t.Fatalf("after the operator's cancel: %v", info.Status)
	}
	if err := operator.Revoke(ctx, "gv"); err != nil {
		t.Fatal(err)
	}
	if _, err := viewer.ListTasks(ctx, TaskFilter{}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a revoked viewer lists: %v", err)
	}
}

// A worker that trusts one manager ignores the assignments of another
// agent that declares the admin role; a worker that trusts whom it joined
// through (the default) is fooled by the same agent (the control).
func TestWorkerIgnoresAnUntrustedManager(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	ws := agent.WithWorkspace("ws-" + t.Name())
	rogue, err := agent.New("rogue", loopback, ws, agent.AsAdmin(), agent.WithJoin(m.Addrs()[0]))
	if err != nil {
		t.Fatal(err)
	}
	evil := messages.TaskAssignment{Task: messages.Task{ID: "evil", Type: "job"}, Attempt: 1, AssignedAt: time.Now()}
	agent.On(rogue, func(ctx agent.Context, _ messages.WorkerInfo) error { return rogue.SendBounded(ctx.SenderID(), evil) })
	for _, err := range []error{agent.RegisterKind[messages.TaskAck](rogue), agent.RegisterKind[messages.Heartbeat](rogue)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := testutil.Context(t)
	if err := rogue.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rogue.Stop() })
	var fooled, trusting atomic.Int64
	start := func(name string, ran *atomic.Int64, opts ...any) *Worker {
		w := newWorker(t, m, name, opts...)
		w.Handle("job", func(_ context.Context, j *Job) ([]byte, error) { ran.Add(1); return nil, nil })
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Stop() })
		return w
	}
	start("fooled", &fooled, agent.WithJoin(rogue.Addrs()[0]))
	testutil.Eventually(t, "the control worker runs the rogue's assignment", func() bool { return fooled.Load() > 0 })

	w := start("trusting", &trusting, agent.WithJoin(rogue.Addrs()[0], m.Addrs()[0]), WithTrustedManagers(m.Agent().Node().ID()))
	if err := m.WaitForWorkerNames(ctx, "trusting"); err != nil {
		t.Fatal(err)
	}
	pid := w.Agent().Node().ID()
	before := w.Agent().Stats().HandlerErrors
	_ = rogue.SendBounded(pid, messages.Welcome{})
	if err := rogue.SendBounded(pid, evil); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the rogue's assignment refused", func() bool { return w.Agent().Stats().HandlerErrors > before })
	if _, err := m.Run(ctx, messages.Task{ID: "real", Type: "job"}); err != nil {
		t.Fatal(err)
	}
	if trusting.Load() != 1 {
		t.Fatalf("the trusting worker ran %d tasks, want 1 (the real one)", trusting.Load())
	}
}

// An attempt set aside for its worker (a replicated manager does it when
// the worker is away) goes back only to that worker: not to another agent
// that takes its name, with a grant for other types, nor to one without a
// grant, even one that offers no types at all.
func TestOrphansGoOnlyToTheirWorker(t *testing.T) {
	t.Parallel()
	// A minute before an orphan is given up (the default 5 s can pass
	// while the impostors start on a loaded machine).
	m := startManager(t, WithGrantsRequired(), WithHeartbeatTimeout(time.Minute))
	ctx := testutil.Context(t)
	real := newIdentity(t)
	block := make(chan struct{})
	defer close(block)
	// No heartbeats while the test runs: one from the real "w0", unknown
	// to the manager once its state is set aside below, would be welcomed
	// back, and it would rightly take its attempt again.
	w := newWorker(t, m, "w0", real.option(), WithWorkerGrants(grant(t, m, real, "real", RoleWorker, "secret")), WithHeartbeatInterval(time.Hour))
	w.Handle("secret", func(ctx context.Context, _ *Job) ([]byte, error) {
		select {
		case <-ctx.Done():
		case <-block:
		}
		return []byte("real"), nil
	})
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	if _, err := w.Registration(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Submit(ctx, messages.Task{ID: "s0", Type: "secret"}); err != nil {
		t.Fatal(err)
	}
	m.awaitEvent(t, "s0 running", func(ev Event) bool { return ev.TaskID == "s0" && ev.Type == EventAcked })
	// The manager sets the attempt aside for "w0", as a replicated one does
	// when the worker leaves.
	if _, err := agent.Call(ctx, m.agent, func() (struct{}, error) {
		ws := m.workers[real.id]
		m.setAside(ws)
		delete(m.workers, real.id)
		m.rebuildWorkerList()
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	// The attempt still aside, or back with the real "w0" (a late second
	// introduction from its join, welcomed, may bring it back: rightly),
	// counts 1; taken by an impostor, 0.
	orphaned := func() int {
		n, _ := agent.Call(ctx, m.agent, func() (int, error) {
			if t := m.tasks["s0"]; t != nil && t.worker != nil && t.worker.pid == real.id {
				return 1, nil
			}
			return len(m.orphans["w0"]), nil
		})
		return n
	}
	var ran atomic.Int64
	cheap := newIdentity(t)
	imp := startRefusable(t, m, "w0", cheap, &ran, []string{"cheap", "secret"}, WithWorkerGrants(grant(t, m, cheap, "cheap", RoleWorker, "cheap")))
	if types, err := imp.Registration(ctx); err != nil || !slices.Equal(types, []string{"cheap"}) {
		t.Fatalf("the impostor with a grant for cheap: %v %v", types, err)
	}
	if n := orphaned(); n != 1 {
		t.Fatalf("the impostor took the attempt: %d left aside", n)
	}
	bare := newIdentity(t)
	nobody := startRefusable(t, m, "w0", bare, &ran, nil)
	if _, err := nobody.Registration(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a worker with no types and no grant: %v, want ErrUnauthorized", err)
	}
	if n := orphaned(); n != 1 {
		t.Fatalf("the grantless impostor took the attempt: %d left aside", n)
	}
	if info, _ := m.Task(ctx, "s0"); info.Status != StatusRunning && info.Status != StatusAssigned {
		t.Fatalf("s0: %v", info.Status)
	}
}

// A revoked grant presented again with a later expiry stays revoked until
// that expiry, and the journal says so (what a restarted manager, or the
// next leader, goes by).
func TestLongerRevocationIsJournaled(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "j.db")
	j := openJournal(t, path)
	m := startManager(t, WithJournal(j), WithGrantsRequired())
	ctx := testutil.Context(t)
	if err := m.Revoke(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	pi := newIdentity(t)
	c := startClient(t, m, pi.option())
	far := time.Now().Add(10 * 365 * 24 * time.Hour).Truncate(time.Second)
	late, err := m.IssueGrant(Grant{ID: "g", Subject: pi.id, Roles: []Role{RoleProducer}, Expires: far})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetGrants(ctx, late); !errors.Is(err, ErrGrantRevoked) {
		t.Fatalf("a revoked grant's copy: %v", err)
	}
	if err := m.Update(ctx, func(*Tx) error { return nil }); err != nil { // all before it is durable
		t.Fatal(err)
	}
	revoked, err := j.loadRevoked()
	if err != nil || !revoked["g"].Equal(far) {
		t.Fatalf("the journal revokes g until %v (%v), want the copy's expiry %v", revoked["g"], err, far)
	}
}
