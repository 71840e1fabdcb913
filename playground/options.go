package playground

import (
	"errors"
	"log/slog"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/task"
)

// Option configures a [Playground].
type Option func(*config) error

type config struct {
	name        string
	listen      []string
	workspace   string
	keyFile     string
	logger      *slog.Logger
	remoteCount int
	remoteNames []string
	waitTimeout time.Duration
	managerOpts []task.ManagerOption
	agentOpts   []agent.Option
	onListening func(addrs []string)
	secret      string
	journalPath string
	httpAddr    string
	httpOpts    []monitor.Option
}

// everyAgent are the options of every agent the playground makes (its
// manager's and its local workers'): the workspace, the logger, the
// secret, and the caller's agent options last, so they win.
func (c *config) everyAgent() []agent.Option {
	opts := []agent.Option{agent.WithWorkspace(c.workspace), agent.WithLogger(c.logger)}
	if c.secret != "" {
		opts = append(opts, agent.WithSecret(c.secret))
	}
	return append(opts, c.agentOpts...)
}

func defaultConfig() config {
	return config{
		name:        "playground",
		workspace:   "playground",
		logger:      slog.New(slog.DiscardHandler),
		waitTimeout: 30 * time.Second,
	}
}

// WithName names the playground's task manager agent.
func WithName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("playground: empty name")
		}
		c.name = name
		return nil
	}
}

// WithListenAddrs sets where the playground listens for remote workers.
// The default follows one rule: listen where the workers can come from. A
// playground that waits for remote workers ([WithRemoteWorkers],
// [WithRemoteWorkerNames]) listens, as any agent does by default, on every
// interface (a free TCP port; QUIC too without a secret), its non-loopback
// addresses first in [Playground.Addrs]; one that runs only local workers
// listens on loopback only. Use e.g. "/ip4/0.0.0.0/tcp/7000" for a fixed
// port.
func WithListenAddrs(addrs ...string) Option {
	return func(c *config) error {
		if len(addrs) == 0 {
			return errors.New("playground: no listen addresses")
		}
		c.listen = addrs
		return nil
	}
}

// WithWorkspace sets the workspace ID remote workers join (default
// "playground").
func WithWorkspace(id string) Option {
	return func(c *config) error {
		if id == "" {
			return errors.New("playground: empty workspace")
		}
		c.workspace = id
		return nil
	}
}

// WithIdentityFile keeps the playground's key in path, so its address stays
// the same across restarts.
func WithIdentityFile(path string) Option {
	return func(c *config) error { c.keyFile = path; return nil }
}

// WithLogger sets the logger of the playground and its agents.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("playground: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithRemoteWorkers makes Start wait until n workers besides the local ones
// have joined.
func WithRemoteWorkers(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return errors.New("playground: negative remote worker count")
		}
		c.remoteCount = n
		return nil
	}
}

// WithRemoteWorkerNames makes Start wait until workers with these names
// have joined.
func WithRemoteWorkerNames(names ...string) Option {
	return func(c *config) error { c.remoteNames = append(c.remoteNames, names...); return nil }
}

// WithWaitTimeout bounds Start's wait for workers (default 30 s); the error
// names the workers that did not come.
func WithWaitTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("playground: wait timeout must be positive")
		}
		c.waitTimeout = d
		return nil
	}
}

// WithManagerOptions passes options to the playground's task manager
// (default policy, skill policy, timeouts, observers, …).
func WithManagerOptions(opts ...task.ManagerOption) Option {
	return func(c *config) error { c.managerOpts = append(c.managerOpts, opts...); return nil }
}

// WithAgentOptions passes options to every agent the playground creates
// (the manager and the local workers), e.g. peer limits.
func WithAgentOptions(opts ...agent.Option) Option {
	return func(c *config) error { c.agentOpts = append(c.agentOpts, opts...); return nil }
}

// WithListening calls fn with the playground's join addresses as soon as
// it listens, before Start waits for remote workers: print them there so
// the remote workers can be started.
func WithListening(fn func(addrs []string)) Option {
	return func(c *config) error { c.onListening = fn; return nil }
}

// WithSecret makes the playground's workspace private: remote workers need
// the same secret (agent.WithSecret) to join. Local workers get it.
// An empty secret leaves the workspace open (so an optional secret needs
// no if).
func WithSecret(secret string) Option {
	return func(c *config) error {
		c.secret = secret // "" leaves the workspace open
		return nil
	}
}

// WithJournal keeps the playground's tasks, their dependencies and their
// results in a bbolt file at path: a playground started again on the same
// file (and identity file, so remote workers find it) resumes — finished
// tasks keep their results, the rest of the graph runs. A file that is not
// a journal of this workspace fails New with a clear error.
func WithJournal(path string) Option {
	return func(c *config) error {
		if path == "" {
			return errors.New("playground: empty journal path")
		}
		c.journalPath = path
		return nil
	}
}

// WithHTTP serves the playground's monitor on addr while it runs: the
// operations dashboard at /, the admin API under /api/v1 and /metrics
// (Prometheus); see the monitor package and [Playground.MonitorURL]. An
// address beyond loopback needs monitor.WithToken among opts.
func WithHTTP(addr string, opts ...monitor.Option) Option {
	return func(c *config) error { c.httpAddr, c.httpOpts = addr, opts; return nil }
}
