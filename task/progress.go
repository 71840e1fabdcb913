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
	gen     uint64 // numbers the timer armed last: an older one's flush, late for the lock, does nothing
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
			s.gen++
			gen := s.gen
			s.timer = time.AfterFunc(wait, func() { s.flush(gen) })
		}
		return
	}
	// Sent now, p supersedes a report still pending: a timer about to
	// flush it would otherwise send the older one after p.
	s.pending = nil
	s.disarm()
	s.last = time.Now()
	s.send(p)
}

// flush sends the pending report when the timer armed as gen fires.
func (s *progressSender) flush(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return // disarmed while it waited for the lock
	}
	s.timer = nil
	if s.pending != nil && !s.stopped {
		s.last = time.Now()
		s.send(*s.pending)
		s.pending = nil
	}
}

// disarm stops the pending flush, if any (s.mu held).
func (s *progressSender) disarm() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.gen++
}

// stop ends the job's reporting, sending a report still held back by the
// rate limit (the handler's last one goes out, before its result).
func (s *progressSender) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	s.disarm()
	if s.pending != nil && s.send != nil {
		s.send(*s.pending)
		s.pending = nil
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
