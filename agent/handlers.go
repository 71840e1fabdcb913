package agent

import (
	"fmt"
	"slices"

	"github.com/ceylon-go/ceylon/messages"
)

// Handler handles one message type. Returning an error logs and counts it;
// the agent goes on.
type Handler[T messages.Message] func(ctx Context, msg T) error

// handlerEntry decodes a body into its type and calls the typed handler,
// without boxing the value.
type handlerEntry struct {
	kind     string
	dispatch func(ctx Context, body []byte) error
}

// handlerTable is copy-on-write: the actor reads it without locks.
type handlerTable struct {
	kinds        map[string]*handlerEntry
	onConnect    []func(Context, AgentDetail)
	onDisconnect []func(Context, AgentDetail)
}

func (t *handlerTable) clone() *handlerTable {
	c := &handlerTable{
		kinds:        make(map[string]*handlerEntry, len(t.kinds)+1),
		onConnect:    slices.Clone(t.onConnect),
		onDisconnect: slices.Clone(t.onDisconnect),
	}
	for k, v := range t.kinds {
		c.kinds[k] = v
	}
	return c
}

func (a *Agent) updateHandlers(fn func(*handlerTable) error) error {
	a.hmu.Lock()
	defer a.hmu.Unlock()
	t := a.handlers.Load().clone()
	if err := fn(t); err != nil {
		return err
	}
	a.handlers.Store(t)
	return nil
}

// On registers h for messages of type T, under the wire name T.Kind(), and
// registers T's decoder. It panics if the kind already has a handler (a
// programming error, as with net/http's HandleFunc); use [OnSafely] to get
// an error instead. Handlers may be added before or after Start.
func On[T messages.Message](a *Agent, h Handler[T]) {
	if err := OnSafely(a, h); err != nil {
		panic(err)
	}
}

// OnSafely is [On] returning an error instead of panicking.
func OnSafely[T messages.Message](a *Agent, h Handler[T]) error {
	if h == nil {
		return fmt.Errorf("agent: nil handler")
	}
	kind, err := messages.Register[T](a.registry)
	if err != nil {
		return err
	}
	e := &handlerEntry{kind: kind, dispatch: func(ctx Context, body []byte) error {
		msg, err := messages.DecodeAs[T](body)
		if err != nil {
			return decodeError{err}
		}
		return h(ctx, msg)
	}}
	return a.updateHandlers(func(t *handlerTable) error {
		if _, dup := t.kinds[kind]; dup {
			return fmt.Errorf("%w: %q", ErrDuplicateHandler, kind)
		}
		t.kinds[kind] = e
		return nil
	})
}

// OnConnect registers fn to run (in the actor) whenever an agent joins the
// workspace as seen from this one (including every agent already there
// when this one joins); ctx.Sender() is that agent too. It reports
// membership, not connections (see the package documentation).
func (a *Agent) OnConnect(fn func(ctx Context, who AgentDetail)) {
	_ = a.updateHandlers(func(t *handlerTable) error {
		t.onConnect = append(t.onConnect, fn)
		return nil
	})
}

// OnDisconnect registers fn to run (in the actor) whenever an agent leaves
// the workspace as seen from this one: it said goodbye, its connection to
// this agent (or to the admin that lists it) was gone for longer than the
// leave grace, or it restarted (then OnConnect follows).
func (a *Agent) OnDisconnect(fn func(ctx Context, who AgentDetail)) {
	_ = a.updateHandlers(func(t *handlerTable) error {
		t.onDisconnect = append(t.onDisconnect, fn)
		return nil
	})
}

// RegisterKind registers T's decoder with the agent without a handler, so
// that replies of type T to [Agent.Request] can be decoded.
func RegisterKind[T messages.Message](a *Agent) error {
	_, err := messages.Register[T](a.registry)
	return err
}
