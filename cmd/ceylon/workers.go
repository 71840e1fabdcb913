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

func workersCmd(c *conn) *cobra.Command {
	return &cobra.Command{
		Use:   "workers",
		Short: "Every worker the manager has known, connected first; gone ones with when they left",
		Args:  args(0),
		RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, _ []string) error {
			cctx, cancel := c.call(ctx)
			defer cancel()
			ws, err := op.Workers(cctx)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(out, ws)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "WORKER\tSTATE\tSKILL\tSLOTS\tIN FLIGHT\tCOMPLETED\tSUCCESS\tAVG\tLAST SEEN\tTYPES")
			for _, w := range ws {
				state := "connected"
				if w.Reach != "" && w.Reach != "direct" {
					state += " (" + w.Reach + ")"
				}
				if !w.Connected {
					state = "gone"
					if !w.LeftAt.IsZero() {
						state = "gone " + ago(w.LeftAt)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.0f%%\t%v\t%s\t%s\n", w.Name, state, w.Skill, w.Capacity, w.InFlight,
					w.Results, 100*w.SuccessRate(), w.AvgTime().Round(time.Microsecond), ago(w.LastSeen), strings.Join(w.Types, ","))
			}
			return tw.Flush()
		}),
	}
}

// ago says how long ago t was ("-" for never).
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	}
	return t.Local().Format("Jan 2 15:04")
}
