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

func tasksCmd(c *conn) *cobra.Command {
	var f task.TaskFilter
	var since, until time.Duration
	var all bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List tasks, newest first, with filters",
		Example: `  ceylon tasks ls --status failed
  ceylon tasks ls --type resize --since 10m --limit 20
  ceylon tasks ls --worker gpu-1 --all --json`,
		Args: args(0),
		RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, _ []string) error {
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			if until > 0 {
				f.Until = time.Now().Add(-until)
			}
			var pages []task.TaskPage
			for {
				cctx, cancel := c.call(ctx)
				p, err := op.ListTasks(cctx, f)
				cancel()
				if err != nil {
					return err
				}
				pages = append(pages, p)
				if !all || p.Next == "" {
					break
				}
				f.Cursor = p.Next
			}
			if c.json {
				if !all {
					return printJSON(out, pages[0])
				}
				merged := task.TaskPage{Total: pages[0].Total, Tasks: []task.TaskSummary{}}
				for _, p := range pages {
					merged.Tasks = append(merged.Tasks, p.Tasks...)
				}
				return printJSON(out, merged)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tSTATUS\tATTEMPT\tWORKER\tSUBMITTED\tWAIT\tRUN\tERROR / PROGRESS")
			shown := 0
			for _, p := range pages {
				for _, s := range p.Tasks {
					note := oneLine(s.Error, 60)
					if s.Status == "running" || s.Status == "assigned" {
						note = progress(s.Progress, s.ProgressMessage)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Type, s.Status, s.Attempt, dash(s.Worker),
						ago(s.SubmittedAt), msDur(s.WaitMS), msDur(s.RunMS), note)
					shown++
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			last := pages[len(pages)-1]
			if last.Total == 0 {
				fmt.Fprintln(out, "no task matches")
				return nil
			}
			fmt.Fprintf(out, "%d of %d matching", shown, last.Total)
			if last.Next != "" {
				fmt.Fprintf(out, "; next page: --cursor %s (or --all)", last.Next)
			}
			fmt.Fprintln(out)
			return nil
		}),
	}
	fl := ls.Flags()
	fl.StringVar(&f.Status, "status", "", "pending, scheduled, assigned, running, retrying, completed, failed, cancelled, or final")
	fl.StringVar(&f.Type, "type", "", "task type")
	fl.StringVar(&f.Worker, "worker", "", "worker of the last attempt")
	fl.StringVar(&f.ID, "id", "", "IDs containing this")
	fl.DurationVar(&since, "since", 0, "submitted within this long (e.g. 10m)")
	fl.DurationVar(&until, "until", 0, "submitted at least this long ago")
	fl.StringVar(&f.Cursor, "cursor", "", "continue a listing (the cursor it printed)")
	fl.IntVar(&f.Limit, "limit", task.DefaultPageSize, fmt.Sprintf("tasks per page (at most %d)", task.MaxPageSize))
	fl.BoolVar(&all, "all", false, "every page")
	cmd := group(&cobra.Command{Use: "tasks", Short: "Tasks of the manager (ls)"})
	cmd.AddCommand(ls)
	return cmd
}

func taskCmd(c *conn) *cobra.Command {
	cmd := group(&cobra.Command{Use: "task", Short: "One task: show, cancel, retry, delete"})
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Everything the manager knows of a task, with its attempts",
		Args:  args(1),
		RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, a []string) error {
			cctx, cancel := c.call(ctx)
			defer cancel()
			d, err := op.TaskDetail(cctx, a[0])
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(out, d)
			}
			printDetail(out, d)
			return nil
		}),
	}
	action := func(use, short, done string, do func(task.Operator) func(context.Context, string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " ID", Short: short, Args: args(1),
			RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, a []string) error {
				cctx, cancel := c.call(ctx)
				defer cancel()
				if err := do(op)(cctx, a[0]); err != nil {
					return err
				}
				if c.json {
					return printJSON(out, map[string]string{"id": a[0], "done": use})
				}
				fmt.Fprintf(out, "%s %s\n", a[0], done)
				return nil
			}),
		}
	}
	cmd.AddCommand(show,
		action("cancel", "Cancel a task (a queued one is dropped, a running one told to stop)", "cancelled",
			func(op task.Operator) func(context.Context, string) error { return op.Cancel }),
		action("retry", "Run a failed or cancelled task again, as a new attempt", "requeued",
			func(op task.Operator) func(context.Context, string) error { return op.Retry }),
		action("delete", "Forget a final task (its ID is free again)", "deleted",
			func(op task.Operator) func(context.Context, string) error { return op.Delete }))
	return cmd
}

func printDetail(out io.Writer, d task.TaskDetail) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("id", d.ID)
	row("type", d.Type)
	row("name", d.Name)
	row("description", d.Description)
	row("status", d.Status)
	if d.Status == "running" || d.Status == "assigned" {
		row("progress", progress(d.Progress, d.ProgressMessage))
	}
	row("submitted", d.SubmittedAt.Local().Format(time.RFC3339Nano))
	if !d.FinishedAt.IsZero() {
		row("finished", fmt.Sprintf("%s (wait %s, run %s, total %s)", d.FinishedAt.Local().Format(time.RFC3339Nano), msDur(d.WaitMS), msDur(d.RunMS), msDur(d.TotalMS)))
	}
	if !d.NotBefore.IsZero() {
		row("not before", d.NotBefore.Local().Format(time.RFC3339))
	}
	row("priority", fmt.Sprint(d.Priority))
	row("input", fmt.Sprintf("%d bytes", d.InputBytes))
	if d.OutputBytes > 0 {
		row("output", fmt.Sprintf("%d bytes", d.OutputBytes))
	}
	row("dependencies", strings.Join(d.Dependencies, ", "))
	row("capabilities", strings.Join(d.Capabilities, ", "))
	row("parent", d.Parent)
	row("retries", fmt.Sprintf("%d of %d, %d lost", d.Retries, d.MaxRetries, d.Lost))
	row("error", d.ResultMessage)
	_ = tw.Flush()
	if len(d.Attempts) == 0 {
		fmt.Fprintln(out, "no attempts yet")
		return
	}
	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTEMPT\tWORKER\tASSIGNED\tTOOK\tOUTCOME")
	for _, a := range d.Attempts {
		outcome := a.Outcome
		if outcome == "" {
			outcome = "running"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", a.Attempt, a.Worker, a.AssignedAt.Local().Format("15:04:05.000"), msDur(a.DurationMS), oneLine(outcome, 80))
	}
	_ = tw.Flush()
}

func pauseCmd(c *conn, pause bool) *cobra.Command {
	use, short, done := "pause", "Stop assigning tasks of a type (queued ones wait, running ones finish)", "paused"
	if !pause {
		use, short, done = "resume", "Assign tasks of a paused type again", "resumed"
	}
	return &cobra.Command{
		Use: use + " TYPE", Short: short, Args: args(1),
		RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, a []string) error {
			cctx, cancel := c.call(ctx)
			defer cancel()
			do := op.Pause
			if !pause {
				do = op.Resume
			}
			if err := do(cctx, a[0]); err != nil {
				return err
			}
			if c.json {
				return printJSON(out, map[string]string{"type": a[0], "done": use})
			}
			fmt.Fprintf(out, "%s %s\n", a[0], done)
			return nil
		}),
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine cuts s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
