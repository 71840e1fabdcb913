package agent

import (
	"context"
	"errors"
	"fmt"
)

// ErrCallPanicked is what Call and CallDeferred return when their
// function panicked in the actor (the panic is logged and counted like a
// handler's; the agent lives on).
var ErrCallPanicked = errors.New("agent: call panicked")

type callResult[T any] struct {
	v   T
	err error
}

// Call runs fn in a's actor, after the messages already queued, and waits
// for its answer, ctx or a's stop. It is how code outside the actor reads
// and changes state the actor owns (a role's tables, say) without locks.
// It must not be called from inside the actor (it would wait for itself).
// fn does not run if ctx has ended by the time the actor gets to it; if ctx
// ends while fn runs, its effects stay and the caller gets ctx's error.
func Call[T any](ctx context.Context, a *Agent, fn func() (T, error)) (T, error) {
	return CallDeferred(ctx, a, func(reply func(T, error)) { reply(fn()) })
}

// CallDeferred is [Call] for work whose answer comes later (after a journal
// commit, say): fn runs in the actor and gets a reply function to call
// exactly once, from the actor or from anywhere else.
func CallDeferred[T any](ctx context.Context, a *Agent, fn func(reply func(T, error))) (T, error) {
	var zero T
	if err := a.started(); err != nil {
		return zero, err
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	ch := make(chan callResult[T], 1)
	reply := func(v T, err error) {
		select {
		case ch <- callResult[T]{v, err}:
		default: // answered already
		}
	}
	posted := a.Post(func() {
		if ctx.Err() != nil {
			return // the caller has left: do not act for it
		}
		defer func() {
			if r := recover(); r != nil {
				reply(zero, fmt.Errorf("%w: %v", ErrCallPanicked, r))
				panic(r) // the actor logs and counts it
			}
		}()
		fn(reply)
	})
	if posted != nil {
		return zero, posted
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-a.Done():
		return zero, ErrStopped
	}
}
