package agent

import "context"

type callResult[T any] struct {
	v   T
	err error
}

// call runs fn in a's actor and waits for its answer, ctx or a's stop. It
// is how public methods of actor-owned roles read and change their state.
// It must not be called from inside the actor. fn does not run if ctx has
// ended by the time the actor gets to it; if ctx ends while fn runs, its
// effects stay and the caller gets ctx's error.
func call[T any](ctx context.Context, a *Agent, fn func() (T, error)) (T, error) {
	return callDeferred(ctx, a, func(reply func(T, error)) { reply(fn()) })
}

// callDeferred is call for work whose answer comes later (after a journal
// commit, say): fn gets a reply function to call exactly once, in the actor.
func callDeferred[T any](ctx context.Context, a *Agent, fn func(reply func(T, error))) (T, error) {
	var zero T
	if err := a.started(); err != nil {
		return zero, err
	}
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	ch := make(chan callResult[T], 1)
	a.exec(func() {
		if ctx.Err() != nil {
			return // the caller has left: do not act for it
		}
		fn(func(v T, err error) { ch <- callResult[T]{v, err} })
	})
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	case <-a.Done():
		return zero, ErrStopped
	}
}
