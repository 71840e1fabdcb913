package task

import (
	"errors"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// SkillPolicy is how a manager matches task difficulty to worker skill.
type SkillPolicy int

const (
	// SkillPrefer gives a rated task to a worker whose skill is at least
	// its difficulty; when every such worker is busy the task waits for
	// one; only when no connected worker is skilled enough does the task
	// go to the most skilled worker that can take it (and may fail there).
	SkillPrefer SkillPolicy = iota
	// SkillStrict never gives a task to a worker less skilled than its
	// difficulty: the task waits until one joins.
	SkillStrict
)

// ManagerOption configures a [Manager].
type ManagerOption func(*managerConfig) error

type managerConfig struct {
	defaults         Policy
	skill            SkillPolicy
	ackTimeout       time.Duration
	heartbeatTimeout time.Duration
	tick             time.Duration
	processors       map[string]bool
	observers        []func(Event)
	hook             Hook
	restore          func(*Recovery) error
	forget           bool
	retention        time.Duration // 0: no time limit
	keepFinished     int           // 0: no count limit
	journal          *Journal
	maxLost          int
	maxPending       int
	maxRemoteWaits   int
	scaleEvery       time.Duration
	scaleFn          func(Load)
	periodic         []*periodic
	replica          *replicaConfig
	leadership       []func(leading bool, term uint64)
	auth             *authConfig // WithGrantsRequired (nil: the open policy)
	tracer           trace.Tracer
	traceRoots       bool // start a trace for a task submitted without one
}

func defaultManagerConfig() managerConfig {
	return managerConfig{
		defaults:         DefaultPolicy,
		ackTimeout:       3 * time.Second,
		heartbeatTimeout: 5 * time.Second,
		tick:             50 * time.Millisecond,
		maxLost:          10,
		maxPending:       defaultMaxPendingSubmits,
		maxRemoteWaits:   defaultMaxRemoteWaits,
		retention:        DefaultRetention,
		keepFinished:     DefaultKeepFinished,
	}
}

// How long, and how many, finished tasks a manager keeps by default
// ([WithRetention], [WithKeepFinished]): a day, as river's job cleaner,
// and at most 100,000 (about 100 MB of no-op tasks), so a manager that
// runs for ever, or that producers feed without pause, stays bounded.
const (
	DefaultRetention    = 24 * time.Hour
	DefaultKeepFinished = 100_000
)

// WithDefaultPolicy sets the policy for tasks and handlers that do not set
// their own (default [DefaultPolicy]).
func WithDefaultPolicy(p Policy) ManagerOption {
	return func(c *managerConfig) error {
		if p.Timeout < 0 || p.MaxRetries < 0 || p.RetryInterval < 0 || p.MaxRetryInterval < 0 {
			return errors.New("task: negative value in default policy")
		}
		c.defaults = p
		return nil
	}
}

// WithSkillPolicy sets how difficulty is matched to skill (default
// [SkillPrefer]).
func WithSkillPolicy(p SkillPolicy) ManagerOption {
	return func(c *managerConfig) error { c.skill = p; return nil }
}

// WithAckTimeout bounds how long a worker may take to acknowledge (or
// finish) an assignment before the manager takes it back (default 3 s).
func WithAckTimeout(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("task: ack timeout must be positive")
		}
		c.ackTimeout = d
		return nil
	}
}

// WithHeartbeatTimeout sets how long a worker may stay silent before the
// manager considers it lost and requeues its tasks (default 5 s; workers
// send a heartbeat every second by default).
func WithHeartbeatTimeout(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("task: heartbeat timeout must be positive")
		}
		c.heartbeatTimeout = d
		return nil
	}
}

// WithTick sets how often the manager checks leases, acks and heartbeats
// (default 50 ms): deadlines are met to within one tick.
func WithTick(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d <= 0 {
			return errors.New("task: tick must be positive")
		}
		c.tick = d
		return nil
	}
}

// WithProcessors declares the task types the application has. With it,
// Submit rejects a task of any other type with [ErrUnknownProcessor]
// (a type a connected worker runs is always accepted). Without it, a task
// of any type is accepted and waits for a worker that runs it.
func WithProcessors(types ...string) ManagerOption {
	return func(c *managerConfig) error {
		if c.processors == nil {
			c.processors = map[string]bool{}
		}
		for _, t := range types {
			c.processors[t] = true
		}
		return nil
	}
}

// WithObserver registers fn to hear every task event (see [Event]).
func WithObserver(fn func(Event)) ManagerOption {
	return func(c *managerConfig) error {
		if fn == nil {
			return errors.New("task: nil observer")
		}
		c.observers = append(c.observers, fn)
		return nil
	}
}

// Hook runs in the manager's actor on every task event, like an observer,
// and may act on it at once through tx (submit more tasks, cancel some,
// put records) without a trip through the mailbox: what a dependency
// scheduler built on the manager needs. Final events come once the result
// is durable, so what the hook puts then rides the next commit. A hook
// must be quick and must not call the manager's blocking methods.
type Hook func(tx *Tx, ev Event)

// WithHook sets the manager's hook (at most one).
func WithHook(h Hook) ManagerOption {
	return func(c *managerConfig) error {
		if h == nil {
			return errors.New("task: nil hook")
		}
		c.hook = h
		return nil
	}
}

// WithForgetFinished makes the manager drop a task's record as soon as it
// is final (after its observers and hook have seen it), so its memory is
// freed; Wait, Task and duplicate-ID checks then no longer know it. Use it
// when something else keeps the results, as the playground does. The
// journal keeps the final records (the layer above rebuilds its outcomes
// from them at a restart): neither the retention nor the count kept
// applies to them.
func WithForgetFinished() ManagerOption {
	return func(c *managerConfig) error { c.forget = true; return nil }
}

// WithRetention keeps finished tasks (and their results) for d, then
// forgets them — in memory and in the journal — so a long-running manager
// does not grow without end. Wait, Task and duplicate-ID checks no longer
// know an expired task. The default is [DefaultRetention]; 0 keeps them
// for as long as [WithKeepFinished] allows.
func WithRetention(d time.Duration) ManagerOption {
	return func(c *managerConfig) error {
		if d < 0 {
			return errors.New("task: negative retention")
		}
		c.retention = d
		return nil
	}
}

// WithKeepFinished keeps at most n finished tasks: past them the oldest
// finished are forgotten first, as retention forgets them (default
// [DefaultKeepFinished]; 0: no count limit, for as long as the retention
// allows).
func WithKeepFinished(n int) ManagerOption {
	return func(c *managerConfig) error {
		if n < 0 {
			return errors.New("task: negative count of finished tasks to keep")
		}
		c.keepFinished = n
		return nil
	}
}

// WithMaxLost bounds how many times a task may be requeued because its
// worker was lost (these do not count against its retries) before it fails
// with [ErrTooManyLost] (default 10).
func WithMaxLost(n int) ManagerOption {
	return func(c *managerConfig) error {
		if n < 1 {
			return errors.New("task: max lost must be at least 1")
		}
		c.maxLost = n
		return nil
	}
}

// WithTracerProvider sends the manager's spans (its submits, each
// attempt's queue wait and attempt) to tp, and makes it start a trace
// for every task submitted without one. Without it the manager continues
// the traces tasks bring, on otel's global provider. See tracing.go.
func WithTracerProvider(tp trace.TracerProvider) ManagerOption {
	return func(c *managerConfig) error {
		if tp == nil {
			return errors.New("task: nil tracer provider")
		}
		c.tracer, c.traceRoots = tracerOf(tp), true
		return nil
	}
}
