package task

import (
	"context"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ceylon-go/ceylon/agent"
)

// Counters over time: once a second (SampleInterval) the manager takes a
// Sample of its counters and of the latencies of the results that came in
// since the last one, and keeps the last SeriesLength samples (15
// minutes), for [Manager.Series], the dashboard's charts and `ceylon
// status`.

// Series shape.
const (
	SampleInterval = time.Second
	SeriesLength   = 900
)

// maxLatencySamples bounds the latencies kept per interval (a uniform
// sample of them past that: reservoir sampling).
const maxLatencySamples = 4096

// Sample is the manager's counters at one time, and the latencies of the
// interval that ended then.
type Sample struct {
	Time time.Time `json:"time"`
	// Cumulative counters (as in Stats).
	Submitted int `json:"submitted"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	Cancelled int `json:"cancelled"`
	Retried   int `json:"retried"`
	// Gauges.
	Pending  int `json:"pending"`
	InFlight int `json:"in_flight"`
	Workers  int `json:"workers"`
	// The interval's figures: tasks finished per second (succeeded,
	// failed or cancelled), failed per second, and percentiles of the
	// workers' execution times and of the submission-to-finish latency of
	// the results that came in.
	Throughput   float64 `json:"throughput"`
	FailureRate  float64 `json:"failure_rate"`
	ExecP50MS    float64 `json:"exec_p50_ms"`
	ExecP95MS    float64 `json:"exec_p95_ms"`
	ExecP99MS    float64 `json:"exec_p99_ms"`
	LatencyP50MS float64 `json:"latency_p50_ms"`
	LatencyP95MS float64 `json:"latency_p95_ms"`
	LatencyP99MS float64 `json:"latency_p99_ms"`
}

// seriesRing holds the samples and the interval being measured. Owned by
// the actor.
type seriesRing struct {
	buf        []Sample
	next, n    int
	last       time.Time // when the last sample was taken
	exec, lat  reservoir
	prevFinal  int
	prevFailed int
	rebase     bool // the totals were reset or rebuilt: the next sample starts afresh
}

type reservoir struct {
	v    []time.Duration
	seen int
}

func (r *reservoir) add(d time.Duration) {
	r.seen++
	if len(r.v) < maxLatencySamples {
		r.v = append(r.v, d)
		return
	}
	if i := rand.IntN(r.seen); i < maxLatencySamples {
		r.v[i] = d
	}
}

// percentiles returns the p-quantiles (0 < p <= 1) of the interval in
// milliseconds and starts the next interval.
func (r *reservoir) percentiles(ps ...float64) []float64 {
	out := make([]float64, len(ps))
	if len(r.v) > 0 {
		slices.Sort(r.v)
		for i, p := range ps {
			out[i] = ms(r.v[min(len(r.v)-1, int(p*float64(len(r.v))))])
		}
	}
	r.v, r.seen = r.v[:0], 0
	return out
}

// sample takes a sample if one is due. Only called in the actor.
func (m *Manager) sample(now time.Time) {
	s := &m.series
	if s.buf == nil {
		s.buf, s.last = make([]Sample, SeriesLength), now
		s.prevFinal = int(m.totals.succeeded.Load() + m.totals.failed.Load() + m.totals.cancelled.Load())
		s.prevFailed = int(m.totals.failed.Load())
		return
	}
	if now.Sub(s.last) < SampleInterval {
		return
	}
	t := &m.totals
	smp := Sample{
		Time: now, Submitted: int(t.submitted.Load()), Succeeded: int(t.succeeded.Load()), Failed: int(t.failed.Load()),
		Cancelled: int(t.cancelled.Load()), Retried: int(t.retried.Load()),
		Pending: m.ready.n, InFlight: len(m.inflight), Workers: m.aliveWorkers(),
	}
	secs := now.Sub(s.last).Seconds()
	final := smp.Succeeded + smp.Failed + smp.Cancelled
	if !s.rebase && final >= s.prevFinal && smp.Failed >= s.prevFailed {
		smp.Throughput = float64(final-s.prevFinal) / secs
		smp.FailureRate = float64(smp.Failed-s.prevFailed) / secs
	}
	s.rebase = false
	s.prevFinal, s.prevFailed = final, smp.Failed
	e := s.exec.percentiles(0.5, 0.95, 0.99)
	smp.ExecP50MS, smp.ExecP95MS, smp.ExecP99MS = e[0], e[1], e[2]
	l := s.lat.percentiles(0.5, 0.95, 0.99)
	smp.LatencyP50MS, smp.LatencyP95MS, smp.LatencyP99MS = l[0], l[1], l[2]
	s.buf[s.next] = smp
	s.next = (s.next + 1) % SeriesLength
	s.n = min(s.n+1, SeriesLength)
	s.last = now
}

// Series returns the samples taken at or after since (every sample kept
// when since is zero), oldest first.
func (m *Manager) Series(ctx context.Context, since time.Time) ([]Sample, error) {
	return agent.Call(ctx, m.agent, func() ([]Sample, error) {
		if !m.leading {
			return nil, m.notLeader()
		}
		return m.seriesSince(since), nil
	})
}

// seriesSince is Series in the actor.
func (m *Manager) seriesSince(since time.Time) []Sample {
	s := &m.series
	out := make([]Sample, 0, s.n)
	for i := s.n; i >= 1; i-- {
		if smp := s.buf[(s.next-i+SeriesLength)%SeriesLength]; !smp.Time.Before(since) {
			out = append(out, smp)
		}
	}
	return out
}
