package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ceylon-go/ceylon/task"
	"github.com/spf13/cobra"
)

func tailCmd(c *conn) *cobra.Command {
	var q task.EventQuery
	var fromStart bool
	var count int
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "tail",
		Short: "Print the manager's events as they come, until interrupted",
		Example: `  ceylon tail
  ceylon tail --task report-7
  ceylon tail --from-start --count 100 --json`,
		Args: args(0),
		RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, _ []string) error {
			errOut := cmd.ErrOrStderr()
			if !fromStart {
				cctx, cancel := c.call(ctx)
				p, err := op.Events(cctx, task.EventQuery{Limit: 1})
				cancel()
				if err != nil {
					return err
				}
				q.After, q.Feed = p.Last, p.Feed
			}
			fmt.Fprintf(errOut, "following the events after #%d (Ctrl-C to stop)\n", q.After)
			enc := json.NewEncoder(out)
			printed := 0
			for count == 0 || printed < count {
				q.Wait = 25 * time.Second
				cctx, cancel := context.WithTimeout(ctx, c.timeout+q.Wait)
				p, err := op.Events(cctx, q)
				cancel()
				if ctx.Err() != nil {
					return nil // interrupted: a normal end
				}
				if err != nil {
					if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, task.ErrBusy) {
						select { // the manager is slow or holds many readers: ask again in a while
						case <-time.After(time.Second):
						case <-ctx.Done():
							return nil
						}
						continue
					}
					return err
				}
				if p.Missed > 0 && !c.json {
					fmt.Fprintf(out, "… %d events missed (the manager keeps the last %d)\n", p.Missed, task.EventFeedSize)
				}
				for _, e := range p.Events {
					if c.json {
						if err := enc.Encode(e); err != nil {
							return err
						}
					} else {
						printEvent(out, e)
					}
					if printed++; count > 0 && printed >= count {
						return nil
					}
				}
				q.After, q.Feed = p.Next, p.Feed
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&q.TaskID, "task", "", "only this task's events")
	cmd.Flags().BoolVar(&fromStart, "from-start", false, "begin with the oldest event the manager keeps")
	cmd.Flags().IntVar(&count, "count", 0, "stop after this many events")
	return cmd
}

func printEvent(out io.Writer, e task.EventRecord) {
	line := fmt.Sprintf("%s  %-9s  %s", e.Time.Local().Format("15:04:05.000"), e.Type, e.TaskID)
	if e.Attempt > 0 {
		line += fmt.Sprintf(" #%d", e.Attempt)
	}
	if e.Worker != "" {
		line += " on " + e.Worker
	}
	switch {
	case e.Type == "progress":
		line += "  " + progress(e.Progress, e.Message)
	case e.Error != "":
		line += "  " + oneLine(e.Error, 100)
	}
	fmt.Fprintln(out, line)
}
