package testutil

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Context returns a context that ends after 30 s or with the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Cond is a condition variable for tests: record under its lock with
// Update, wait for a condition on what was recorded with Await.
type Cond struct {
	mu sync.Mutex
	ch chan struct{}
}

// NewCond returns a Cond.
func NewCond() *Cond { return &Cond{ch: make(chan struct{})} }

// Update runs fn under the lock and wakes every Await.
func (c *Cond) Update(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn()
	close(c.ch)
	c.ch = make(chan struct{})
}

// Await waits until ok (called under the lock) holds, failing the test
// after within.
func (c *Cond) Await(t testing.TB, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		c.mu.Lock()
		done, ch := ok(), c.ch
		c.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}

// Eventually polls cond for state that no event announces, failing the
// test after 10 s.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyShow(t, what, cond, nil)
}

// EventuallyShow is Eventually that adds show's account of the state to
// the failure.
func EventuallyShow(t testing.TB, what string, cond func() bool, show func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			if show != nil {
				t.Fatalf("timed out waiting for %s: %s", what, show())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Lock takes the lock Update and Await hold, to read what was recorded.
func (c *Cond) Lock() { c.mu.Lock() }

// Unlock releases the lock taken by Lock.
func (c *Cond) Unlock() { c.mu.Unlock() }
