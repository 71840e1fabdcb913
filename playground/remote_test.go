package playground

import (
	"errors"
	"testing"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

// Under a strict manager a producer granted one type reads no other:
// neither by waiting for such a task nor by depending on it (its output
// would reach the producer's task). A remote wait on a cancelled task
// gives ErrCancelled.
func TestRemoteClientGrants(t *testing.T) {
	t.Parallel()
	var addr string
	p := start(t, sumWorkers(1), WithManagerOptions(task.WithGrantsRequired()), WithListening(func(a []string) { addr = a[0] }))
	ctx := testCtx(t)
	if _, err := p.AddTasks(ctx, Task{ID: "secret", Type: "hidden"}, Task{ID: "open", Type: "sum", Input: MustEncode(1)}); err != nil {
		t.Fatal(err)
	}
	key, err := peer.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromKey(key)
	g, err := p.Manager().IssueGrant(task.Grant{ID: "p", Subject: id, Roles: []task.Role{task.RoleProducer}, Types: []string{"sum"}, Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New("producer", agent.WithIdentity(key), agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"),
		agent.WithWorkspace(p.Manager().Agent().Workspace()), agent.WithJoin(addr))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(a, task.WithClientGrants(g))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	if r, err := c.Wait(ctx, "open"); err != nil || intResult(t, r) != 1 {
		t.Fatalf("a task of its type: %+v %v", r, err)
	}
	if _, err := c.Wait(ctx, "secret"); !errors.Is(err, task.ErrUnauthorized) {
		t.Fatalf("waiting for a task of another type: %v, want ErrUnauthorized", err)
	}
	if _, err := c.AddTasks(ctx, Task{ID: "leak", Type: "sum", Dependencies: []string{"secret"}}); !errors.Is(err, task.ErrUnauthorized) {
		t.Fatalf("depending on a task of another type: %v, want ErrUnauthorized", err)
	}
	if _, err := c.AddTasks(ctx, Task{ID: "other", Type: "hidden"}); !errors.Is(err, task.ErrUnauthorized) {
		t.Fatalf("submitting another type: %v", err)
	}
	if _, err := c.AddTasks(ctx, Task{ID: "mine", Type: "sum", Input: MustEncode(2), Dependencies: []string{"open"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddTasks(ctx, Task{ID: "never", Type: "sum", Dependencies: []string{"secret"}, Input: MustEncode(0)}); err == nil {
		t.Fatal("a dependency on another type was accepted")
	}
	if _, err := p.AddTasks(ctx, Task{ID: "doomed", Type: "sum", Dependencies: []string{"secret"}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Cancel(ctx, "doomed"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, "doomed"); !errors.Is(err, ErrCancelled) {
		t.Fatalf("a cancelled task, remotely: %v, want ErrCancelled", err)
	}
}
