package task

import (
	"time"

	"github.com/ceylon-go/ceylon/internal/backoff"
	"github.com/ceylon-go/ceylon/messages"
)

// Policy is how one task is run: the lease of each attempt and how failed
// attempts are retried. Task fields override the handler's options, which
// override the manager's defaults.
type Policy struct {
	// Timeout bounds each attempt; 0 means no limit.
	Timeout time.Duration
	// MaxRetries is the number of retries after the first attempt.
	MaxRetries int
	// RetryInterval is the wait before the first retry.
	RetryInterval time.Duration
	// Backoff is how the interval grows between retries.
	Backoff messages.Backoff
	// MaxRetryInterval caps the wait between retries.
	MaxRetryInterval time.Duration
}

// DefaultPolicy is the manager's default: 60 s per attempt and up to 2
// retries (3 attempts), 200 ms apart and doubling.
var DefaultPolicy = Policy{
	Timeout:          60 * time.Second,
	MaxRetries:       2,
	RetryInterval:    200 * time.Millisecond,
	Backoff:          messages.BackoffExponential,
	MaxRetryInterval: 30 * time.Second,
}

// HandlerOptions are a worker handler's defaults for its task type: a
// [Policy] whose zero fields inherit the manager's defaults (set
// MaxRetries to [messages.NoRetry] to disable retries), and a priority.
type HandlerOptions struct {
	Policy
	// Priority is the default priority of tasks of this type.
	Priority int
}

// typeInfo is the options' wire form, as the worker announces them.
func (o HandlerOptions) typeInfo(typ string) messages.TypeInfo {
	return messages.TypeInfo{Name: typ, Timeout: o.Timeout, MaxRetries: o.MaxRetries, RetryInterval: o.RetryInterval,
		Backoff: o.Backoff, MaxRetryInterval: o.MaxRetryInterval, Priority: o.Priority}
}

// typePolicy is the policy a worker announced for a type.
func typePolicy(h *messages.TypeInfo) Policy {
	return Policy{Timeout: h.Timeout, MaxRetries: h.MaxRetries, RetryInterval: h.RetryInterval, Backoff: h.Backoff, MaxRetryInterval: h.MaxRetryInterval}
}

// taskPolicy is the policy a task carries.
func taskPolicy(t *messages.Task) Policy {
	return Policy{Timeout: t.Timeout, MaxRetries: t.MaxRetries, RetryInterval: t.RetryInterval, Backoff: t.Backoff}
}

// resolvePolicy layers a task's values over its handler's over defaults.
func resolvePolicy(t *messages.Task, h *messages.TypeInfo, d Policy) Policy {
	p := d
	if h != nil {
		p = p.over(typePolicy(h))
	}
	return p.over(taskPolicy(t))
}

// over returns p with the values set in q in place of its own.
func (p Policy) over(q Policy) Policy {
	if q.Timeout > 0 {
		p.Timeout = q.Timeout
	}
	switch {
	case q.MaxRetries == messages.NoRetry:
		p.MaxRetries = 0
	case q.MaxRetries > 0:
		p.MaxRetries = q.MaxRetries
	}
	if q.RetryInterval > 0 {
		p.RetryInterval = q.RetryInterval
	}
	if q.Backoff != "" {
		p.Backoff = q.Backoff
	}
	if q.MaxRetryInterval > 0 {
		p.MaxRetryInterval = q.MaxRetryInterval
	}
	return p
}

// retryDelay is the wait before retry number n (1 = first retry).
func (p Policy) retryDelay(n int) time.Duration {
	bp := backoff.Policy{Base: p.RetryInterval, Max: p.MaxRetryInterval}
	if p.Backoff == messages.BackoffExponential {
		bp.Factor = 2
	}
	return bp.Delay(n)
}
