package peer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// outStream is the stream this node writes to one peer. Senders append
// frames to buf; one writer goroutine swaps buf out and writes it whenever
// it is not empty, so frames that queue up while a write is in progress go
// out together in the next write.
type outStream struct {
	n     *Node
	peer  ID
	s     network.Stream
	limit int

	mu    sync.Mutex
	buf   []byte
	spare []byte
	err   error         // sticky: once set, enqueue fails with it
	space chan struct{} // closed when buf is taken, if senders wait

	wake     chan struct{} // capacity 1: buf became non-empty
	stop     chan struct{} // closed to ask the writer for a final flush
	stopOnce sync.Once
	done     chan struct{} // closed when the writer has exited
	lastUse  atomic.Int64  // unix nanos of the last enqueue
}

func newOutStream(n *Node, p ID, s network.Stream) *outStream {
	o := &outStream{
		n: n, peer: p, s: s, limit: n.cfg.sendQueue,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	o.lastUse.Store(time.Now().UnixNano())
	return o
}

// enqueue appends one frame, blocking while the queue is over its limit.
// A frame larger than the limit is accepted into an empty queue.
func (o *outStream) enqueue(ctx context.Context, lim *limit, typ byte, payload []byte) error {
	need := binary.MaxVarintLen64 + 1 + len(payload)
	o.mu.Lock()
	for o.err == nil && len(o.buf) > 0 && len(o.buf)+need > o.limit {
		if o.space == nil {
			o.space = make(chan struct{})
		}
		ch := o.space
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("peer: send to %s: queue full: %w", o.peer, ctx.Err())
		case <-lim.c():
			return fmt.Errorf("peer: send to %s: queue full: %w", o.peer, ErrTimeout)
		}
		o.mu.Lock()
	}
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return err
	}
	wasEmpty := len(o.buf) == 0
	o.buf = appendFrame(o.buf, typ, payload)
	o.mu.Unlock()
	o.lastUse.Store(time.Now().UnixNano())
	if wasEmpty {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// run is the writer goroutine.
func (o *outStream) run() {
	defer close(o.done)
	for {
		select {
		case <-o.wake:
			// Let runnable senders (other requesters, the actor working
			// through its mailbox) add their frames first: one write of
			// many frames costs far less than many writes of one.
			o.gather()
			if !o.flush() {
				return
			}
		case <-o.stop:
			o.flush()
			return
		}
	}
}

// gather yields to runnable senders while they keep adding to the queue
// (a few times at most), so a burst in progress goes out in one write.
func (o *outStream) gather() {
	last := -1
	for range maxGatherYields {
		o.mu.Lock()
		n := len(o.buf)
		o.mu.Unlock()
		if n == last || n >= o.limit/2 {
			return
		}
		last = n
		runtime.Gosched()
	}
}

const maxGatherYields = 4

// flush writes until the queue is empty. It reports false after a write
// error, which ends the stream.
func (o *outStream) flush() bool {
	for {
		o.mu.Lock()
		if healthy := o.err == nil || o.err == ErrClosed || o.err == errRetired; len(o.buf) == 0 || !healthy {
			o.mu.Unlock()
			return healthy
		}
		b := o.buf
		o.buf = o.spare[:0]
		if o.space != nil {
			close(o.space)
			o.space = nil
		}
		o.mu.Unlock()

		_, err := o.s.Write(b)
		o.n.stats.framesOutBytes(len(b))
		o.spare = b[:0]
		if err != nil {
			o.n.cfg.logger.Debug("direct stream failed", "peer", o.peer, "err", err)
			o.fail(fmt.Errorf("%w: %s: %w", ErrStreamClosed, o.peer, err))
			_ = o.s.Reset()
			o.n.dropOut(o)
			return false
		}
	}
}

// errRetired is the error of an idle stream the janitor closed.
var errRetired = errors.New("peer: idle stream retired")

// fail makes every later enqueue fail with err and wakes blocked senders.
func (o *outStream) fail(err error) {
	o.mu.Lock()
	if o.err == nil || o.err == ErrClosed || o.err == errRetired {
		o.err = err
	}
	if o.space != nil {
		close(o.space)
		o.space = nil
	}
	o.buf = nil
	o.mu.Unlock()
}

// close flushes what is queued (after a bye frame when bye is set: this
// node is leaving the workspace), half-closes the stream and waits (up to
// wait) for the peer to close its end, so the peer has read everything
// before the connection goes away.
//
// Later enqueues fail with reason: ErrClosed when the node closes,
// errRetired when the janitor retires an idle stream (the sender then opens
// a new one).
func (o *outStream) close(wait time.Duration, reason error, bye bool) {
	o.mu.Lock()
	if o.err == nil {
		if bye { // the writer's final flush sends it
			o.buf = appendFrame(o.buf, frameBye, nil)
		}
		o.err = reason
	}
	if o.space != nil {
		close(o.space)
		o.space = nil
	}
	o.mu.Unlock()
	// A peer that stopped reading must not hold Close: the final flush gets
	// the same bounded time as the goodbye.
	_ = o.s.SetWriteDeadline(time.Now().Add(wait))
	o.stopOnce.Do(func() { close(o.stop) })
	<-o.done
	if err := o.s.CloseWrite(); err != nil {
		_ = o.s.Reset()
		return
	}
	_ = o.s.SetReadDeadline(time.Now().Add(wait))
	_, _ = io.Copy(io.Discard, o.s)
	_ = o.s.Close()
}

// kill resets the stream without flushing and tells the writer to exit;
// it does not wait.
func (o *outStream) kill(err error) {
	o.fail(err)
	_ = o.s.Reset()
	o.stopOnce.Do(func() { close(o.stop) })
}
