package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func errUnknownAgent(id string, err error) error {
	return fmt.Errorf("%w: %q: %v", ErrUnknownAgent, id, err)
}

// Send delivers msg to the agent with the given ID over a direct stream;
// no other agent sees it. It returns once the message is queued for the
// peer (blocking while the peer's queue is full, until ctx ends). Delivery
// is in order per sender and receiver, but not acknowledged: use
// [Agent.Request] or an application ack when the sender must know.
//
// Called with a handler's [Context], Send blocks at most [ActorSendBudget]
// whatever that context's deadline, as [Agent.SendBounded] does: a handler
// runs in the actor, and one slow peer must not stall it.
func (a *Agent) Send(ctx context.Context, to string, msg messages.Message) error {
	if err := a.started(); err != nil {
		return err
	}
	pid, err := a.resolve(to)
	if err != nil {
		return err
	}
	if d, ok := ctx.(*delivery); ok && d.a == a {
		return a.sendBounded(pid, msg, 0)
	}
	return a.send(ctx, pid, msg, 0)
}

// SendBounded sends msg to the agent with peer ID to, blocking at most
// [ActorSendBudget] (a full queue to a slow peer, or opening a stream). It
// is the send for code that runs in the actor (handlers, [Agent.Post],
// [Agent.After], [Agent.Every]): the actor serves every peer, so one peer
// must not stall it. An error means the message was not queued.
func (a *Agent) SendBounded(to peer.ID, msg messages.Message) error {
	return a.sendBounded(to, msg, 0)
}

// Broadcast publishes msg to every agent of the workspace (GossipSub;
// best-effort, see [peer.Node.Publish]). The agent does not receive its
// own broadcasts.
func (a *Agent) Broadcast(ctx context.Context, msg messages.Message) error {
	if err := a.started(); err != nil {
		return err
	}
	bp, err := a.encode(msg, 0)
	if err != nil {
		return err
	}
	defer bufPool.Put(bp)
	if err := a.network().Publish(ctx, *bp); err != nil {
		return err
	}
	a.stats.broadcasts.Add(1)
	return nil
}

// Request sends msg to the agent with the given ID and waits for the
// handler there to answer with [Context.Reply]. The reply's kind must be
// registered with this agent (a handler for it, or [RegisterKind]).
func (a *Agent) Request(ctx context.Context, to string, msg messages.Message) (messages.Message, error) {
	p, err := a.StartRequest(ctx, to, msg)
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx)
}

// StartRequest is the first half of [Agent.Request]: it sends msg and
// returns once msg is queued for the network, without waiting for the
// answer, which [PendingReply.Wait] then waits for. Requests started one
// after another from one goroutine reach their agent in that order, and
// any number may be in flight at once (a producer pipelining its
// submissions, like a JetStream async publish).
func (a *Agent) StartRequest(ctx context.Context, to string, msg messages.Message) (*PendingReply, error) {
	if err := a.started(); err != nil {
		return nil, err
	}
	pid, err := a.resolve(to)
	if err != nil {
		return nil, err
	}
	id := a.seq.Add(1)
	ch := a.replies.expect(id, pid)
	if err := a.sendID(ctx, pid, msg, id, 0, 0); err != nil {
		a.replies.cancel(id)
		return nil, err
	}
	return &PendingReply{a: a, id: id, ch: ch}, nil
}

// PendingReply is the answer to a request sent with [Agent.StartRequest],
// still to come. It is for one goroutine at a time.
type PendingReply struct {
	a    *Agent
	id   uint64
	ch   chan replyResult
	done bool // res holds the answer (or why there is none)
	res  replyResult
}

// Wait waits for the answer, as [Agent.Request] does: it fails when ctx
// ends (the answer is then dropped when it comes), when the peer's
// connection is lost, or when the agent stops. Once it has returned, it
// returns the same again.
func (p *PendingReply) Wait(ctx context.Context) (messages.Message, error) {
	if p.done {
		return p.res.msg, p.res.err
	}
	select {
	case r := <-p.ch:
		p.done, p.res = true, r
	case <-ctx.Done():
		p.a.replies.cancel(p.id)
		p.done, p.res = true, replyResult{err: ctx.Err()}
	}
	return p.res.msg, p.res.err
}

// Cancel forgets a request whose answer nobody will wait for; a Wait
// after it fails with context.Canceled.
func (p *PendingReply) Cancel() {
	p.a.replies.cancel(p.id)
	if !p.done {
		p.done, p.res = true, replyResult{err: context.Canceled}
	}
}

func (a *Agent) send(ctx context.Context, pid peer.ID, msg messages.Message, replyTo uint64) error {
	return a.sendID(ctx, pid, msg, a.seq.Add(1), replyTo, 0)
}

// envelopeOverhead bounds what an envelope adds to a message body (IDs,
// kind, sender, time).
const envelopeOverhead = 512

// MaxMessageSize is the largest message body a direct send can carry: the
// node's frame limit less the envelope (0 before Start). A larger one
// fails with peer.ErrFrameTooLarge.
func (a *Agent) MaxMessageSize() int {
	node := a.network()
	if node == nil {
		return 0
	}
	return node.MaxFrameSize() - envelopeOverhead
}

// ActorSendBudget bounds how long a send from inside the actor may block
// (see [Agent.SendBounded]).
const ActorSendBudget = 2 * time.Second

func (a *Agent) sendBounded(pid peer.ID, msg messages.Message, replyTo uint64) error {
	return a.sendID(a.ctx, pid, msg, a.seq.Add(1), replyTo, ActorSendBudget)
}

// sendID encodes msg as envelope id and sends it to pid (or to the agent
// itself). With within > 0 the send blocks at most that long (and ignores
// ctx), as sends from the actor must.
func (a *Agent) sendID(ctx context.Context, pid peer.ID, msg messages.Message, id, replyTo uint64, within time.Duration) error {
	if err := a.started(); err != nil {
		return err
	}
	bp, err := a.encodeID(msg, id, replyTo)
	if err != nil {
		return err
	}
	defer bufPool.Put(bp)
	node := a.network()
	if pid == node.ID() {
		return a.sendSelf(*bp)
	}
	if within > 0 {
		err = node.SendWithin(pid, *bp, within)
	} else {
		err = node.Send(ctx, pid, *bp)
	}
	if err != nil {
		return err
	}
	a.stats.sent.Add(1)
	return nil
}

// sendSelf posts an encoded envelope to the agent's own mailbox (decoded
// from a copy, so sender and handler never share a value), or to the
// Request waiting for it.
func (a *Agent) sendSelf(data []byte) error {
	env, err := messages.DecodeEnvelope(append([]byte(nil), data...))
	if err != nil {
		return err
	}
	a.stats.sent.Add(1)
	self := a.network().ID()
	if env.ReplyTo != 0 && a.replies.deliver(a, self, env, a.self) {
		return nil
	}
	a.system.Root.Send(a.pid, &delivery{Context: a.ctx, a: a, from: self, sender: a.self, env: env})
	return nil
}

func (a *Agent) encode(msg messages.Message, replyTo uint64) (*[]byte, error) {
	return a.encodeID(msg, a.seq.Add(1), replyTo)
}

// encodeID encodes msg into an envelope in a pooled buffer; the caller
// returns it to bufPool.
func (a *Agent) encodeID(msg messages.Message, id, replyTo uint64) (*[]byte, error) {
	scratch := bufPool.Get().(*[]byte)
	defer bufPool.Put(scratch)
	body, err := messages.AppendMarshal((*scratch)[:0], msg)
	*scratch = body
	if err != nil {
		return nil, err
	}
	env := messages.Envelope{ID: id, ReplyTo: replyTo, Kind: msg.Kind(), From: a.self.ID, SentAt: time.Now(), Body: body}
	bp := bufPool.Get().(*[]byte)
	*bp = env.AppendEncode((*bp)[:0])
	return bp, nil
}

// replyTable routes replies to the Request calls waiting for them, without
// going through the actor (the reply is for the caller, not the agent).
type replyTable struct {
	mu      sync.Mutex
	waiting map[uint64]pendingReply
}

// pendingReply is a Request waiting for its answer from one peer.
type pendingReply struct {
	ch   chan replyResult
	from peer.ID
}

type replyResult struct {
	msg messages.Message
	err error
}

func (t *replyTable) init() { t.waiting = make(map[uint64]pendingReply) }

func (t *replyTable) expect(id uint64, from peer.ID) chan replyResult {
	ch := make(chan replyResult, 1)
	t.mu.Lock()
	t.waiting[id] = pendingReply{ch: ch, from: from}
	t.mu.Unlock()
	return ch
}

func (t *replyTable) cancel(id uint64) {
	t.mu.Lock()
	delete(t.waiting, id)
	t.mu.Unlock()
}

// deliver hands a reply to its waiting Request — only if it comes from
// the peer the request went to. It reports false when no Request waits for
// it, so the reply goes to the actor like any message.
func (t *replyTable) deliver(a *Agent, pid peer.ID, env messages.Envelope, from AgentDetail) bool {
	t.mu.Lock()
	p, ok := t.waiting[env.ReplyTo]
	if ok && p.from == pid {
		delete(t.waiting, env.ReplyTo)
	}
	t.mu.Unlock()
	if !ok || p.from != pid {
		return false
	}
	ch := p.ch
	msg, err := a.registry.Decode(env.Kind, env.Body)
	if err != nil {
		a.stats.droppedBad.Add(1)
		err = fmt.Errorf("%w from %s: %w", ErrBadReply, from, err)
	} else {
		a.stats.received.Add(1)
	}
	ch <- replyResult{msg: msg, err: err}
	return true
}

// failPeer ends the Requests waiting for pid with err.
func (t *replyTable) failPeer(pid peer.ID, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, p := range t.waiting {
		if p.from == pid {
			p.ch <- replyResult{err: err}
			delete(t.waiting, id)
		}
	}
}

func (t *replyTable) failAll(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, p := range t.waiting {
		p.ch <- replyResult{err: err}
		delete(t.waiting, id)
	}
}
