package task

import (
	"context"
	"time"

	"github.com/ceylon-go/ceylon/agent"
)

// ManagerStats is a JSON-ready snapshot of a manager: active workers,
// pending tasks, average processing time, per-worker statistics, and what
// a live view needs.
type ManagerStats struct {
	Time          time.Time      `json:"time"`
	UptimeSeconds float64        `json:"uptime_s"`
	Workers       []WorkerStatus `json:"workers"`
	// Pending tasks wait for a worker; Retrying wait out a backoff.
	Pending   int `json:"pending"`
	Retrying  int `json:"retrying"`
	InFlight  int `json:"in_flight"`
	Submitted int `json:"submitted"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Retried   int `json:"retried"`
	Requeued  int `json:"requeued"`
	// AvgProcessingMS is the mean execution time workers report.
	AvgProcessingMS float64      `json:"avg_processing_ms"`
	Recent          []RecentTask `json:"recent"`
}

// WorkerStatus is one worker in [ManagerStats].
type WorkerStatus struct {
	Name         string   `json:"name"`
	Skill        int      `json:"skill"`
	Capabilities []string `json:"capabilities"`
	Connected    bool     `json:"connected"`
	InFlight     int      `json:"in_flight"`
	Capacity     int      `json:"capacity"`
	Completed    int      `json:"completed"`
	Successful   int      `json:"successful"`
	SuccessRate  float64  `json:"success_rate"`
	AvgTimeMS    float64  `json:"avg_time_ms"`
}

// RecentTask is one of the last tasks to finish.
type RecentTask struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Status     string    `json:"status"`
	Worker     string    `json:"worker"`
	Attempts   int       `json:"attempts"`
	DurationMS float64   `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
}

// recentRing keeps the last tasks to finish. Owned by the actor.
type recentRing struct {
	buf  [50]RecentTask
	next int
	n    int
}

func (r *recentRing) add(t *taskState) {
	rt := RecentTask{ID: t.task.ID, Type: t.task.Type, Status: t.status.String(), Attempts: t.attempt,
		DurationMS: ms(t.finishedAt.Sub(t.submittedAt)), FinishedAt: t.finishedAt}
	if t.result != nil {
		rt.Worker, rt.Error = t.result.Worker, t.result.ErrorMessage
	}
	r.buf[r.next] = rt
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// list returns the entries, newest first.
func (r *recentRing) list() []RecentTask {
	out := make([]RecentTask, 0, r.n)
	for i := 1; i <= r.n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Stats returns a snapshot for monitoring.
func (m *Manager) Stats(ctx context.Context) (ManagerStats, error) {
	return agent.Call(ctx, m.agent, func() (ManagerStats, error) {
		rep := m.report()
		s := ManagerStats{
			Time: time.Now(), UptimeSeconds: time.Since(m.started).Seconds(),
			Pending: m.ready.n, InFlight: len(m.inflight),
			Submitted: rep.Submitted, Succeeded: rep.Succeeded, Failed: rep.Failed, Cancelled: rep.Cancelled,
			Retried: rep.Retried, Requeued: rep.Requeued, AvgProcessingMS: ms(rep.AvgExecution),
			Recent: m.recent.list(),
		}
		for _, t := range m.tasks {
			if t.status == StatusRetrying {
				s.Retrying++
			}
		}
		for _, w := range m.workerList {
			s.Workers = append(s.Workers, WorkerStatus{
				Name: w.info.Name, Skill: w.info.Skill, Capabilities: w.info.Capabilities, Connected: w.alive,
				InFlight: len(w.slots), Capacity: w.info.MaxConcurrency, Completed: w.stats.Completed,
				Successful: w.stats.Successful, SuccessRate: w.stats.SuccessRate(), AvgTimeMS: ms(w.stats.AvgTime()),
			})
		}
		return s, nil
	})
}
