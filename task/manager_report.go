package task

//msgp:tag msgpack
//msgp:shim time.Duration as:int64 using:int64/time.Duration
//msgp:ignore Report

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ceylon-go/ceylon/agent"
)

// WorkerStats are a worker's numbers as the manager counts them: every
// result (and every lease that ran out) is a completed task, successful or
// not.
type WorkerStats struct {
	Name         string        `msgpack:"name"`
	Skill        int           `msgpack:"skill,omitempty"`
	Capabilities []string      `msgpack:"caps,omitempty,allownil"`
	Completed    int           `msgpack:"completed,omitempty"`
	Successful   int           `msgpack:"successful,omitempty"`
	TotalTime    time.Duration `msgpack:"total_time,omitempty"` // sum of execution times
	InFlight     int           `msgpack:"in_flight,omitempty"`
	Connected    bool          `msgpack:"connected,omitempty"`
}

// SuccessRate is Successful/Completed (0 before any task).
func (s WorkerStats) SuccessRate() float64 {
	if s.Completed == 0 {
		return 0
	}
	return float64(s.Successful) / float64(s.Completed)
}

// AvgTime is the mean execution time.
func (s WorkerStats) AvgTime() time.Duration {
	if s.Completed == 0 {
		return 0
	}
	return s.TotalTime / time.Duration(s.Completed)
}

// Report summarises a manager's work.
type Report struct {
	Submitted, Succeeded, Failed, Cancelled, Pending int
	Retried                                          int // attempts retried after a failure or timeout
	Requeued                                         int // attempts requeued after their worker was lost
	LateResults                                      int // results for attempts no longer current (ignored)
	// SuccessRate is Succeeded over final tasks.
	SuccessRate float64
	// AvgExecution is the mean worker-reported execution time per result.
	AvgExecution time.Duration
	// AvgCompletion is the mean time from submission to success.
	AvgCompletion time.Duration
	Workers       []WorkerStats
}

// Report returns the manager's numbers now.
func (m *Manager) Report(ctx context.Context) (Report, error) {
	return agent.Call(ctx, m.agent, func() (Report, error) { return m.report(), nil })
}

func (m *Manager) report() Report {
	t := m.totals
	r := Report{
		Submitted: t.submitted, Succeeded: t.succeeded, Failed: t.failed, Cancelled: t.cancelled,
		Retried: t.retried, Requeued: t.requeued, LateResults: t.late,
	}
	r.Pending = r.Submitted - r.Succeeded - r.Failed - r.Cancelled
	if final := r.Succeeded + r.Failed + r.Cancelled; final > 0 {
		r.SuccessRate = float64(r.Succeeded) / float64(final)
	}
	if r.Succeeded > 0 {
		r.AvgCompletion = t.latencyTotal / time.Duration(r.Succeeded)
	}
	results := 0
	seen := map[string]bool{}
	for _, w := range m.workerList {
		s := w.stats
		s.InFlight, s.Connected = len(w.slots), w.alive
		r.Workers = append(r.Workers, s)
		results += s.Completed
		seen[s.Name] = true
	}
	for name, s := range m.history {
		if !seen[name] {
			r.Workers = append(r.Workers, s)
			results += s.Completed
		}
	}
	if results > 0 {
		r.AvgExecution = t.execTotal / time.Duration(results)
	}
	return r
}

// String renders the report as a table.
func (r Report) String() string {
	var b strings.Builder
	_, _ = r.WriteTo(&b)
	return b.String()
}

// WriteTo writes the report as a table.
func (r Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "tasks: %d submitted, %d succeeded, %d failed, %d cancelled, %d pending\n",
		r.Submitted, r.Succeeded, r.Failed, r.Cancelled, r.Pending)
	fmt.Fprintf(&b, "success rate %.1f%%, avg execution %v, avg completion %v, %d retried, %d requeued\n",
		100*r.SuccessRate, r.AvgExecution.Round(time.Microsecond), r.AvgCompletion.Round(time.Microsecond), r.Retried, r.Requeued)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "worker\tskill\tcompleted\tsuccessful\tsuccess\tavg time\tin flight\t")
	for _, s := range r.Workers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.0f%%\t%v\t%d\t\n", s.Name, s.Skill, s.Completed, s.Successful,
			100*s.SuccessRate(), s.AvgTime().Round(time.Microsecond), s.InFlight)
	}
	_ = tw.Flush()
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
