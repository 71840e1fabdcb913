// Package backoff computes capped, jittered exponential delays, shared by
// reconnection in peer and task retries in agent.
package backoff

import (
	"math"
	"math/rand/v2"
	"time"
)

// Policy describes a delay sequence: Base, Base*Factor, Base*Factor², …
// capped at Max, each multiplied by a random factor in [1-Jitter, 1+Jitter].
type Policy struct {
	Base   time.Duration
	Max    time.Duration
	Factor float64 // <= 1 means a fixed delay of Base
	Jitter float64 // 0..1
}

// Delay returns the wait before retry number n (n = 1 for the first retry).
func (p Policy) Delay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := float64(p.Base)
	if p.Factor > 1 {
		d *= math.Pow(p.Factor, float64(n-1))
	}
	if p.Max > 0 && d > float64(p.Max) {
		d = float64(p.Max)
	}
	if p.Jitter > 0 {
		j := math.Min(p.Jitter, 1)
		d *= 1 - j + 2*j*rand.Float64()
	}
	if d > math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}
