package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ceylon-go/ceylon/task"
	"github.com/spf13/cobra"
)

func newRoot() *cobra.Command {
	c := &conn{}
	root := &cobra.Command{
		Use:   "ceylon",
		Short: "Operate a ceylon-go workspace's task manager",
		Long: `ceylon shows and steers a workspace's task manager: its state, its workers,
its tasks (list, show, cancel, retry, delete), its task types (pause,
resume), and a live tail of its events.

It reaches the manager over HTTP at its monitor's address (--url, and
--token if the monitor has one), or from inside the workspace as a member:
--join the manager's address (or --bootstrap an entry point), with the
workspace ID (--workspace) and its secret (--secret) if it has one. No HTTP
port is needed on the manager then.

Exit codes: 0 done, 1 other error, 2 bad usage, 3 no such task,
4 refused (not final, bad filter, wrong token, no grant, not the leader),
5 manager not reached in time.`,
		Example: `  ceylon --url 127.0.0.1:8080 status
  ceylon --url 127.0.0.1:8080 tasks ls --status failed
  ceylon --join /ip4/127.0.0.1/tcp/7000/p2p/12D3KooW... --workspace skill-routing workers
  ceylon --url 127.0.0.1:8080 task retry task-17
  ceylon --url 127.0.0.1:8080 tail --json`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	// The environment fills what the flags leave unset, after parsing:
	// as flag defaults, a secret or a token would show in every usage text.
	env := []struct {
		p         *string
		flag, env string
		usage     string
	}{
		{&c.url, "url", "CEYLON_URL", "the manager's monitor (host:port or URL)"},
		{&c.token, "token", "CEYLON_HTTP_TOKEN", "bearer token of the monitor"},
		{&c.join, "join", "CEYLON_JOIN", "the manager's multiaddr(s), comma-separated, to reach it from inside the workspace"},
		{&c.bootstrap, "bootstrap", "CEYLON_BOOTSTRAP", "entry points of the workspace (comma-separated), to find the manager by the workspace ID"},
		{&c.workspace, "workspace", "CEYLON_WORKSPACE", "workspace ID, with --join or --bootstrap"},
		{&c.secret, "secret", "CEYLON_SECRET", "workspace secret"},
	}
	for _, e := range env {
		f.StringVar(e.p, e.flag, "", e.usage+" (default $"+e.env+")")
	}
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) {
		for _, e := range env {
			if !cmd.Flags().Changed(e.flag) {
				*e.p = os.Getenv(e.env)
			}
		}
	}
	f.DurationVar(&c.timeout, "timeout", 15*time.Second, "give up reaching the manager, or on one call, after this long")
	f.BoolVar(&c.json, "json", false, "print JSON (one document, or one line per event for tail) for scripts")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		cmd.PrintErrln("Error:", err)
		cmd.PrintErrln(cmd.UsageString())
		return usageError{err: err, printed: true}
	})
	f.StringVar(&c.key, "key", "", "identity key file of this command in the workspace (a grant names its peer ID: ceylon id --key FILE)")
	f.StringSliceVar(&c.grants, "grant", nil, "grant file(s) to present to a strict manager (ceylon grant issue)")
	root.AddCommand(statusCmd(c), workersCmd(c), tasksCmd(c), taskCmd(c), pauseCmd(c, true), pauseCmd(c, false), tailCmd(c),
		grantCmd(c), idCmd())
	return root
}

// group makes cmd a command that only holds subcommands: alone, or with
// an unknown subcommand, it is a usage error.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(cmd *cobra.Command, a []string) error {
		if len(a) > 0 {
			return usageError{err: fmt.Errorf("unknown command %q for %q (see %s --help)", a[0], cmd.CommandPath(), cmd.CommandPath())}
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cmd.PrintErrln(cmd.UsageString())
		return usageError{err: fmt.Errorf("%s needs a subcommand", cmd.CommandPath()), printed: false}
	}
	return cmd
}

// args checks a command's positional arguments.
func args(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			return usageError{err: fmt.Errorf("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(a))}
		}
		return nil
	}
}

// run wraps a command's body: it connects, bounds the call by --timeout,
// and closes the connection.
func (c *conn) run(body func(ctx context.Context, op task.Operator, out io.Writer, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, a []string) error {
		op, closeOp, err := c.operator(cmd.Context())
		if err != nil {
			return err
		}
		defer closeOp()
		return body(cmd.Context(), op, cmd.OutOrStdout(), a)
	}
}

// call bounds one call by --timeout.
func (c *conn) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// printJSON writes v indented.
func printJSON(out io.Writer, v any) error {
	e := json.NewEncoder(out)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
