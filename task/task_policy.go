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

// HandlerOptions are a worker handler's defaults for its task type. Zero
// fields inherit
// the manager's defaults; set MaxRetries to [messages.NoRetry] to disable
// retries.
type HandlerOptions struct {
	Timeout       time.Duration
	MaxRetries    int
	RetryInterval time.Duration
	Backoff       messages.Backoff
	// Priority is the default priority of tasks of this type.
	Priority int
}

// resolvePolicy layers a task's values over its handler's over defaults.
func resolvePolicy(t *messages.Task, h *messages.TypeInfo, d Policy) Policy {
	p := d
	if h != nil {
		overlay(&p, h.Timeout, h.MaxRetries, h.RetryInterval, h.Backoff)
	}
	overlay(&p, t.Timeout, t.MaxRetries, t.RetryInterval, t.Backoff)
	return p
}

func overlay(p *Policy, timeout time.Duration, retries int, interval time.Duration, b messages.Backoff) {
	if timeout > 0 {
		p.Timeout = timeout
	}
	switch {
	case retries == messages.NoRetry:
		p.MaxRetries = 0
	case retries > 0:
		p.MaxRetries = retries
	}
	if interval > 0 {
		p.RetryInterval = interval
	}
	if b != "" {
		p.Backoff = b
	}
}

// retryDelay is the wait before retry number n (1 = first retry).
func (p Policy) retryDelay(n int) time.Duration {
	bp := backoff.Policy{Base: p.RetryInterval, Max: p.MaxRetryInterval}
	if p.Backoff == messages.BackoffExponential {
		bp.Factor = 2
	}
	return bp.Delay(n)
}
