package agent

import "github.com/asynkron/protoactor-go/actor"

// dispatcher runs an agent's mailbox on one long-lived goroutine.
// protoactor's default dispatcher starts a new goroutine each time a
// mailbox goes from idle to busy, and every new goroutine grows its stack
// again through the handlers' deep calls: that was a fifth of a busy
// worker's CPU. Messages still run one at a time, in order.
type dispatcher struct {
	work chan func()
	done chan struct{}
}

var _ actor.Dispatcher = (*dispatcher)(nil)

// dispatcherThroughput is how many messages a mailbox handles before it
// yields the goroutine (protoactor's default).
const dispatcherThroughput = 300

func newDispatcher() *dispatcher {
	d := &dispatcher{work: make(chan func(), 1), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) run() {
	for {
		select {
		case fn := <-d.work:
			fn()
		case <-d.done:
			return
		}
	}
}

// Schedule implements actor.Dispatcher. After stop, it falls back to a
// goroutine of its own (a message racing the actor's end).
func (d *dispatcher) Schedule(fn func()) {
	select {
	case d.work <- fn:
	case <-d.done:
		go fn()
	}
}

// Throughput implements actor.Dispatcher.
func (d *dispatcher) Throughput() int { return dispatcherThroughput }

// stop ends the goroutine; call once the actor has stopped.
func (d *dispatcher) stop() { close(d.done) }
