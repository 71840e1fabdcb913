package task

import (
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ceylon-go/ceylon/agent"
)

// The operator's view of a manager: tasks listed with filters and pages,
// a task's detail with its attempt history, the workers (those that left
// too), counters over time and a feed of events. *Manager serves it in
// its own process, *Client from any member of the workspace (admin
// requests over direct streams), and the monitor package over HTTP; the
// three satisfy [Operator], and the views are the same JSON everywhere.

// Operator is what an operator does to a task manager. [*Manager]
// implements it in process, [*Client] from another agent of the
// workspace, monitor.Client over HTTP.
type Operator interface {
	// Stats is the manager's snapshot (counters, workers, recent tasks).
	Stats(ctx context.Context) (Stats, error)
	// ListTasks lists tasks, newest first, a page at a time.
	ListTasks(ctx context.Context, f TaskFilter) (TaskPage, error)
	// TaskDetail is one task with its attempt history.
	TaskDetail(ctx context.Context, id string) (TaskDetail, error)
	// Cancel, Retry and Delete act on one task (see [Manager.Cancel],
	// [Manager.Retry], [Manager.Delete]).
	Cancel(ctx context.Context, id string) error
	Retry(ctx context.Context, id string) error
	Delete(ctx context.Context, id string) error
	// Workers lists every worker the manager has known, connected or not.
	Workers(ctx context.Context) ([]WorkerView, error)
	// Series returns the samples taken at or after since, oldest first.
	Series(ctx context.Context, since time.Time) ([]Sample, error)
	// Events returns the events after q.After, waiting up to q.Wait for
	// the first one.
	Events(ctx context.Context, q EventQuery) (EventPage, error)
	// Pause and Resume stop and restart the assignment of a task type.
	Pause(ctx context.Context, typ string) error
	Resume(ctx context.Context, typ string) error
	// Revoke takes a grant back (see [Manager.Revoke]).
	Revoke(ctx context.Context, grantID string) error
}

var _ Operator = (*Manager)(nil)

// Page sizes of ListTasks.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// ErrBadFilter reports a malformed TaskFilter or EventQuery (an unknown
// status, a cursor this manager did not give out, a negative limit).
var ErrBadFilter = errors.New("task: bad filter")

// TaskFilter selects the tasks ListTasks returns. Zero fields match
// every task.
type TaskFilter struct {
	// Status is a status name ("pending", "running", "failed", …; see
	// [Status.String]), or "final" for any final status.
	Status string `json:"status,omitempty"`
	// Type is the task type; Worker the worker of the task's last attempt.
	Type   string `json:"type,omitempty"`
	Worker string `json:"worker,omitempty"`
	// ID keeps the tasks whose ID contains it.
	ID string `json:"id,omitempty"`
	// Since and Until bound the submission time: Since <= t < Until.
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Cursor continues a listing: the Next of the page before.
	Cursor string `json:"cursor,omitempty"`
	// Limit is the page size (DefaultPageSize when 0, at most MaxPageSize).
	Limit int `json:"limit,omitempty"`
}

// TaskSummary is a task as a listing shows it.
type TaskSummary struct {
	ID          string    `json:"id"`
	Type        string    `json:"type"`
	Name        string    `json:"name,omitempty"`
	Status      string    `json:"status"`
	Priority    int       `json:"priority,omitempty"`
	Attempt     int       `json:"attempt"`
	Worker      string    `json:"worker,omitempty"`
	SubmittedAt time.Time `json:"submitted_at"`
	// StartedAt is when its last attempt was assigned (zero before any).
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// WaitMS is the time from submission to the last attempt's
	// assignment; RunMS the worker's execution time of the result;
	// TotalMS submission to finish. (A task that waited in the queue
	// shows a long TotalMS next to a short RunMS.)
	WaitMS          float64 `json:"wait_ms"`
	RunMS           float64 `json:"run_ms"`
	TotalMS         float64 `json:"total_ms"`
	Progress        float64 `json:"progress,omitempty"`
	ProgressMessage string  `json:"progress_message,omitempty"`
	Error           string  `json:"error,omitempty"`
}

// TaskPage is one page of a listing.
type TaskPage struct {
	Tasks []TaskSummary `json:"tasks"`
	// Total counts the tasks that match the filter, on every page.
	Total int `json:"total"`
	// Next is the cursor of the next page, "" on the last.
	Next string `json:"next,omitempty"`
}

// TaskDetail is everything the manager knows of a task.
type TaskDetail struct {
	TaskSummary
	Description   string        `json:"description,omitempty"`
	Difficulty    int           `json:"difficulty,omitempty"`
	Capabilities  []string      `json:"capabilities,omitempty"`
	Dependencies  []string      `json:"dependencies,omitempty"`
	Parent        string        `json:"parent,omitempty"`
	InputBytes    int           `json:"input_bytes"`
	InputsBytes   int           `json:"inputs_bytes,omitempty"` // dependency outputs handed in
	OutputBytes   int           `json:"output_bytes,omitempty"`
	MaxRetries    int           `json:"max_retries"`
	Retries       int           `json:"retries"` // failed attempts counted against MaxRetries
	Lost          int           `json:"lost"`    // attempts lost with their worker
	TimeoutMS     float64       `json:"timeout_ms,omitempty"`
	NotBefore     time.Time     `json:"not_before,omitzero"`
	UniqueKey     string        `json:"unique_key,omitempty"`
	Attempts      []AttemptView `json:"attempts"`
	ResultMessage string        `json:"result_message,omitempty"`
}

// AttemptView is one attempt of a task.
type AttemptView struct {
	Attempt    int       `json:"attempt"`
	Worker     string    `json:"worker"`
	AssignedAt time.Time `json:"assigned_at"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
	// Outcome is "ok", the error text, "timeout", "lost: …", or "" while
	// running.
	Outcome    string  `json:"outcome,omitempty"`
	DurationMS float64 `json:"duration_ms,omitempty"`
}

// WorkerView is a worker as an operator sees it: its numbers, and, for as
// long as the manager runs, when it came and went and its last attempts.
type WorkerView struct {
	WorkerStats
	WorkerActivity
}

// WorkerActivity is what a manager remembers of a worker while it runs
// (not journaled).
type WorkerActivity struct {
	PeerID    string    `json:"peer_id,omitempty"`
	Types     []string  `json:"types,omitempty"`
	FirstSeen time.Time `json:"first_seen,omitzero"` // registered (this manager's run)
	LastSeen  time.Time `json:"last_seen,omitzero"`
	LeftAt    time.Time `json:"left_at,omitzero"` // disconnected (zero while connected)
	// Recent are its last attempts to end, newest first.
	Recent []WorkerAttempt `json:"recent,omitempty"`
}

// MarshalJSON writes the stats' fields (with the success rate and the mean
// time, as WorkerStats does) and the activity's side by side.
func (w WorkerView) MarshalJSON() ([]byte, error) {
	type plain WorkerStats
	return json.Marshal(struct {
		plain
		WorkerActivity
		SuccessRate float64 `json:"success_rate"`
		AvgTimeMS   float64 `json:"avg_time_ms"`
	}{plain(w.WorkerStats), w.WorkerActivity, w.SuccessRate(), ms(w.AvgTime())})
}

// WorkerAttempt is one attempt a worker ended.
type WorkerAttempt struct {
	TaskID  string    `json:"task_id"`
	Type    string    `json:"type"`
	Attempt int       `json:"attempt"`
	EndedAt time.Time `json:"ended_at"`
	Outcome string    `json:"outcome"`
	RunMS   float64   `json:"run_ms"`
}

// ListTasks lists the tasks that match f, newest first, f.Limit at a
// time; pass the page's Next as the next call's Cursor. It runs in the
// manager's actor and visits every task the manager holds (a few
// milliseconds per 100,000 tasks).
func (m *Manager) ListTasks(ctx context.Context, f TaskFilter) (TaskPage, error) {
	if _, _, _, err := f.compile(); err != nil {
		return TaskPage{}, err
	}
	return agent.Call(ctx, m.agent, func() (TaskPage, error) { return m.listTasks(f) })
}

// listTasks is ListTasks in the actor.
func (m *Manager) listTasks(f TaskFilter) (TaskPage, error) {
	match, limit, before, err := f.compile()
	if err != nil {
		return TaskPage{}, err
	}
	if !m.leading {
		return TaskPage{}, m.notLeader()
	}
	var page TaskPage
	// The newest limit+1 of the hits below the cursor, in a min-heap
	// by seq (O(n log limit), whatever the number of tasks): the extra
	// one says whether there is a next page.
	hits := &seqHeap{}
	for _, t := range m.tasks {
		if !match(t) {
			continue
		}
		page.Total++
		if t.seq >= before {
			continue
		}
		if hits.Len() <= limit {
			heap.Push(hits, t)
		} else if t.seq > (*hits)[0].seq {
			(*hits)[0] = t
			heap.Fix(hits, 0)
		}
	}
	slices.SortFunc(*hits, func(a, b *taskState) int { return cmp.Compare(b.seq, a.seq) })
	if hits.Len() > limit {
		*hits = (*hits)[:limit]
		page.Next = strconv.FormatUint((*hits)[limit-1].seq, 10)
	}
	page.Tasks = make([]TaskSummary, hits.Len())
	for i, t := range *hits {
		page.Tasks[i] = t.summary()
	}
	return page, nil
}

// compile checks f and turns it into a predicate, a page size and the
// sequence number the page starts below.
func (f TaskFilter) compile() (match func(*taskState) bool, limit int, before uint64, err error) {
	before = ^uint64(0)
	if f.Cursor != "" {
		if before, err = strconv.ParseUint(f.Cursor, 10, 64); err != nil {
			return nil, 0, 0, fmt.Errorf("%w: cursor %q", ErrBadFilter, f.Cursor)
		}
	}
	switch {
	case f.Limit < 0:
		return nil, 0, 0, fmt.Errorf("%w: limit %d", ErrBadFilter, f.Limit)
	case f.Limit == 0:
		limit = DefaultPageSize
	default:
		limit = min(f.Limit, MaxPageSize)
	}
	status, final := Status(-1), false
	switch f.Status {
	case "":
	case "final":
		final = true
	default:
		st, err := ParseStatus(f.Status)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: %w", ErrBadFilter, err)
		}
		status = st
	}
	match = func(t *taskState) bool {
		switch {
		case status >= 0 && t.status != status,
			final && !t.status.Final(),
			f.Type != "" && t.task.Type != f.Type,
			f.ID != "" && !strings.Contains(t.task.ID, f.ID),
			!f.Since.IsZero() && t.submittedAt.Before(f.Since),
			!f.Until.IsZero() && !t.submittedAt.Before(f.Until):
			return false
		case f.Worker != "":
			return t.lastAttemptWorker() == f.Worker
		}
		return true
	}
	return match, limit, before, nil
}

func (t *taskState) lastAttemptWorker() string {
	if t.result != nil && t.result.Worker != "" {
		return t.result.Worker
	}
	if n := len(t.attempts); n > 0 {
		return t.attempts[n-1].Worker
	}
	return ""
}

// summary is t as a listing shows it. Only called in the actor.
func (t *taskState) summary() TaskSummary {
	s := TaskSummary{
		ID: t.task.ID, Type: t.task.Type, Name: t.task.Name, Status: t.status.String(), Priority: t.task.Priority,
		Attempt: t.attempt, Worker: t.lastAttemptWorker(), SubmittedAt: t.submittedAt, FinishedAt: t.finishedAt,
		Progress: t.progress, ProgressMessage: t.progressMessage,
	}
	if n := len(t.attempts); n > 0 {
		s.StartedAt = t.attempts[n-1].AssignedAt
		s.WaitMS = ms(s.StartedAt.Sub(t.submittedAt))
	}
	if t.result != nil {
		s.RunMS = ms(t.result.ExecutionTime)
		s.Error = clip(t.result.ErrorMessage, maxSummaryError)
	}
	if !t.finishedAt.IsZero() {
		s.TotalMS = ms(t.finishedAt.Sub(t.submittedAt))
	}
	return s
}

// TaskDetail returns everything the manager knows of task id
// ([ErrUnknownTask] if nothing).
func (m *Manager) TaskDetail(ctx context.Context, id string) (TaskDetail, error) {
	return agent.Call(ctx, m.agent, func() (TaskDetail, error) {
		if !m.leading {
			return TaskDetail{}, m.notLeader()
		}
		t := m.tasks[id]
		if t == nil {
			return TaskDetail{}, fmt.Errorf("%w: %q", ErrUnknownTask, id)
		}
		return t.detail(), nil
	})
}

func (t *taskState) detail() TaskDetail {
	d := TaskDetail{
		TaskSummary: t.summary(), Description: t.task.Description, Difficulty: t.task.Difficulty,
		Capabilities: slices.Clone(t.task.Capabilities), Dependencies: slices.Clone(t.task.Dependencies),
		Parent: t.task.Parent, InputBytes: len(t.task.Input), MaxRetries: t.policy.MaxRetries,
		Retries: t.retries, Lost: t.lost, TimeoutMS: ms(t.policy.Timeout), NotBefore: t.notBefore, UniqueKey: t.uniqueKey,
		Attempts: make([]AttemptView, len(t.attempts)),
	}
	for _, in := range t.inputs {
		d.InputsBytes += len(in)
	}
	if t.result != nil {
		d.OutputBytes = len(t.result.Output)
		d.ResultMessage = t.result.ErrorMessage
	}
	for i, a := range t.attempts {
		d.Attempts[i] = AttemptView{Attempt: a.Attempt, Worker: a.Worker, AssignedAt: a.AssignedAt, EndedAt: a.EndedAt, Outcome: a.Outcome}
		if !a.EndedAt.IsZero() {
			d.Attempts[i].DurationMS = ms(a.EndedAt.Sub(a.AssignedAt))
		}
	}
	return d
}

// Workers lists every worker the manager has known in this run or kept
// in its journal, connected ones first, then by name.
func (m *Manager) Workers(ctx context.Context) ([]WorkerView, error) {
	return agent.Call(ctx, m.agent, func() ([]WorkerView, error) {
		if !m.leading {
			return nil, m.notLeader()
		}
		return m.workerViews(), nil
	})
}

func (m *Manager) workerViews() []WorkerView {
	var out []WorkerView
	seen := map[string]bool{}
	for _, w := range m.workerList {
		v := WorkerView{WorkerStats: w.stats, WorkerActivity: WorkerActivity{PeerID: w.pid.String(), LastSeen: w.lastSeen}}
		v.InFlight, v.Connected = len(w.slots), w.alive
		if n := m.agent.Node(); n != nil {
			v.Reach = string(n.Reach(w.pid))
		}
		for typ := range w.types {
			v.Types = append(v.Types, typ)
		}
		slices.Sort(v.Types)
		m.workerLog.fill(&v)
		out = append(out, v)
		seen[w.info.Name] = true
	}
	for name, ws := range m.history {
		if !seen[name] {
			v := WorkerView{WorkerStats: ws}
			v.InFlight, v.Connected = 0, false
			m.workerLog.fill(&v)
			out = append(out, v)
			seen[name] = true
		}
	}
	slices.SortFunc(out, func(a, b WorkerView) int {
		if a.Connected != b.Connected {
			if a.Connected {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// seqHeap is a min-heap of tasks by submission order.
type seqHeap []*taskState

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(*taskState)) }
func (h *seqHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// maxSummaryError bounds an error's text in a listing (the detail has all).
const maxSummaryError = 512

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
