package task

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// This file is the worker's side of the protocol. Every method here except
// execute runs in the worker's actor.

// onConnect adopts a task manager: an admin. Modes are self-declared, so a
// worker that joined through an address only trusts the agent at that
// address (with a workspace secret, only members can connect at all); one
// found by mDNS trusts the first admin it meets. A worker that has followed
// replicated managers (a term above 0) adopts only on a leader's Welcome:
// a standby connecting first must not catch it.
func (w *Worker) onConnect(ctx agent.Context, who agent.AgentDetail) {
	if w.epoch > 0 {
		return
	}
	w.adopt(ctx, who)
}

// adopt makes the sender the worker's manager, if it may be.
func (w *Worker) adopt(ctx agent.Context, who agent.AgentDetail) {
	if w.shutting {
		return // stopping (told to, or its manager was gone too long): take no work
	}
	from := ctx.SenderID()
	if who.Mode != agent.Admin || !w.trusts(from) || (w.manager != "" && w.manager != from) {
		return
	}
	w.manager = from
	if w.stopLost != nil {
		w.stopLost()
		w.stopLost = nil
	}
	if w.lostMgr != nil {
		w.agent.Logger().Info("task manager back", "manager", who)
		w.lostMgr = nil
	}
	if w.cfg.watch != nil {
		w.cfg.watch(who, true)
	}
	w.introduce()
}

// introduce announces the worker to its manager; to a replicated leader,
// it then sends the results that leader may lack and a heartbeat listing
// what it holds, so that the leader settles at once what it took over.
func (w *Worker) introduce() {
	if len(w.cfg.grants) == 0 {
		w.introduced()
		return
	}
	// The grants go first (a request: its answer comes back on its own
	// stream), then the registration.
	mgr, grants := w.manager, w.cfg.grants
	go func() {
		ctx, cancel := context.WithTimeout(w.agent.Context(), 10*time.Second)
		defer cancel()
		_, err := presentGrants(ctx, w.agent, mgr, grants)
		if err != nil {
			w.agent.Logger().Warn("task manager refused grants", "err", err)
		}
		w.agent.Post(func() {
			w.grantErr = err
			if w.manager == mgr {
				w.introduced()
			}
		})
	}()
}

// introduced announces the worker once its grants are handed over.
func (w *Worker) introduced() {
	if w.reg != nil { // a new registration: Registration waits for its answer
		select {
		case <-w.reg.answered:
			w.reg = nil
		default:
		}
	}
	w.announce()
	if w.epoch > 0 {
		w.resendResults()
		w.heartbeat()
	}
}

// onWelcome answers a manager's request to introduce ourselves: it adopts
// the manager as onConnect would, and announces. Among replicated
// managers (a term above 0), the worker follows the sender of a welcome
// of the highest epoch it has heard, with the attempts it holds (the
// leader takes them over).
func (w *Worker) onWelcome(ctx agent.Context, wm messages.Welcome) error {
	from := ctx.SenderID()
	if wm.Epoch == 0 && w.epoch > 0 {
		return nil // a manager without replication, after replicated ones
	}
	if wm.Epoch > 0 && wm.Epoch >= w.epoch && !w.shutting && ctx.Sender().Mode == agent.Admin && w.trusts(from) {
		w.epoch = wm.Epoch
		if w.manager != "" && w.manager != from {
			// The attempts held stay: the new leader has them in its
			// journal and takes them over when we introduce ourselves.
			w.agent.Logger().Info("following the new leading task manager", "manager", ctx.Sender(), "term", wm.Epoch, "running", len(w.running))
			w.manager = ""
		}
	}
	if w.manager == "" {
		w.adopt(ctx, ctx.Sender())
		return nil
	}
	if w.fromManager(ctx) {
		w.introduce()
	}
	return nil
}

// fromManager reports whether a message came from the adopted manager.
func (w *Worker) fromManager(ctx agent.Context) bool {
	return w.manager != "" && ctx.SenderID() == w.manager
}

// announce tells the manager what the worker offers.
func (w *Worker) announce() {
	if w.manager == "" {
		return
	}
	if err := w.agent.SendBounded(w.manager, w.Info()); err != nil {
		w.agent.Logger().Warn("cannot announce to manager", "err", err)
	}
}

// maxListed bounds the attempts a heartbeat lists.
const maxListed = 4096

func (w *Worker) heartbeat() {
	if w.manager == "" {
		return
	}
	hb := messages.Heartbeat{InFlight: len(w.running)}
	if len(w.running)+len(w.queue) <= maxListed {
		hb.Listed = true
		for k := range w.running {
			hb.Running = append(hb.Running, messages.AttemptRef{TaskID: k.task, Attempt: k.attempt})
		}
		for _, q := range w.queue {
			hb.Running = append(hb.Running, messages.AttemptRef{TaskID: q.as.Task.ID, Attempt: q.as.Attempt})
		}
	}
	_ = w.agent.SendBounded(w.manager, hb)
}

func (w *Worker) onDisconnect(ctx agent.Context, who agent.AgentDetail) {
	if ctx.SenderID() != w.manager {
		return
	}
	// The manager requeues whatever we held; finishing it here would only
	// duplicate work. Among replicated managers the next leader takes the
	// attempts over instead: they go on, and their results go to it.
	w.manager = ""
	if w.epoch == 0 {
		w.dropAttempts(ErrManagerLost)
	}
	w.lostMgr = &who
	w.agent.Logger().Warn("task manager lost; waiting for it to come back", "manager", who, "running", len(w.running))
	if w.cfg.watch != nil {
		w.cfg.watch(who, false)
	}
	if d := w.cfg.stopAfter; d > 0 && !w.shutting {
		w.stopLost = w.agent.After(d, func() {
			if w.manager == "" && !w.shutting {
				w.agent.Logger().Warn("task manager gone too long; stopping", "manager", who, "after", d)
				w.shutting = true
				w.stopIfIdle()
			}
		})
	}
}

// dropAttempts cancels every attempt held, queued or running.
func (w *Worker) dropAttempts(cause error) {
	w.queue = nil
	for k, r := range w.running {
		w.drop(k, r, cause)
	}
}

// drop cancels a running attempt and forgets it: its processor still
// holds a goroutine (and counts against MaxConcurrency) until it returns,
// but its outcome is reported to nobody, and an assignment of the same
// task and attempt number (a manager that restarted before it journaled
// this one, or a new leader that never had it) runs afresh.
func (w *Worker) drop(k slotKey, r *run, cause error) {
	delete(w.running, k)
	w.dropped[r] = struct{}{}
	r.cancel(cause)
}

// busy is how many processors are taken: the attempts held and the
// dropped ones still running.
func (w *Worker) busy() int { return len(w.running) + len(w.dropped) }

func (w *Worker) onShutdown(ctx agent.Context, s messages.Shutdown) error {
	if !w.fromManager(ctx) {
		return fmt.Errorf("shutdown from %s, which is not our task manager", ctx.Sender())
	}
	w.agent.Logger().Info("shutdown requested", "reason", s.Reason, "running", len(w.running))
	w.shutting = true
	w.queue = nil
	w.stopIfIdle()
	return nil
}

func (w *Worker) stopIfIdle() {
	if w.shutting && len(w.running) == 0 {
		go func() { _ = w.Stop() }()
	}
}

func (w *Worker) onCancel(ctx agent.Context, c messages.TaskCancel) error {
	if !w.fromManager(ctx) {
		return fmt.Errorf("cancel from %s, which is not our task manager", ctx.Sender())
	}
	if r := w.running[slotKey{c.TaskID, c.Attempt}]; r != nil {
		r.cancel(fmt.Errorf("%w: %s", ErrCancelledByManager, c.Reason))
		return nil
	}
	for i, q := range w.queue { // not started yet: drop it
		if q.as.Task.ID == c.TaskID && q.as.Attempt == c.Attempt {
			w.queue = append(w.queue[:i], w.queue[i+1:]...)
			break
		}
	}
	return nil
}

func (w *Worker) onAssignment(ctx agent.Context, as messages.TaskAssignment) error {
	from := ctx.SenderID()
	if !w.fromManager(ctx) {
		return fmt.Errorf("assignment from %s, which is not our task manager", ctx.Sender())
	}
	if err := as.Validate(); err != nil {
		return err
	}
	if as.Epoch < w.epoch {
		return fmt.Errorf("%w: assignment of %q from epoch %d, the leader's is %d", ErrStaleAssignment, as.Task.ID, as.Epoch, w.epoch)
	}
	w.epoch = as.Epoch // our manager's term, if its welcome did not say (we announced first)
	key := slotKey{as.Task.ID, as.Attempt}
	if r := w.running[key]; r != nil {
		if r.as.Epoch >= as.Epoch {
			return nil // duplicate
		}
		// A newer leader assigns an attempt of this number, so it never
		// had ours (sent by a previous leader before it committed it):
		// ours is stale, and so is a result of it kept for a next leader.
		w.drop(key, r, fmt.Errorf("%w: attempt %d of %q assigned again in epoch %d", ErrStaleAssignment, as.Attempt, as.Task.ID, as.Epoch))
		w.forgetKept(key, as.Epoch)
	}
	for i, q := range w.queue {
		if q.as.Task.ID != as.Task.ID || q.as.Attempt != as.Attempt {
			continue
		}
		if q.as.Epoch >= as.Epoch {
			return nil // duplicate
		}
		w.queue[i] = queued{as: as, from: from} // the stale one never starts
		w.forgetKept(key, as.Epoch)
		_ = w.agent.SendBounded(from, messages.TaskAck{TaskID: as.Task.ID, Attempt: as.Attempt})
		return nil
	}
	if w.shutting {
		w.report(from, &as, nil, errors.New("worker is shutting down"), 0, nil)
		return nil
	}
	if w.busy() >= w.cfg.max {
		// More than we run at once (the manager thought a slot was free):
		// accept it now and run it when one is; the ack keeps its lease
		// from being taken back meanwhile.
		w.queue = append(w.queue, queued{as: as, from: from})
		_ = w.agent.SendBounded(from, messages.TaskAck{TaskID: as.Task.ID, Attempt: as.Attempt})
		return nil
	}
	w.start(as, from)
	return nil
}

// start runs one assignment on a pool goroutine.
func (w *Worker) start(as messages.TaskAssignment, from peer.ID) {
	h, ok := w.handler(as.Task.Type)
	if !ok {
		w.report(from, &as, nil, fmt.Errorf("worker %s has no processor for type %q", w.name, as.Task.Type), 0, nil)
		return
	}
	ctx, cancel := context.WithCancelCause(w.agent.Context())
	runCtx, stopTimer := ctx, context.CancelFunc(func() {})
	if as.Timeout > 0 {
		// The manager's lease ends at Timeout and it cancels us then; our
		// own deadline, a little later, covers a lost cancel.
		runCtx, stopTimer = context.WithTimeout(ctx, as.Timeout+w.cfg.cancelGrace)
	}
	r := &run{cancel: cancel, from: from, started: time.Now(), as: as}
	if old := w.running[slotKey{as.Task.ID, as.Attempt}]; old != nil { // never held twice
		w.drop(slotKey{as.Task.ID, as.Attempt}, old, fmt.Errorf("%w: attempt %d of %q started again", ErrStaleAssignment, as.Attempt, as.Task.ID))
	}
	w.running[slotKey{as.Task.ID, as.Attempt}] = r
	w.armAcks()
	req := &jobRequest{run: r, fn: h.fn, ctx: runCtx, stopTimer: stopTimer}
	select {
	case w.jobs <- req: // an idle pool goroutine takes it
		return
	default:
	}
	if w.poolSize < w.cfg.max {
		w.poolSize++
		w.runs.Add(1)
		go w.poolLoop(req)
		return
	}
	// Every goroutine exists and one is about to be idle — unless the
	// worker is stopping, and they are leaving.
	select {
	case w.jobs <- req:
	case <-w.agent.Context().Done():
		delete(w.running, slotKey{as.Task.ID, as.Attempt})
		stopTimer()
		cancel(ErrManagerLost)
	}
}

// jobRequest hands an assignment to a pool goroutine.
type jobRequest struct {
	run       *run
	fn        HandlerFunc
	ctx       context.Context
	stopTimer context.CancelFunc
}

// poolLoop is one of the worker's at most MaxConcurrency processor
// goroutines; it lives until the worker stops.
func (w *Worker) poolLoop(req *jobRequest) {
	defer w.runs.Done()
	for {
		w.process(req)
		select {
		case req = <-w.jobs:
		case <-w.agent.Context().Done():
			return
		}
	}
}

// process runs one job and posts its outcome to the actor. It runs on a
// pool goroutine.
func (w *Worker) process(req *jobRequest) {
	r := req.run
	as := &r.as
	job := &Job{Task: as.Task, Attempt: as.Attempt, Inputs: as.Inputs, Worker: w.name, Skill: w.cfg.skill}
	job.progress.send = func(p messages.TaskProgress) {
		_ = w.agent.Post(func() {
			if w.running[slotKey{as.Task.ID, as.Attempt}] == r { // still ours to report on
				if to := w.reportTo(r.from, as.Epoch); to != "" {
					_ = w.agent.SendBounded(to, p)
				}
			}
		})
	}
	start := time.Now()
	runCtx := req.ctx
	var span trace.Span
	if as.Trace != "" {
		runCtx, span = w.cfg.tracer.Start(withTraceparent(req.ctx, as.Trace), SpanRun, trace.WithSpanKind(trace.SpanKindConsumer),
			taskAttrs(as.Task.ID, as.Task.Type), trace.WithAttributes(attribute.Int("ceylon.attempt", as.Attempt), attribute.String("ceylon.worker", w.name)))
	}
	out, err := execute(runCtx, req.fn, job)
	if span != nil {
		endSpan(span, err)
	}
	job.progress.stop()
	if req.ctx.Err() != nil {
		err = withCause(err, context.Cause(req.ctx))
	}
	elapsed := time.Since(start)
	req.stopTimer()
	job.mu.Lock()
	children := job.children
	job.mu.Unlock()
	w.agent.Post(func() {
		key := slotKey{as.Task.ID, as.Attempt}
		if w.running[key] != r {
			if _, ok := w.dropped[r]; ok {
				delete(w.dropped, r)
				r.cancel(nil)
				w.next() // its processor is free
			}
			return
		}
		delete(w.running, key)
		r.cancel(nil)
		w.report(w.reportTo(r.from, as.Epoch), as, out, err, elapsed, children)
		w.next()
	})
}

// armAcks schedules an ack sweep. A task that finishes within ackAfter
// needs no ack (its result stands for it), so most short tasks cost no
// ack message at all.
func (w *Worker) armAcks() {
	if w.ackArmed {
		return
	}
	w.ackArmed = true
	time.AfterFunc(w.cfg.ackAfter, func() { w.agent.Post(w.sweepAcks) })
}

// sweepAcks acknowledges every run older than ackAfter.
func (w *Worker) sweepAcks() {
	w.ackArmed = false
	now := time.Now()
	pending := false
	for _, r := range w.running {
		if r.acked {
			continue
		}
		if now.Sub(r.started) < w.cfg.ackAfter {
			pending = true
			continue
		}
		r.acked = true
		if to := w.reportTo(r.from, r.as.Epoch); to != "" {
			_ = w.agent.SendBounded(to, messages.TaskAck{TaskID: r.as.Task.ID, Attempt: r.as.Attempt})
		}
	}
	if pending {
		w.armAcks()
	}
}

// execute calls a processor, turning a panic into an error.
func execute(ctx context.Context, fn HandlerFunc, job *Job) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processor panicked: %v", r)
		}
	}()
	return fn(ctx, job)
}

// report sends the result of an attempt to the manager that assigned it.
func (w *Worker) report(to peer.ID, as *messages.TaskAssignment, out []byte, err error, elapsed time.Duration, children []messages.Task) {
	r := messages.TaskResult{
		TaskID: as.Task.ID, Attempt: as.Attempt, Worker: w.name,
		Success: err == nil, ExecutionTime: elapsed, Output: out, Children: children, Epoch: as.Epoch,
	}
	if err == nil && len(children) > messages.MaxChildren {
		err = fmt.Errorf("%w: spawned %d child tasks, at most %d", ErrSkipRetry, len(children), messages.MaxChildren)
		r.Success = false
	}
	if err != nil {
		r.ErrorMessage = err.Error()
		r.Final = errors.Is(err, ErrSkipRetry)
		r.Children = nil
	}
	if as.Epoch > 0 {
		defer func() { w.remember(r, err == nil) }()
	}
	if to == "" {
		err = errors.New("no task manager to report to")
		return
	}
	err = w.agent.SendBounded(to, r)
	if errors.Is(err, peer.ErrFrameTooLarge) {
		// The output cannot travel: say so, rather than let the lease run
		// out. Retrying would produce the same output.
		r = messages.TaskResult{TaskID: r.TaskID, Attempt: r.Attempt, Worker: w.name, ExecutionTime: r.ExecutionTime,
			ErrorMessage: fmt.Sprintf("result not sendable: %v", err), Final: true}
		err = w.agent.SendBounded(to, r)
	}
	if err != nil {
		w.agent.Logger().Warn("result not delivered", "task", as.Task.ID, "err", err)
	}
}

// next starts queued assignments while there is room.
func (w *Worker) next() {
	for len(w.queue) > 0 && w.busy() < w.cfg.max {
		q := w.queue[0]
		w.queue = w.queue[1:]
		w.start(q.as, q.from)
	}
	w.stopIfIdle()
}

// reportTo is where the result (or ack, or progress) of an attempt goes:
// to the manager that assigned it; among replicated managers (a term
// above 0), to the leader the worker follows now ("" while it has none),
// which took the attempt over.
func (w *Worker) reportTo(from peer.ID, epoch uint64) peer.ID {
	if epoch > 0 {
		return w.manager
	}
	return from
}

// Among replicated managers, a result sent to a leader just before it was
// lost may never have been committed: the worker keeps its last results
// for a while and sends them again to the next leader it follows (which
// takes each one whose attempt it holds, and ignores the others).
const (
	keptResults   = 1024
	keptBytes     = 16 << 20 // of outputs
	keepResultFor = 30 * time.Second
)

// sentResult is a result kept for the next leader.
type sentResult struct {
	r         messages.TaskResult // as sent: its epoch is its assignment's
	at        time.Time
	delivered bool
	sentIn    uint64 // the epoch of the leader it was last delivered to
}

// remember keeps a result for the next leader. Only called in the actor.
func (w *Worker) remember(r messages.TaskResult, delivered bool) {
	w.kept = append(w.kept, sentResult{r: r, at: time.Now(), delivered: delivered, sentIn: w.epoch})
	w.keptSize += len(r.Output)
	n := 0
	for len(w.kept)-n > keptResults || (w.keptSize > keptBytes && len(w.kept)-n > 1) {
		w.keptSize -= len(w.kept[n].r.Output)
		n++
	}
	if n > 0 {
		w.kept = append(w.kept[:0], w.kept[n:]...)
	}
}

// forgetKept drops the kept results of attempt k from epochs before
// epoch: that attempt number was assigned again, so they are stale. Only
// called in the actor.
func (w *Worker) forgetKept(k slotKey, epoch uint64) {
	kept := w.kept[:0]
	for _, s := range w.kept {
		if s.r.TaskID == k.task && s.r.Attempt == k.attempt && s.r.Epoch < epoch {
			w.keptSize -= len(s.r.Output)
			continue
		}
		kept = append(kept, s)
	}
	w.kept = kept
}

// resendResults sends the kept results of earlier terms (and those never
// delivered) to the manager just adopted. Only called in the actor.
func (w *Worker) resendResults() {
	if w.manager == "" || len(w.kept) == 0 {
		return
	}
	now := time.Now()
	kept := w.kept[:0]
	for _, k := range w.kept {
		if now.Sub(k.at) > keepResultFor {
			w.keptSize -= len(k.r.Output)
			continue
		}
		if !k.delivered || k.sentIn < w.epoch {
			k.delivered = w.agent.SendBounded(w.manager, k.r) == nil
			if k.delivered {
				k.sentIn = w.epoch // sent to this epoch's leader
			}
		}
		kept = append(kept, k)
	}
	w.kept = kept
}

// withCause adds to a handler's error why its context ended, unless the
// error says so already.
func withCause(err, cause error) error {
	if err == nil || cause == nil || errors.Is(err, cause) || strings.Contains(err.Error(), cause.Error()) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, cause)
}
