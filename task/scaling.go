package task

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/prometheus/client_golang/prometheus"
)

// The scaling signal: per task type, how much work waits, how much runs,
// and how much of the workers' capacity for the type is in use. An
// autoscaler (a local pool, a Kubernetes HPA through the metrics, a cloud
// API) reads it and starts or retires workers; see examples/autoscale.

// TypeLoad is one task type's load at an instant.
type TypeLoad struct {
	Type string `json:"type"`
	// Backlog is the tasks of the type ready to run and waiting for a
	// worker (not those delayed, retrying later, or paused).
	Backlog int `json:"backlog"`
	// InFlight is the attempts of the type assigned or running.
	InFlight int `json:"in_flight"`
	// Workers is the connected workers that run the type, and Capacity
	// the attempts they run at once between them (a worker that runs
	// several types counts for each).
	Workers  int `json:"workers"`
	Capacity int `json:"capacity"`
	// Utilization is InFlight / Capacity (0 without capacity).
	Utilization float64 `json:"utilization"`
}

// Load is the manager's load by task type, sorted by type.
type Load struct {
	At    time.Time  `json:"at"`
	Types []TypeLoad `json:"types"`
}

// Type returns the load of typ (zero if nothing of it is known).
func (l Load) Type(typ string) TypeLoad {
	for _, t := range l.Types {
		if t.Type == typ {
			return t
		}
	}
	return TypeLoad{Type: typ}
}

// WithScalingSignal calls fn with the manager's [Load] every interval,
// from a goroutine of its own (fn may block; the next call waits for it,
// and Stop waits for a call in progress),
// while the manager runs. The same figures are exported as metrics
// (ceylon_type_backlog, ceylon_type_inflight, ceylon_type_capacity,
// ceylon_type_utilization, by type) whether or not this is set.
func WithScalingSignal(interval time.Duration, fn func(Load)) ManagerOption {
	return func(c *managerConfig) error {
		if interval <= 0 || fn == nil {
			return errors.New("task: scaling signal needs a positive interval and a function")
		}
		c.scaleEvery, c.scaleFn = interval, fn
		return nil
	}
}

// Load returns the manager's load now.
func (m *Manager) Load(ctx context.Context) (Load, error) {
	return agent.Call(ctx, m.agent, func() (Load, error) { return m.load(), nil })
}

// load computes the load; it runs in the actor.
func (m *Manager) load() Load {
	byType := map[string]*TypeLoad{}
	get := func(typ string) *TypeLoad {
		tl := byType[typ]
		if tl == nil {
			tl = &TypeLoad{Type: typ}
			byType[typ] = tl
		}
		return tl
	}
	for k, q := range m.ready.classes {
		get(k.typ).Backlog += q.Len()
	}
	for _, t := range m.inflight {
		get(t.task.Type).InFlight++
	}
	for _, w := range m.workerList {
		if !w.alive {
			continue
		}
		for typ := range w.types {
			tl := get(typ)
			tl.Workers++
			tl.Capacity += w.info.MaxConcurrency
		}
	}
	l := Load{At: time.Now(), Types: make([]TypeLoad, 0, len(byType))}
	for _, tl := range byType {
		if tl.Capacity > 0 {
			tl.Utilization = float64(tl.InFlight) / float64(tl.Capacity)
		}
		l.Types = append(l.Types, *tl)
	}
	slices.SortFunc(l.Types, func(a, b TypeLoad) int {
		switch {
		case a.Type < b.Type:
			return -1
		case a.Type > b.Type:
			return 1
		}
		return 0
	})
	return l
}

// loadGauges are the scaling signal's metrics.
type loadGauges struct {
	backlog, inflight, capacity, utilization *prometheus.GaugeVec
	shown                                    map[string]bool // types with series
}

func newLoadGauges(reg *prometheus.Registry) *loadGauges {
	g := func(name, help string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ceylon", Name: name, Help: help}, []string{"type"})
		reg.MustRegister(v)
		return v
	}
	return &loadGauges{
		backlog:     g("type_backlog", "Tasks of the type ready and waiting for a worker."),
		inflight:    g("type_inflight", "Attempts of the type assigned or running."),
		capacity:    g("type_capacity", "Attempts of the type the connected workers run at once."),
		utilization: g("type_utilization", "In-flight attempts of the type over the capacity for it."),
		shown:       map[string]bool{},
	}
}

// set shows l in the gauges; types no longer there read 0.
func (g *loadGauges) set(l Load) {
	seen := map[string]bool{}
	for _, t := range l.Types {
		seen[t.Type] = true
		g.shown[t.Type] = true
		g.backlog.WithLabelValues(t.Type).Set(float64(t.Backlog))
		g.inflight.WithLabelValues(t.Type).Set(float64(t.InFlight))
		g.capacity.WithLabelValues(t.Type).Set(float64(t.Capacity))
		g.utilization.WithLabelValues(t.Type).Set(t.Utilization)
	}
	for typ := range g.shown {
		if !seen[typ] {
			for _, v := range []*prometheus.GaugeVec{g.backlog, g.inflight, g.capacity, g.utilization} {
				v.WithLabelValues(typ).Set(0)
			}
		}
	}
}

// scaleLoop reads the load every interval (every second for the metrics
// alone), updates the gauges and calls the scaling signal's function,
// until the manager stops.
func (m *Manager) scaleLoop() {
	defer m.scaleWG.Done()
	every := m.cfg.scaleEvery
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.agent.Done():
			return
		}
		ctx, cancel := context.WithTimeout(m.agent.Context(), every)
		l, err := m.Load(ctx)
		cancel()
		if err != nil {
			continue // stopping, or the actor is busy past an interval
		}
		m.loadGauges.set(l)
		if m.cfg.scaleFn != nil {
			m.cfg.scaleFn(l)
		}
	}
}
