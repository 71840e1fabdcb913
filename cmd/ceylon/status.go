package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ceylon-go/ceylon/task"
	"github.com/spf13/cobra"
)

func statusCmd(c *conn) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The manager's counters, rates over the last minute, and workers",
		Args:  args(0),
		RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, _ []string) error {
			cctx, cancel := c.call(ctx)
			defer cancel()
			st, err := op.Stats(cctx)
			if err != nil {
				return err
			}
			series, err := op.Series(cctx, time.Now().Add(-time.Minute))
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(out, struct {
					Stats  task.Stats    `json:"stats"`
					Series []task.Sample `json:"series"`
				}{st, series})
			}
			printStatus(out, st, series)
			return nil
		}),
	}
}

func printStatus(out io.Writer, st task.Stats, series []task.Sample) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	mode := "single manager"
	if r := st.Replica; r != nil {
		mode = fmt.Sprintf("replicated: %s, term %d, leader %s", strings.ToLower(r.State), r.Term, short(r.Leader))
	}
	fmt.Fprintf(tw, "manager\t%s, up %v\n", mode, (time.Duration(st.UptimeSeconds) * time.Second).Round(time.Second))
	fmt.Fprintf(tw, "tasks\t%d submitted, %d succeeded, %d failed, %d cancelled\n", st.Submitted, st.Succeeded, st.Failed, st.Cancelled)
	fmt.Fprintf(tw, "now\t%d pending, %d retrying, %d in flight\n", st.Pending, st.Retrying, st.InFlight)
	if n := len(series); n >= 2 {
		first, last := series[0], series[n-1]
		secs := last.Time.Sub(first.Time).Seconds()
		done := (last.Succeeded + last.Failed + last.Cancelled) - (first.Succeeded + first.Failed + first.Cancelled)
		fmt.Fprintf(tw, "last minute\t%.1f tasks/s finished, %.1f failed/s\n", float64(done)/secs, float64(last.Failed-first.Failed)/secs)
		fmt.Fprintf(tw, "latest second\texec p50 %s p99 %s; submit to finish p50 %s p99 %s\n",
			msDur(last.ExecP50MS), msDur(last.ExecP99MS), msDur(last.LatencyP50MS), msDur(last.LatencyP99MS))
	}
	fmt.Fprintf(tw, "averages\texec %v, submit to success %v, success rate %.1f%%\n",
		st.AvgExecution.Round(time.Microsecond), st.AvgCompletion.Round(time.Microsecond), 100*st.SuccessRate)
	connected := 0
	for _, w := range st.Workers {
		if w.Connected {
			connected++
		}
	}
	fmt.Fprintf(tw, "workers\t%d connected, %d gone\n", connected, len(st.Workers)-connected)
	if len(st.Paused) > 0 {
		fmt.Fprintf(tw, "paused\t%s\n", strings.Join(st.Paused, ", "))
	}
	for _, r := range st.Running {
		fmt.Fprintf(tw, "running\t%s on %s, %s\n", r.ID, r.Worker, progress(r.Progress, r.ProgressMessage))
	}
}

// msDur prints milliseconds as a duration, to three figures or so.
func msDur(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d >= time.Second:
		d = d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		d = d.Round(100 * time.Microsecond)
	default:
		d = d.Round(time.Microsecond)
	}
	return d.String()
}

func progress(p float64, msg string) string {
	s := fmt.Sprintf("%3.0f%%", 100*p)
	if msg != "" {
		s += " " + msg
	}
	return s
}

// short abbreviates a peer ID.
func short(id string) string {
	if len(id) > 16 {
		return id[:8] + "…" + id[len(id)-6:]
	}
	return id
}
