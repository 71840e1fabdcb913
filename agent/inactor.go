package agent

import (
	"context"
	"sync"
	"time"
)

// Post runs fn in the agent's actor, after the messages already queued, one
// at a time with every handler (so fn needs no locks for the state the
// handlers own). It does not wait. A panic in fn is recovered, logged and
// counted like a handler's. It fails with [ErrNotStarted] before Start and
// [ErrStopped] after Stop (fn then never runs).
func (a *Agent) Post(fn func()) error {
	if err := a.started(); err != nil {
		return err
	}
	a.exec(fn)
	return nil
}

// After runs fn in the agent's actor once d has passed (a timer that keeps
// the actor's one-at-a-time rule). The returned stop cancels it, reporting
// whether it did so before fn was posted. A timer that fires after Stop does
// nothing.
func (a *Agent) After(d time.Duration, fn func()) (stop func() bool) {
	t := time.AfterFunc(d, func() { _ = a.Post(fn) })
	return t.Stop
}

// Every runs fn in the agent's actor every d, until the returned stop is
// called or the agent stops. A tick that finds the previous one still
// queued is skipped, so a slow actor is not flooded. stop waits until no
// tick will be posted any more (it may be called more than once, but not
// from fn itself when fn must be the last tick).
func (a *Agent) Every(d time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var queued sync.Mutex // held from post until fn starts: a tick in the mailbox
	wg.Go(func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if !queued.TryLock() {
					continue
				}
				if a.Post(func() { queued.Unlock(); fn() }) != nil {
					queued.Unlock()
				}
			case <-done:
				return
			case <-a.Done():
				return
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// Context returns a context that ends when the agent stops; contexts of
// work the agent starts (a task's processor, say) derive from it.
func (a *Agent) Context() context.Context { return a.ctx }

// exec runs fn in the agent's actor, after the messages already queued.
func (a *Agent) exec(fn func()) {
	if a.pid == nil {
		return
	}
	a.system.Root.Send(a.pid, fn)
}
