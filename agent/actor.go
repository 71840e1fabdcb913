package agent

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/asynkron/protoactor-go/actor"
)

// agentActor is the Agent seen as a protoactor actor. All its methods run
// in the actor, one message at a time.
type agentActor Agent

// Receive implements actor.Actor.
func (aa *agentActor) Receive(c actor.Context) {
	a := (*Agent)(aa)
	switch m := c.Message().(type) {
	case *delivery:
		a.handleDelivery(m)
	case *presence:
		a.handlePresence(m)
	case func():
		a.safely("internal", func() error { m(); return nil })
	}
}

// decodeError marks a body that did not decode, as opposed to a handler's
// own error.
type decodeError struct{ err error }

func (e decodeError) Error() string { return e.err.Error() }
func (e decodeError) Unwrap() error { return e.err }

// handleDelivery runs the handler for one message. Only called in the actor.
func (a *Agent) handleDelivery(d *delivery) {
	if d.credited {
		defer func() { <-a.credits }()
	}
	if d.member != nil {
		defer func() { <-d.member.credits }()
	}
	e := a.handlers.Load().kinds[d.env.Kind]
	if e == nil {
		a.stats.droppedUnknown.Add(1)
		a.log.Debug("no handler for kind", "kind", d.env.Kind, "from", d.sender)
		return
	}
	a.stats.received.Add(1)
	err := a.safely(d.env.Kind, func() error { return e.dispatch(d, d.env.Body) })
	if err == nil {
		return
	}
	var de decodeError // past the return: errors.As makes it escape
	if errors.As(err, &de) {
		a.stats.droppedBad.Add(1)
		a.log.Warn("undecodable message", "kind", d.env.Kind, "from", d.sender, "err", err)
		a.misbehaved(d.from, "undecodable "+d.env.Kind)
	}
}

// handlePresence runs the connect or disconnect handlers. Only called in
// the actor.
func (a *Agent) handlePresence(p *presence) {
	t := a.handlers.Load()
	fns := t.onDisconnect
	if p.joined {
		fns = t.onConnect
	} else {
		a.replies.failPeer(p.pid, fmt.Errorf("%w: %s", ErrPeerLeft, p.detail))
	}
	ctx := &delivery{Context: a.ctx, a: a, from: p.pid, sender: p.detail}
	for _, fn := range fns {
		_ = a.safely("presence", func() error { fn(ctx, p.detail); return nil })
	}
}

// safely calls fn, turning a panic into a logged, counted error.
func (a *Agent) safely(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			a.stats.handlerPanics.Add(1)
			a.log.Error("handler panicked", "kind", what, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("agent: handler for %q panicked: %v", what, r)
		}
	}()
	if err = fn(); err != nil {
		var de decodeError // declared here: errors.As makes it escape, and most calls succeed
		if !errors.As(err, &de) {
			a.stats.handlerErrors.Add(1)
			a.log.Warn("handler failed", "kind", what, "err", err)
		}
	}
	return err
}
