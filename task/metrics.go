package task

import (
	"sync/atomic"
	"time"

	"github.com/ceylon-go/ceylon/agent"

	"github.com/ceylon-go/ceylon/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// managerMetrics are a Manager's Prometheus metrics, in a registry of
// its own (so several managers can live in one process).
type managerMetrics struct {
	reg *prometheus.Registry

	observerPanics                   prometheus.Counter
	assignLatency, completionLatency prometheus.Histogram
	workerInflight                   *prometheus.GaugeVec
	finished                         *prometheus.CounterVec   // by status and type
	execution                        *prometheus.HistogramVec // by type
	workerResults                    *prometheus.CounterVec   // by worker and status
	authRefused                      *prometheus.CounterVec   // by role
	grantsRefused                    prometheus.Counter

	// Owned by the actor: the series of each task type and worker seen,
	// at most maxLabelValues of each (the rest share "other": names come
	// from peers, and a label value per name would grow without bound).
	types    map[string]*typeMetrics
	byWorker map[string]*workerMetrics

	// Gauges the actor keeps current and scrapes read.
	queueDepth, inflight, workers atomic.Int64
}

func newManagerMetrics(m *Manager) *managerMetrics {
	mm := &managerMetrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ceylon", Name: name, Help: help})
		mm.reg.MustRegister(c)
		return c
	}
	// The task counters read the manager's own totals (which include the
	// tasks recovered from a journal).
	total := func(name, help string, v *atomic.Int64) {
		mm.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ceylon", Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	total("tasks_submitted_total", "Tasks accepted by the manager.", &m.totals.submitted)
	total("tasks_retried_total", "Attempts retried after a failure or a timeout.", &m.totals.retried)
	total("tasks_requeued_total", "Attempts requeued after their worker was lost.", &m.totals.requeued)
	total("results_late_total", "Results for attempts no longer current, ignored.", &m.totals.late)
	mm.observerPanics = counter("task_observer_panics_total", "Observers and hooks that panicked (recovered).")
	buckets := prometheus.ExponentialBuckets(50e-6, 2, 20) // 50 µs .. 26 s
	mm.assignLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ceylon", Name: "task_assignment_seconds",
		Help: "Time from a task being ready to its assignment.", Buckets: buckets})
	mm.completionLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ceylon", Name: "task_completion_seconds",
		Help: "Time from submission to success.", Buckets: buckets})
	mm.workerInflight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ceylon", Name: "worker_in_flight",
		Help: "Attempts each worker is running."}, []string{"worker"})
	mm.finished = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ceylon", Name: "tasks_finished_total",
		Help: "Tasks that became final, by status (completed: succeeded; failed; cancelled) and type, since the manager started."},
		[]string{"status", "type"})
	mm.execution = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "ceylon", Name: "task_execution_seconds",
		Help: "Execution time of an attempt, as its worker reported it, by type.", Buckets: buckets}, []string{"type"})
	mm.workerResults = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ceylon", Name: "worker_results_total",
		Help: "Results each worker returned, by status (completed or failed; a lease that ran out counts as failed)."},
		[]string{"worker", "status"})
	mm.authRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ceylon", Name: "auth_refused_total",
		Help: "Registrations, submissions and requests refused for want of a grant, by role (WithGrantsRequired)."}, []string{"role"})
	mm.grantsRefused = counter("grants_refused_total", "Grants presented and refused (bad, expired, revoked, untrusted issuer, another subject).")
	mm.reg.MustRegister(mm.assignLatency, mm.completionLatency, mm.workerInflight, mm.finished, mm.execution, mm.workerResults, mm.authRefused)
	mm.types, mm.byWorker = map[string]*typeMetrics{}, map[string]*workerMetrics{}

	gauge := func(name, help string, v *atomic.Int64) {
		mm.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ceylon", Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	gauge("queue_depth", "Tasks waiting for a worker.", &mm.queueDepth)
	gauge("tasks_in_flight", "Attempts assigned and not finished.", &mm.inflight)
	gauge("workers", "Workers registered and alive.", &mm.workers)

	// Message counters, read from the agent's and its node's own counters.
	a := m.agent
	cf := func(name, help string, labels prometheus.Labels, read func() uint64) {
		mm.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ceylon", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(read()) }))
	}
	cf("messages_received_total", "Messages handed to handlers.", nil, func() uint64 { return a.Stats().Received })
	cf("messages_sent_total", "Direct messages sent.", nil, func() uint64 { return a.Stats().Sent })
	cf("broadcasts_sent_total", "Broadcasts published.", nil, func() uint64 { return a.Stats().Broadcasts })
	for reason, read := range map[string]func(agent.Stats) uint64{
		"unknown_kind": func(s agent.Stats) uint64 { return s.DroppedUnknown },
		"undecodable":  func(s agent.Stats) uint64 { return s.DroppedBad },
		"spoofed":      func(s agent.Stats) uint64 { return s.DroppedSpoofed },
		"late_reply":   func(s agent.Stats) uint64 { return s.DroppedLate },
	} {
		cf("messages_dropped_total", "Messages dropped, by reason.", prometheus.Labels{"reason": reason},
			func() uint64 { return read(a.Stats()) })
	}
	node := func(read func(peer.Stats) uint64) func() uint64 {
		return func() uint64 {
			if n := a.Node(); n != nil {
				return read(n.Stats())
			}
			return 0
		}
	}
	cf("frames_dropped_total", "Direct frames dropped, by reason.", prometheus.Labels{"reason": "oversize"}, node(func(s peer.Stats) uint64 { return s.DroppedOversize }))
	cf("frames_dropped_total", "Direct frames dropped, by reason.", prometheus.Labels{"reason": "unknown_type"}, node(func(s peer.Stats) uint64 { return s.DroppedUnknown }))
	cf("handshakes_refused_total", "Streams refused at the hello.", nil, node(func(s peer.Stats) uint64 { return s.HandshakeFailures }))
	cf("gossip_dropped_total", "GossipSub queue drops.", nil, node(func(s peer.Stats) uint64 { return s.GossipDropped }))
	cf("peer_bans_total", "Peers banned for breaking the protocol.", nil, node(func(s peer.Stats) uint64 { return s.Bans }))
	cf("broadcasts_received_total", "Broadcasts handed to the agent.", nil, node(func(s peer.Stats) uint64 { return s.BroadcastIn }))
	cf("gossip_rejected_total", "Broadcasts that failed validation (not delivered, not forwarded).", nil, node(func(s peer.Stats) uint64 { return s.GossipRejected }))
	cf("stream_resets_total", "Inbound streams reset for protocol violations.", nil, node(func(s peer.Stats) uint64 { return s.StreamResets }))
	cf("peer_penalties_total", "Offences counted toward bans.", nil, node(func(s peer.Stats) uint64 { return s.Penalties }))
	cf("roster_refused_total", "Roster records refused (out of bounds, roster full).", nil, node(func(s peer.Stats) uint64 { return s.RosterRefused }))
	cf("workspace_joins_total", "Agents that joined the workspace, as this one saw it.", nil, node(func(s peer.Stats) uint64 { return s.Joins }))
	cf("workspace_leaves_total", "Agents that left the workspace, as this one saw it.", nil, node(func(s peer.Stats) uint64 { return s.Leaves }))
	cf("connect_failures_total", "Failed attempts to connect to or rejoin a peer.", nil, node(func(s peer.Stats) uint64 { return s.ConnectFailures }))
	cf("roster_deltas_sent_total", "Roster deltas published.", nil, node(func(s peer.Stats) uint64 { return s.DeltasOut }))
	cf("roster_snapshots_served_total", "Roster snapshots sent to joining agents.", nil, node(func(s peer.Stats) uint64 { return s.SnapshotsServed }))
	cf("relayed_connections_total", "Connections opened over a circuit relay, either way.", nil, node(func(s peer.Stats) uint64 { return s.RelayedConns }))
	cf("relay_circuits_total", "Circuits this agent's relay opened for members.", nil, node(func(s peer.Stats) uint64 { return s.RelayCircuits }))
	cf("relay_refused_total", "Relay reservations or circuits refused to non-members.", nil, node(func(s peer.Stats) uint64 { return s.RelayRefused }))
	cf("relay_reservations_total", "Relay slots this agent reserved or renewed.", nil, node(func(s peer.Stats) uint64 { return s.RelayReservations }))
	cf("holepunch_attempts_total", "DCUtR hole punches started.", nil, node(func(s peer.Stats) uint64 { return s.PunchAttempts }))
	cf("holepunch_successes_total", "Hole punches that made a direct connection.", nil, node(func(s peer.Stats) uint64 { return s.PunchSuccesses }))
	cf("rendezvous_advertisements_total", "Advertisements under the workspace's rendezvous key.", nil, node(func(s peer.Stats) uint64 { return s.Advertised }))
	nodeGauge := func(name, help string, read func(peer.Stats) int) {
		mm.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ceylon", Name: name, Help: help},
			func() float64 {
				if n := a.Node(); n != nil {
					return float64(read(n.Stats()))
				}
				return 0
			}))
	}
	nodeGauge("workspace_members", "Agents in the workspace, as this one knows them.", func(s peer.Stats) int { return s.Members })
	nodeGauge("connections", "Open libp2p connections.", func(s peer.Stats) int { return s.Conns })
	nodeGauge("gossip_mesh_peers", "Peers in this agent's GossipSub mesh.", func(s peer.Stats) int { return s.MeshPeers })
	nodeGauge("dht_peers", "Peers in the DHT's routing table.", func(s peer.Stats) int { return s.DHTPeers })
	mm.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return mm
}

// Metrics is the manager's Prometheus registry (serve it with promhttp, or
// the monitor package).
func (m *Manager) Metrics() *prometheus.Registry { return m.metrics.reg }

// updateQueueGauges refreshes the gauges that cost nothing to compute
// (a scheduling pass does, after every batch of changes).
func (m *Manager) updateQueueGauges() {
	m.metrics.queueDepth.Store(int64(m.ready.n))
	m.metrics.inflight.Store(int64(len(m.inflight)))
}

// updateGauges refreshes every gauge, the workers' too: a walk over the
// workers, which the sweep (every tick), a worker's registration and its
// departure make, not each scheduling pass (with a thousand workers busy, one walk
// per pass took 6 % of the manager's CPU).
func (m *Manager) updateGauges() {
	mm := m.metrics
	m.updateQueueGauges()
	mm.workers.Store(int64(m.aliveWorkers()))
	for _, w := range m.workerList {
		if w.inflight == nil {
			w.inflight, w.shown = mm.workerInflight.WithLabelValues(w.info.Name), -1
		}
		if n := len(w.slots); n != w.shown {
			w.inflight.Set(float64(n))
			w.shown = n
		}
	}
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// maxLabelValues bounds the task types and the workers that get series of
// their own.
const maxLabelValues = 256

// otherLabel is the label value the rest share.
const otherLabel = "other"

type typeMetrics struct {
	completed, failed, cancelled prometheus.Counter
	execution                    prometheus.Observer
}

type workerMetrics struct{ completed, failed prometheus.Counter }

// ofType returns typ's series. Only called in the actor.
func (mm *managerMetrics) ofType(typ string) *typeMetrics {
	if tm := mm.types[typ]; tm != nil {
		return tm
	}
	label := typ
	if len(mm.types) >= maxLabelValues {
		label = otherLabel
	}
	tm := &typeMetrics{
		completed: mm.finished.WithLabelValues(StatusCompleted.String(), label),
		failed:    mm.finished.WithLabelValues(StatusFailed.String(), label),
		cancelled: mm.finished.WithLabelValues(StatusCancelled.String(), label),
		execution: mm.execution.WithLabelValues(label),
	}
	if label != otherLabel {
		mm.types[typ] = tm
	}
	return tm
}

// ofWorker returns name's series. Only called in the actor.
func (mm *managerMetrics) ofWorker(name string) *workerMetrics {
	if wm := mm.byWorker[name]; wm != nil {
		return wm
	}
	label := name
	if len(mm.byWorker) >= maxLabelValues {
		label = otherLabel
	}
	wm := &workerMetrics{
		completed: mm.workerResults.WithLabelValues(label, StatusCompleted.String()),
		failed:    mm.workerResults.WithLabelValues(label, StatusFailed.String()),
	}
	if label != otherLabel {
		mm.byWorker[name] = wm
	}
	return wm
}
