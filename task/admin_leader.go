package task

import (
	"context"
	"fmt"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/prometheus/client_golang/prometheus"
)

// LeaderOperator is the admin API of the workspace's leading manager,
// reached from m: m itself while it leads (always, without replication);
// on a standby, the leader, with admin requests from m's agent over the
// workspace. A dashboard or CLI served by any of the replicated managers
// ([monitor.Start] with it) shows and steers the leader. While no leader
// is known, m answers itself (a standby: [ErrNotLeader] for all but
// Stats).
//
// [monitor.Start]: https://pkg.go.dev/github.com/ceylon-go/ceylon/monitor#Start
func (m *Manager) LeaderOperator() Operator {
	return leaderOps{m: m, remote: remoteOps{send: m.askLeader}}
}

// askLeader sends an admin request to the leading manager.
func (m *Manager) askLeader(ctx context.Context, req messages.AdminRequest) (messages.Message, error) {
	l := m.leaderHint()
	if l == "" || l == m.agent.ID() {
		return nil, fmt.Errorf("%w (no leader known)", ErrNotLeader)
	}
	return m.agent.Request(ctx, l, req)
}

type leaderOps struct {
	m      *Manager
	remote remoteOps
}

var _ Operator = leaderOps{}

// local reports whether m answers itself: it leads, or knows no other
// leader.
func (o leaderOps) local(ctx context.Context) bool {
	if o.m.rep.Load() == nil {
		return true
	}
	on, _, err := o.m.Leading(ctx)
	if err != nil || on {
		return true
	}
	l := o.m.leaderHint()
	return l == "" || l == o.m.agent.ID()
}

func (o leaderOps) Stats(ctx context.Context) (Stats, error) {
	if o.local(ctx) {
		return o.m.Stats(ctx)
	}
	return o.remote.Stats(ctx)
}

func (o leaderOps) ListTasks(ctx context.Context, f TaskFilter) (TaskPage, error) {
	if o.local(ctx) {
		return o.m.ListTasks(ctx, f)
	}
	return o.remote.ListTasks(ctx, f)
}

func (o leaderOps) TaskDetail(ctx context.Context, id string) (TaskDetail, error) {
	if o.local(ctx) {
		return o.m.TaskDetail(ctx, id)
	}
	return o.remote.TaskDetail(ctx, id)
}

func (o leaderOps) Cancel(ctx context.Context, id string) error {
	if o.local(ctx) {
		return o.m.Cancel(ctx, id)
	}
	return o.remote.Cancel(ctx, id)
}

func (o leaderOps) Retry(ctx context.Context, id string) error {
	if o.local(ctx) {
		return o.m.Retry(ctx, id)
	}
	return o.remote.Retry(ctx, id)
}

func (o leaderOps) Delete(ctx context.Context, id string) error {
	if o.local(ctx) {
		return o.m.Delete(ctx, id)
	}
	return o.remote.Delete(ctx, id)
}

func (o leaderOps) Workers(ctx context.Context) ([]WorkerView, error) {
	if o.local(ctx) {
		return o.m.Workers(ctx)
	}
	return o.remote.Workers(ctx)
}

func (o leaderOps) Series(ctx context.Context, since time.Time) ([]Sample, error) {
	if o.local(ctx) {
		return o.m.Series(ctx, since)
	}
	return o.remote.Series(ctx, since)
}

func (o leaderOps) Events(ctx context.Context, q EventQuery) (EventPage, error) {
	if o.local(ctx) {
		return o.m.Events(ctx, q)
	}
	return o.remote.Events(ctx, q)
}

func (o leaderOps) Pause(ctx context.Context, typ string) error {
	if o.local(ctx) {
		return o.m.Pause(ctx, typ)
	}
	return o.remote.Pause(ctx, typ)
}

func (o leaderOps) Resume(ctx context.Context, typ string) error {
	if o.local(ctx) {
		return o.m.Resume(ctx, typ)
	}
	return o.remote.Resume(ctx, typ)
}

func (o leaderOps) Revoke(ctx context.Context, id string) error {
	if o.local(ctx) {
		return o.m.Revoke(ctx, id)
	}
	return o.remote.Revoke(ctx, id)
}

// Metrics is m's own registry: each manager is scraped on its own.
func (o leaderOps) Metrics() *prometheus.Registry { return o.m.Metrics() }
