package task

import (
	"slices"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// taskState is the manager's record of one task. Owned by the manager's
// actor.
type taskState struct {
	task            messages.Task
	inputs          map[string][]byte
	seq             uint64 // submission order
	priority        int
	status          Status
	attempt         int
	retries         int // failed attempts counted against MaxRetries
	lost            int // attempts lost with their worker
	policy          Policy
	worker          *workerState // current attempt's worker
	lastWorker      string       // worker of the last failed attempt
	submittedAt     time.Time
	notBefore       time.Time // ProcessAt: not assigned before
	retryAt         time.Time // retrying: due again then
	uniqueKey       string    // Unique: the key it holds
	progress        float64   // the running attempt's last report
	progressMessage string
	uniqueUntil     time.Time  // and until when
	trace           string     // the submit span's W3C traceparent ("" if untraced)
	span            trace.Span // the live attempt's span (nil if untraced)
	readyAt         time.Time  // when it last joined the ready queue
	assignedAt      time.Time
	ackDeadline     time.Time // zero once acked
	leaseEnd        time.Time // zero when the attempt has no timeout
	finishedAt      time.Time
	attempts        []AttemptInfo
	result          *messages.TaskResult
	settled         bool          // final, durable, and announced
	kept            bool          // counted among the finished tasks kept (Manager.keep)
	keptGen         uint64        // the number of its live entry in Manager.expiring
	journalDirty    bool          // changed since the last commit
	done            chan struct{} // closed when settled; created on first Wait
	deposed         bool          // done was closed because the manager lost the lead
	remote          []remoteWait  // remote producers waiting for it
	stopRetry       func() bool
	class           *classQueue // the ready queue holding it, if any
	queueIndex      int         // where in it (see classQueue)
	inFIFO          bool        // in the queue's FIFO rather than its heap
}

func (t *taskState) info() Info {
	ti := Info{
		Task: t.task, Status: t.status, Attempt: t.attempt,
		SubmittedAt: t.submittedAt, FinishedAt: t.finishedAt, NotBefore: t.notBefore,
		Progress: t.progress, ProgressMessage: t.progressMessage,
		Attempts: slices.Clone(t.attempts), Result: t.result,
	}
	if len(t.attempts) > 0 {
		ti.Worker = t.attempts[len(t.attempts)-1].Worker
	}
	return ti
}

// slotKey identifies one attempt occupying a worker slot.
type slotKey struct {
	task    string
	attempt int
}

// slot is one attempt a worker holds, as the manager sees it.
type slot struct {
	t       *taskState
	sent    time.Time // when the assignment went out (zero until then)
	adopted bool      // taken over from a previous leader, not yet confirmed by the worker
	epoch   uint64    // the epoch it was assigned in (0: any; without replication, or journaled before epochs were)
}

// workerState is the manager's record of one worker. Owned by the
// manager's actor.
type workerState struct {
	detail   agent.AgentDetail
	pid      peer.ID
	info     messages.WorkerInfo
	types    map[string]*messages.TypeInfo
	caps     map[string]bool
	slots    map[slotKey]*slot // attempts the worker is running
	lastSeen time.Time
	alive    bool // connected and heard from recently
	stats    WorkerStats
	inflight prometheus.Gauge // its worker_in_flight series
	shown    int              // the value inflight shows
	activity *activity        // its entry in the manager's workerLog
}

func (w *workerState) free() int { return w.info.MaxConcurrency - len(w.slots) }

func (w *workerState) runs(c *classQueue) bool {
	if _, ok := w.types[c.key.typ]; !ok {
		return false
	}
	for _, cap := range c.caps {
		if !w.caps[cap] {
			return false
		}
	}
	return true
}

// score ranks workers for a task (higher is better). Ceylon's task manager
// weighs success rate 0.7 and completed work 0.3; added together, volume can beat
// reliability (a 70% worker with 1,000 tasks would outrank a 100% one with
// 10), so here experience scales the success rate instead:
//
//	score = (successful+1)/(completed+2) · (0.7 + 0.3·completed/(completed+20))
//
// The success rate is smoothed so that a new worker counts as 50% (as in
// Ceylon), and experience saturates.
func (w *workerState) score() float64 {
	c, s := float64(w.stats.Results), float64(w.stats.Successful)
	return (s + 1) / (c + 2) * (0.7 + 0.3*c/(c+20))
}

// classKey groups tasks that the same workers can take: same type,
// capabilities and difficulty. Within a class, tasks are ordered by
// priority, then submission.
type classKey struct {
	typ        string
	caps       string // sorted, comma-joined
	difficulty int
}

func classKeyOf(t *messages.Task) (classKey, []string) {
	caps := slices.Clone(t.Capabilities)
	slices.Sort(caps)
	caps = slices.Compact(caps)
	return classKey{typ: t.Type, caps: strings.Join(caps, ","), difficulty: t.Difficulty}, caps
}
