package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
	"github.com/spf13/cobra"
)

// grantCmd issues, shows and revokes grants (roles under a strict
// manager: task.WithGrantsRequired).
func grantCmd(c *conn) *cobra.Command {
	cmd := group(&cobra.Command{Use: "grant", Short: "Grants: issue (offline, with an issuer's key), show, revoke"})
	var key, subject, roles, types, id, out string
	var ttl time.Duration
	issue := &cobra.Command{
		Use:   "issue",
		Short: "Sign a grant for a peer with an issuer's key (the manager's, or an operator key it trusts)",
		Example: `  ceylon grant issue --key admin.key --peer 12D3KooW... --role worker --types resize,thumb --ttl 720h > w1.grant
  ceylon grant issue --key ops.key --peer 12D3KooW... --role operator --ttl 12h --out oncall.grant`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" || subject == "" || roles == "" {
				return usageError{err: fmt.Errorf("grant issue needs --key, --peer and --role")}
			}
			k, err := peer.LoadOrCreateIdentity(key)
			if err != nil {
				return err
			}
			sub, err := peer.ParseID(subject)
			if err != nil {
				return usageError{err: fmt.Errorf("--peer %q: %w", subject, err)}
			}
			g := task.Grant{ID: id, Subject: sub, Expires: time.Now().Add(ttl)}
			if g.ID == "" {
				g.ID = fmt.Sprintf("%s-%d", subject[max(0, len(subject)-8):], time.Now().UnixNano())
			}
			for _, r := range strings.Split(roles, ",") {
				role, err := task.ParseRole(strings.TrimSpace(r))
				if err != nil {
					return usageError{err: err}
				}
				g.Roles = append(g.Roles, role)
			}
			if types != "" {
				g.Types = strings.Split(types, ",")
			}
			b, err := task.IssueGrant(k, g)
			if err != nil {
				return usageError{err: err}
			}
			text := task.EncodeGrant(b) + "\n"
			if out != "" {
				if err := os.WriteFile(out, []byte(text), 0o600); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "grant %s written to %s\n", g.ID, out)
				return nil
			}
			_, err = io.WriteString(cmd.OutOrStdout(), text)
			return err
		},
	}
	f := issue.Flags()
	f.StringVar(&key, "key", "", "the issuer's identity key file (as -key writes it)")
	f.StringVar(&subject, "peer", "", "the peer ID the grant is for (ceylon id --key THEIR.key prints it)")
	f.StringVar(&roles, "role", "", "worker, producer, viewer, operator (comma-separated for several)")
	f.StringVar(&types, "types", "", "task types, comma-separated, for worker and producer (default: every type)")
	f.DurationVar(&ttl, "ttl", 30*24*time.Hour, "valid for this long")
	f.StringVar(&id, "id", "", "the grant's ID, to revoke it by (default: made up)")
	f.StringVar(&out, "out", "", "write the grant to this file instead of stdout")

	show := &cobra.Command{
		Use: "show FILE", Short: "What a grant file says, and whether its signature holds (offline)", Args: args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			b, err := task.ReadGrant(a[0])
			if err != nil {
				return err
			}
			g, issuer, err := task.ParseGrant(b)
			if err != nil {
				return err
			}
			if c.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"id": g.ID, "issuer": issuer.String(), "subject": g.Subject.String(),
					"roles": g.Roles, "types": g.Types, "not_before": g.NotBefore, "expires": g.Expires, "valid_now": g.Valid(time.Now())})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "id\t%s\nissuer\t%s\nsubject\t%s\n", g.ID, issuer, g.Subject)
			fmt.Fprintf(tw, "roles\t%v\ntypes\t%s\n", g.Roles, dash(strings.Join(g.Types, ", ")))
			from := "issue"
			if !g.NotBefore.IsZero() {
				from = g.NotBefore.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "valid\tfrom %s to %s (now: %v)\n", from, g.Expires.Local().Format(time.RFC3339), g.Valid(time.Now()))
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Take a grant back (the manager journals it; needs the operator role)", Args: args(1),
		RunE: c.run(func(ctx context.Context, op task.Operator, out io.Writer, a []string) error {
			cctx, cancel := c.call(ctx)
			defer cancel()
			if err := op.Revoke(cctx, a[0]); err != nil {
				return err
			}
			fmt.Fprintf(out, "grant %s revoked\n", a[0])
			return nil
		}),
	}
	cmd.AddCommand(issue, show, revoke)
	return cmd
}

// idCmd prints the peer ID of a key file, creating the file if need be
// (what a grant's --peer names).
func idCmd() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use: "id", Short: "Print the peer ID of an identity key file (creating it if need be)", Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if key == "" {
				return usageError{err: fmt.Errorf("id needs --key FILE")}
			}
			k, err := peer.LoadOrCreateIdentity(key)
			if err != nil {
				return err
			}
			id, err := peer.IDFromKey(k)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "identity key file")
	return cmd
}
