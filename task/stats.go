package task

//msgp:tag msgpack
//msgp:shim time.Duration as:int64 using:int64/time.Duration
//msgp:ignore Stats RecentTask RunningTask recentRing TypeStats

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ceylon-go/ceylon/agent"
)

// Stats is a snapshot of a manager: its counters, its queue, every worker
// it has known (connected or not: a worker that left keeps its numbers)
// and the last tasks to finish. It is JSON-ready (what the monitor's
// /stats serves) and prints as a report table ([Stats.WriteTo]).
type Stats struct {
	Time          time.Time `json:"time"`
	UptimeSeconds float64   `json:"uptime_s"`
	Submitted     int       `json:"submitted"`
	Succeeded     int       `json:"succeeded"`
	Failed        int       `json:"failed"`
	Cancelled     int       `json:"cancelled"`
	// Pending tasks wait for a worker; Retrying wait out a backoff;
	// InFlight are assigned.
	Pending  int `json:"pending"`
	Retrying int `json:"retrying"`
	InFlight int `json:"in_flight"`
	// Retried counts attempts retried after a failure or a timeout,
	// Requeued attempts requeued after their worker was lost, LateResults
	// results for attempts no longer current (ignored).
	Retried     int `json:"retried"`
	Requeued    int `json:"requeued"`
	LateResults int `json:"late_results"`
	// SuccessRate is Succeeded over final tasks.
	SuccessRate float64 `json:"success_rate"`
	// AvgExecution is the mean worker-reported execution time per result;
	// AvgCompletion the mean time from submission to success.
	AvgExecution  time.Duration `json:"avg_execution_ns"`
	AvgCompletion time.Duration `json:"avg_completion_ns"`
	Workers       []WorkerStats `json:"workers"`
	Recent        []RecentTask  `json:"recent"`
	// Running lists the attempts in flight, the longest running first (at
	// most MaxRunningShown), with their progress.
	Running []RunningTask `json:"running"`
	// Paused lists the task types not assigned (Manager.Pause).
	Paused []string `json:"paused,omitempty"`
	// Types counts the tasks the manager holds by type and status (at
	// most MaxTypesShown types, the most tasks first).
	Types []TypeStats `json:"types"`
	// Replica is the manager's place in its replicated group (nil
	// without WithReplication): a standby's other figures are empty, the
	// leader's are the workspace's.
	Replica *ReplicaState `json:"replica,omitempty"`
}

// Unfinished counts the tasks submitted and not final yet.
func (s Stats) Unfinished() int { return s.Submitted - s.Succeeded - s.Failed - s.Cancelled }

// MarshalJSON adds the averages in milliseconds.
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats
	return json.Marshal(struct {
		plain
		AvgProcessingMS float64 `json:"avg_processing_ms"`
		AvgCompletionMS float64 `json:"avg_completion_ms"`
	}{plain(s), ms(s.AvgExecution), ms(s.AvgCompletion)})
}

// WorkerStats are a worker's numbers as the manager counts them: every
// result (and every lease that ran out) counts in Results, successful or
// not; Successful counts the successes (tasks that ended "completed"). The journal keeps them, so a worker that comes back (or a restarted
// manager) continues its numbers.
type WorkerStats struct {
	Name         string        `msgpack:"name" json:"name"`
	Skill        int           `msgpack:"skill,omitempty" json:"skill"`
	Capabilities []string      `msgpack:"caps,omitempty,allownil" json:"capabilities"`
	Capacity     int           `msgpack:"capacity,omitempty" json:"capacity"` // tasks it runs at once
	Results      int           `msgpack:"completed,omitempty" json:"results"` // every result, and every lease that ran out
	Successful   int           `msgpack:"successful,omitempty" json:"successful"`
	TotalTime    time.Duration `msgpack:"total_time,omitempty" json:"total_time_ns"` // sum of execution times
	InFlight     int           `msgpack:"in_flight,omitempty" json:"in_flight"`
	Connected    bool          `msgpack:"connected,omitempty" json:"connected"`
	// Reach is how the manager is connected to the worker now: direct,
	// hole-punched or relayed ("" when it is not connected). Not kept in
	// the journal.
	Reach string `msgpack:"-" json:"reach,omitempty"`
}

// SuccessRate is Successful/Results (0 before any task).
func (s WorkerStats) SuccessRate() float64 {
	if s.Results == 0 {
		return 0
	}
	return float64(s.Successful) / float64(s.Results)
}

// AvgTime is the mean execution time (0 before any task).
func (s WorkerStats) AvgTime() time.Duration {
	if s.Results == 0 {
		return 0
	}
	return s.TotalTime / time.Duration(s.Results)
}

// MarshalJSON adds the success rate and the mean time in milliseconds.
func (s WorkerStats) MarshalJSON() ([]byte, error) {
	type plain WorkerStats
	return json.Marshal(struct {
		plain
		SuccessRate float64 `json:"success_rate"`
		AvgTimeMS   float64 `json:"avg_time_ms"`
	}{plain(s), s.SuccessRate(), ms(s.AvgTime())})
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

// MaxRunningShown bounds [Stats.Running].
const MaxRunningShown = 50

// MaxTypesShown bounds [Stats.Types].
const MaxTypesShown = 100

// TypeStats counts the tasks of one type the manager holds now (finished
// ones until they are forgotten: WithRetention), by status.
type TypeStats struct {
	Type string `json:"type"`
	// Waiting: pending, scheduled, retrying or waiting on dependencies;
	// Running: assigned or running.
	Waiting   int  `json:"waiting"`
	Running   int  `json:"running"`
	Completed int  `json:"completed"`
	Failed    int  `json:"failed"`
	Cancelled int  `json:"cancelled"`
	Paused    bool `json:"paused,omitempty"`
}

// RunningTask is an attempt in flight as [Stats] shows it.
type RunningTask struct {
	ID              string    `json:"id"`
	Type            string    `json:"type"`
	Worker          string    `json:"worker"`
	Attempt         int       `json:"attempt"`
	AssignedAt      time.Time `json:"assigned_at"`
	Progress        float64   `json:"progress"` // 0 to 1, as the handler last reported
	ProgressMessage string    `json:"progress_message,omitempty"`
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

// Stats returns a snapshot of the manager.
func (m *Manager) Stats(ctx context.Context) (Stats, error) {
	return agent.Call(ctx, m.agent, func() (Stats, error) { return m.stats(), nil })
}

// stats builds the snapshot. Only called in the actor.
func (m *Manager) stats() Stats {
	t := &m.totals
	s := Stats{
		Time: time.Now(), UptimeSeconds: time.Since(m.started).Seconds(),
		Submitted: int(t.submitted.Load()), Succeeded: int(t.succeeded.Load()), Failed: int(t.failed.Load()),
		Cancelled: int(t.cancelled.Load()), Retried: int(t.retried.Load()), Requeued: int(t.requeued.Load()),
		LateResults: int(t.late.Load()), Pending: m.ready.n, InFlight: len(m.inflight), Recent: m.recent.list(),
	}
	if len(m.paused) > 0 {
		s.Paused = m.pausedTypes()
	}
	if st, err := m.Replica(); err == nil {
		s.Replica = &st
	}
	s.Running = m.running()
	types := map[string]*TypeStats{}
	for _, t := range m.tasks {
		if t.status == StatusRetrying {
			s.Retrying++
		}
		ts := types[t.task.Type]
		if ts == nil {
			ts = &TypeStats{Type: t.task.Type, Paused: m.paused[t.task.Type]}
			types[t.task.Type] = ts
		}
		switch t.status {
		case StatusAssigned, StatusRunning:
			ts.Running++
		case StatusCompleted:
			ts.Completed++
		case StatusFailed:
			ts.Failed++
		case StatusCancelled:
			ts.Cancelled++
		default:
			ts.Waiting++
		}
	}
	for typ := range m.paused {
		if types[typ] == nil {
			types[typ] = &TypeStats{Type: typ, Paused: true}
		}
	}
	s.Types = make([]TypeStats, 0, len(types))
	for _, ts := range types {
		s.Types = append(s.Types, *ts)
	}
	slices.SortFunc(s.Types, func(a, b TypeStats) int {
		na, nb := a.Waiting+a.Running+a.Completed+a.Failed+a.Cancelled, b.Waiting+b.Running+b.Completed+b.Failed+b.Cancelled
		if na != nb {
			return nb - na
		}
		return strings.Compare(a.Type, b.Type)
	})
	s.Types = s.Types[:min(len(s.Types), MaxTypesShown)]
	if final := s.Succeeded + s.Failed + s.Cancelled; final > 0 {
		s.SuccessRate = float64(s.Succeeded) / float64(final)
	}
	if s.Succeeded > 0 {
		s.AvgCompletion = t.latencyTotal / time.Duration(s.Succeeded)
	}
	results := 0
	var exec time.Duration // from the workers' own sums, which a restart keeps
	seen := map[string]bool{}
	for _, w := range m.workerList {
		ws := w.stats
		ws.InFlight, ws.Connected = len(w.slots), w.alive
		if n := m.agent.Node(); n != nil {
			ws.Reach = string(n.Reach(w.pid))
		}
		s.Workers = append(s.Workers, ws)
		results += ws.Results
		exec += ws.TotalTime
		seen[ws.Name] = true
	}
	for name, ws := range m.history {
		if !seen[name] {
			s.Workers = append(s.Workers, ws)
			results += ws.Results
			exec += ws.TotalTime
		}
	}
	if results > 0 {
		s.AvgExecution = exec / time.Duration(results)
	}
	return s
}

// String renders the stats as a report table.
func (s Stats) String() string {
	var b strings.Builder
	_, _ = s.WriteTo(&b)
	return b.String()
}

// WriteTo writes the stats as a report table: the totals, then one line
// per worker.
func (s Stats) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	if r := s.Replica; r != nil {
		fmt.Fprintf(&b, "replicated: %s, term %d, leader %s, log applied %d of %d\n", r.State, r.Term, r.Leader, r.AppliedIndex, r.CommitIndex)
	}
	fmt.Fprintf(&b, "tasks: %d submitted, %d succeeded, %d failed, %d cancelled, %d pending\n",
		s.Submitted, s.Succeeded, s.Failed, s.Cancelled, s.Unfinished())
	fmt.Fprintf(&b, "success rate %.1f%%, avg execution %v, avg completion %v, %d retried, %d requeued\n",
		100*s.SuccessRate, s.AvgExecution.Round(time.Microsecond), s.AvgCompletion.Round(time.Microsecond), s.Retried, s.Requeued)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "worker\tskill\tresults\tsuccessful\tsuccess\tavg time\tin flight\t")
	for _, ws := range s.Workers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f%%\t%v\t%d\t\n", ws.Name, ws.Skill, ws.Results, ws.Successful,
			100*ws.SuccessRate(), ws.AvgTime().Round(time.Microsecond), ws.InFlight)
	}
	_ = tw.Flush()
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// running lists the attempts in flight, the longest running first. Only
// called in the actor.
func (m *Manager) running() []RunningTask {
	out := make([]RunningTask, 0, min(len(m.inflight), MaxRunningShown))
	for _, t := range m.inflight {
		r := RunningTask{ID: t.task.ID, Type: t.task.Type, Attempt: t.attempt, AssignedAt: t.assignedAt,
			Progress: t.progress, ProgressMessage: t.progressMessage}
		if t.worker != nil {
			r.Worker = t.worker.detail.Name
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RunningTask) int {
		if c := a.AssignedAt.Compare(b.AssignedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out[:min(len(out), MaxRunningShown)]
}
