package task

import (
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
)

// progressEvery is the most often a job's progress goes on the wire: a
// handler may report as often as it likes; what it reports in between is
// coalesced into the latest.
const progressEvery = 200 * time.Millisecond

// Progress reports how far the job has got: a fraction (0 to 1, clamped)
// and a short message (cut to messages.MaxProgressMessage bytes). The
// submitter sees it in Manager.Task and as EventProgress. It may be called
// as often as the handler likes, from any goroutine: at most one report
// goes to the manager per 200 ms, the latest, and the last one always
// does.
func (j *Job) Progress(fraction float64, message string) {
	if !(fraction >= 0) {
		fraction = 0
	}
	fraction = min(fraction, 1)
	if len(message) > messages.MaxProgressMessage {
		message = message[:messages.MaxProgressMessage]
	}
	j.progress.report(messages.TaskProgress{TaskID: j.Task.ID, Attempt: j.Attempt, Fraction: fraction, Message: message})
}

// progressSender rate-limits a job's progress reports.
type progressSender struct {
	send    func(messages.TaskProgress) // nil outside a worker
	mu      sync.Mutex
	last    time.Time
	pending *messages.TaskProgress
	timer   *time.Timer
	stopped bool
}

func (s *progressSender) report(p messages.TaskProgress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.send == nil || s.stopped {
		return
	}
	if wait := progressEvery - time.Since(s.last); wait > 0 {
		s.pending = &p
		if s.timer == nil {
			s.timer = time.AfterFunc(wait, s.flush)
		}
		return
	}
	// Sent now, p supersedes a report still pending: a timer about to
	// flush it would otherwise send the older one after p.
	s.pending = nil
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.last = time.Now()
	s.send(p)
}

func (s *progressSender) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	if s.pending != nil && !s.stopped {
		s.last = time.Now()
		s.send(*s.pending)
		s.pending = nil
	}
}

// stop ends the job's reporting (its result says the rest).
func (s *progressSender) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

// onProgress records a running attempt's progress, if it comes from the
// worker that holds it. Runs in the manager's actor.
func (m *Manager) onProgress(ctx agent.Context, p messages.TaskProgress) error {
	if !m.leading {
		return nil
	}
	if err := p.Validate(); err != nil {
		return err
	}
	t := m.current(p.TaskID, p.Attempt)
	if t == nil || t.worker == nil || t.worker.pid != ctx.SenderID() {
		return nil // an old attempt's, or not its worker's: ignored
	}
	t.progress, t.progressMessage = p.Fraction, p.Message
	m.emit(Event{Type: EventProgress, TaskID: p.TaskID, Attempt: p.Attempt, Worker: t.worker.detail.Name,
		Progress: p.Fraction, ProgressMessage: p.Message})
	return nil
}
