package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/task"
)

// conn is how the command reaches the manager.
type conn struct {
	url, token                 string
	join, bootstrap, workspace string
	secret                     string
	key                        string   // identity key file in the workspace
	grants                     []string // grant files
	timeout                    time.Duration
	json                       bool
}

// errNowhere says the command was not told where the manager is.
var errNowhere = errors.New("where is the manager? give --url (its monitor) or --join / --bootstrap (the workspace)")

// errUnreachable wraps a failure to reach the manager in time.
var errUnreachable = errors.New("manager not reached")

// operator connects to the manager; close releases what it holds.
func (c *conn) operator(ctx context.Context) (op task.Operator, close func(), err error) {
	switch {
	case c.url != "" && (c.join != "" || c.bootstrap != ""):
		return nil, nil, usageError{err: errors.New("give either --url or --join/--bootstrap, not both")}
	case c.url != "":
		mc, err := monitor.NewClient(c.url, monitor.WithClientToken(c.token))
		if err != nil {
			return nil, nil, usageError{err: err}
		}
		return mc, func() {}, nil
	case c.join == "" && c.bootstrap == "":
		return nil, nil, usageError{err: errNowhere}
	}
	if c.workspace == "" {
		return nil, nil, usageError{err: errors.New("joining the workspace needs its ID (--workspace or $CEYLON_WORKSPACE)")}
	}
	opts := []agent.Option{
		agent.WithWorkspace(c.workspace), agent.WithRole("operator"),
		agent.WithListenAddrs("/ip4/0.0.0.0/tcp/0"),
		agent.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))),
	}
	if c.join != "" {
		opts = append(opts, agent.WithJoin(strings.Split(c.join, ",")...))
	}
	if c.bootstrap != "" {
		opts = append(opts, agent.WithBootstrap(strings.Split(c.bootstrap, ",")...))
	}
	if c.secret != "" {
		opts = append(opts, agent.WithSecret(c.secret))
	}
	if c.key != "" {
		opts = append(opts, agent.WithIdentityFile(c.key))
	}
	var copts []task.ClientOption
	if len(c.grants) > 0 {
		var grants [][]byte
		for _, path := range c.grants {
			g, err := task.ReadGrant(path)
			if err != nil {
				return nil, nil, usageError{err: err}
			}
			grants = append(grants, g)
		}
		copts = append(copts, task.WithClientGrants(grants...))
	}
	a, err := agent.New("ceylon", opts...)
	if err != nil {
		return nil, nil, usageError{err: err}
	}
	cl, err := task.NewClient(a, copts...)
	if err != nil {
		return nil, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := a.Start(sctx); err != nil {
		return nil, nil, fmt.Errorf("%w: joining the workspace: %w", errUnreachable, err)
	}
	if _, err := cl.Manager(sctx); err != nil {
		_ = a.Stop()
		return nil, nil, fmt.Errorf("%w: no task manager met in %v: %w", errUnreachable, c.timeout, err)
	}
	return cl, func() { _ = a.Stop() }, nil
}
