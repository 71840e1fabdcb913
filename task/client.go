package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"go.opentelemetry.io/otel/trace"
)

// Client submits tasks to a workspace's task manager from any member: a
// producer on another machine, with no HTTP port and no broker between.
// Build it on an agent of yours that joins the workspace (WithJoin or
// WithBootstrap) before that agent starts; it talks to the first task
// manager (admin) the agent meets, over direct streams.
//
// A submit returns once the manager holds the tasks durably (journaled,
// when it keeps a journal); refused tasks come back as the manager's named
// errors ([ErrDuplicateTask], [ErrTaskTooLarge], …; errors.Is works). A
// submit that failed in transit may be repeated: the same task (same ID,
// same content) is accepted once. At most WithClientInFlight requests are
// outstanding at once; past that, calls wait (flow control), and the
// manager's own per-peer mailbox bound pushes back on a fast producer.
type Client struct {
	a      *agent.Agent
	sem    chan struct{}
	tracer trace.Tracer

	mu         sync.Mutex
	manager    peer.ID
	found      chan struct{}        // closed once a manager is known
	admins     map[peer.ID]struct{} // the managers present that the client trusts
	replicated bool                 // a standby has answered: follow the leader
	grants     [][]byte             // handed to each manager before the first request
	presented  map[peer.ID]bool     // the managers that have them

	queue   chan asyncSubmit // SubmitAsync's tasks, for sendQueued
	batcher sync.Once
}

// ClientOption configures a [Client].
type ClientOption func(*clientConfig) error

type clientConfig struct {
	inFlight int
	tracer   trace.Tracer
	grants   [][]byte
}

// WithClientGrants gives the client its grants (from IssueGrant: a
// producer's, a viewer's, an operator's), handed to each manager before
// the first request to it; renew them with SetGrants.
func WithClientGrants(grants ...[]byte) ClientOption {
	return func(c *clientConfig) error {
		if len(grants) > messages.MaxGrantsPresented {
			return fmt.Errorf("%w: %d grants (at most %d)", ErrBadGrant, len(grants), messages.MaxGrantsPresented)
		}
		c.grants = slices.Clone(grants)
		return nil
	}
}

// WithClientTracerProvider sends the client's submit spans to tp
// (default: otel's global provider).
func WithClientTracerProvider(tp trace.TracerProvider) ClientOption {
	return func(c *clientConfig) error {
		if tp == nil {
			return errors.New("task: nil tracer provider")
		}
		c.tracer = tracerOf(tp)
		return nil
	}
}

// DefaultClientInFlight is how many requests a Client has outstanding at
// most, by default.
const DefaultClientInFlight = 64

// WithClientInFlight bounds the client's outstanding requests (default
// [DefaultClientInFlight]).
func WithClientInFlight(n int) ClientOption {
	return func(c *clientConfig) error {
		if n < 1 {
			return errors.New("task: client in-flight bound must be at least 1")
		}
		c.inFlight = n
		return nil
	}
}

// NewClient makes a a producer for its workspace's task manager. a must
// not have started yet.
func NewClient(a *agent.Agent, opts ...ClientOption) (*Client, error) {
	if a == nil {
		return nil, errors.New("task: nil agent")
	}
	cfg := clientConfig{inFlight: DefaultClientInFlight}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.tracer == nil {
		cfg.tracer = tracerOf(nil)
	}
	c := &Client{a: a, tracer: cfg.tracer, grants: cfg.grants, presented: map[peer.ID]bool{}, sem: make(chan struct{}, cfg.inFlight), found: make(chan struct{}), queue: make(chan asyncSubmit, 4*messages.MaxSubmitBatch)}
	for _, err := range []error{
		agent.RegisterKind[messages.SubmitReply](a), agent.RegisterKind[messages.WaitReply](a),
		agent.RegisterKind[messages.StatusReply](a), agent.RegisterKind[messages.CancelReply](a),
		agent.RegisterKind[messages.AdminReply](a), agent.RegisterKind[messages.GrantReply](a),
	} {
		if err != nil {
			return nil, err
		}
	}
	c.admins = map[peer.ID]struct{}{}
	a.OnConnect(func(ctx agent.Context, who agent.AgentDetail) {
		if who.Mode != agent.Admin || !a.JoinedThrough(ctx.SenderID()) {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.admins[ctx.SenderID()] = struct{}{}
		if c.manager == "" {
			c.setManager(ctx.SenderID())
		}
	})
	a.OnDisconnect(func(ctx agent.Context, _ agent.AgentDetail) {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.admins, ctx.SenderID())
		delete(c.presented, ctx.SenderID()) // a manager forgets grants with the connection
		if c.manager == ctx.SenderID() {
			c.setManager(c.anotherAdmin(ctx.SenderID()))
		}
	})
	return c, nil
}

// setManager makes id the client's manager ("": none known; calls wait
// for one). c.mu must be held.
func (c *Client) setManager(id peer.ID) {
	switch {
	case id == "" && c.manager != "":
		c.found = make(chan struct{})
	case id != "" && c.manager == "":
		close(c.found)
	}
	c.manager = id
}

// anotherAdmin is a trusted manager other than not ("" if none); with
// several, each call moves on to the next, in ID order. c.mu must be held.
func (c *Client) anotherAdmin(not peer.ID) peer.ID {
	var ids []peer.ID
	for id := range c.admins {
		if id != not {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return ""
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id > not {
			return id
		}
	}
	return ids[0]
}

// follow moves the client on from a manager that is not the leader (or did
// not answer): to the leader it named (a manager the client trusts vouches
// for the leader of its group, so a client that joined one standby reaches
// the leader too), or else to the next manager it knows.
func (c *Client) follow(from peer.ID, leader string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replicated = true
	if c.manager != from {
		return // moved on already
	}
	if id, err := peer.ParseID(leader); err == nil && id != from {
		c.admins[id] = struct{}{}
		c.setManager(id)
		return
	}
	if leader == "" && !c.a.JoinedThrough(from) {
		delete(c.admins, from) // a leader it was told of, gone: it is not vouched for any more
	}
	if next := c.anotherAdmin(from); next != "" {
		c.setManager(next)
	}
}

// Agent returns the client's agent.
func (c *Client) Agent() *agent.Agent { return c.a }

// Manager waits until the client knows its task manager, and returns its
// ID; [ErrNoManager] if ctx ends first.
func (c *Client) Manager(ctx context.Context) (peer.ID, error) {
	for {
		c.mu.Lock()
		mgr, found := c.manager, c.found
		c.mu.Unlock()
		if mgr != "" {
			return mgr, nil
		}
		select {
		case <-found:
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", ErrNoManager, ctx.Err())
		case <-c.a.Done():
			return "", agent.ErrStopped
		}
	}
}

// request sends msg to the manager and waits for its reply, within the
// in-flight bound.
func (c *Client) request(ctx context.Context, msg messages.Message) (messages.Message, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	return c.ask(ctx, msg)
}

// ask is request for a caller that holds a place in the in-flight bound.
// Among replicated managers it follows the leader: a standby's refusal
// (ErrNotLeader), or a leader that left or failed to answer, sends the
// request again to the leader (or the next manager), until ctx ends.
// Every request can be repeated: a task submitted twice is accepted once.
func (c *Client) ask(ctx context.Context, msg messages.Message) (messages.Message, error) {
	return c.askStarted(ctx, msg, nil)
}

// sentRequest is ask's first attempt at a request, made by start: sent
// to mgr, its answer to come, or failed to send (err).
type sentRequest struct {
	mgr   peer.ID
	reply *agent.PendingReply
	err   error
}

// start makes ask's first attempt at msg and returns once msg is queued
// (or failed to be): what is started in order reaches the manager in that
// order. It fails, as ask would at once, when there is no manager to ask
// or it refused the client's grants.
func (c *Client) start(ctx context.Context, msg messages.Message) (*sentRequest, error) {
	mgr, err := c.Manager(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.present(ctx, mgr); err != nil {
		return nil, err
	}
	p, err := c.a.StartRequest(ctx, mgr.String(), msg)
	return &sentRequest{mgr: mgr, reply: p, err: err}, nil
}

// askStarted is ask whose first attempt, when first is not nil, is a
// request already sent.
func (c *Client) askStarted(ctx context.Context, msg messages.Message, first *sentRequest) (messages.Message, error) {
	pause := 10 * time.Millisecond
	for {
		var mgr peer.ID
		var rep messages.Message
		var err error
		if first != nil {
			mgr, err = first.mgr, first.err
			if err == nil {
				rep, err = first.reply.Wait(ctx)
			}
			first = nil
		} else {
			mgr, err = c.Manager(ctx)
			if err != nil {
				return nil, err
			}
			if err := c.present(ctx, mgr); err != nil {
				return nil, err
			}
			rep, err = c.a.Request(ctx, mgr.String(), msg)
		}
		switch leader, standby := notLeader(rep); {
		case err == nil && !standby:
			return rep, nil
		case err == nil:
			c.follow(mgr, leader)
		case ctx.Err() != nil || !c.isReplicated() || errors.Is(err, agent.ErrBadReply) ||
			errors.Is(err, peer.ErrFrameTooLarge) || errors.Is(err, agent.ErrStopped):
			return nil, err // another manager would not do better
		default:
			c.follow(mgr, "")
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%w: no leading manager answered: %w", ErrNotLeader, ctx.Err())
			}
			return nil, err
		case <-time.After(pause):
		}
		pause = min(2*pause, 500*time.Millisecond)
	}
}

func (c *Client) isReplicated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replicated || len(c.admins) > 1
}

// notLeader reports a reply from a standby manager (or from a leader that
// lost the lead before it could commit), with the leader it named.
func notLeader(rep messages.Message) (leader string, standby bool) {
	var outs []messages.Outcome
	switch r := rep.(type) {
	case messages.SubmitReply:
		outs = append(slices.Clip(r.Outcomes), r.Refused)
	case messages.WaitReply:
		outs = []messages.Outcome{r.Outcome}
	case messages.StatusReply:
		outs = []messages.Outcome{r.Outcome}
	case messages.CancelReply:
		outs = []messages.Outcome{r.Outcome}
	case messages.AdminReply:
		outs = []messages.Outcome{r.Outcome}
	case messages.GraphSubmitted: // the playground's, on the manager's agent
		outs = []messages.Outcome{r.Outcome}
	case messages.GraphResult:
		outs = []messages.Outcome{r.Outcome}
	}
	for _, o := range outs {
		if o.Code == messages.CodeNotLeader {
			return o.Leader, true
		}
	}
	return "", false
}

// Submit hands one task to the manager and returns once it holds it
// durably.
func (c *Client) Submit(ctx context.Context, t messages.Task) error {
	ctx, span := c.tracer.Start(ctx, SpanSubmit, trace.WithSpanKind(trace.SpanKindProducer), taskAttrs(t.ID, t.Type))
	err := c.SubmitAll(ctx, []messages.Task{t})
	endSpan(span, err)
	return err
}

// SubmitAll hands tasks to the manager, in batches that fit one message
// (at most [messages.MaxSubmitBatch] tasks), and returns once it holds
// them durably. Each task is checked here first (Validate, and its size:
// one too large for a frame fails with [ErrTaskTooLarge] without being
// sent). The error joins the refusals of single tasks (each names its
// task and wraps the sentinel); the other tasks are accepted.
func (c *Client) SubmitAll(ctx context.Context, tasks []messages.Task) error {
	var errs []error
	limit := c.a.MaxMessageSize() - batchSlack
	var batch []messages.Task
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		refused, err := c.submitBatch(ctx, batch)
		errs = append(errs, refused...)
		batch, size = nil, 0
		return err
	}
	for _, t := range tasks {
		if err := t.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("task %q: %w", t.ID, err))
			continue
		}
		n := t.Msgsize()
		if n > limit {
			errs = append(errs, fmt.Errorf("task %q: %w: %d bytes encoded, a message carries %d", t.ID, ErrTaskTooLarge, n, limit))
			continue
		}
		if size+n > limit || len(batch) == messages.MaxSubmitBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		batch = append(batch, t)
		size += n
	}
	if err := flush(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// batchSlack is room left in a message for the request's own framing.
const batchSlack = 1 << 10

// submitBatch sends one SubmitRequest; it returns the refusals of single
// tasks, and an error when the request as a whole failed.
func (c *Client) submitBatch(ctx context.Context, batch []messages.Task) ([]error, error) {
	var traces []string
	if tp := traceparentOf(ctx); tp != "" {
		traces = make([]string, len(batch))
		for i := range traces {
			traces[i] = tp
		}
	}
	per, err := c.submitBatchOutcomes(ctx, batch, traces, c.request)
	if err != nil {
		return nil, err
	}
	var refused []error
	for i, e := range per {
		if e != nil {
			refused = append(refused, fmt.Errorf("task %q: %w", batch[i].ID, e))
		}
	}
	return refused, nil
}

// submitBatchOutcomes sends one SubmitRequest and returns each task's
// refusal (nil: accepted), in order.
func (c *Client) submitBatchOutcomes(ctx context.Context, batch []messages.Task, traces []string,
	send func(context.Context, messages.Message) (messages.Message, error)) ([]error, error) {
	rep, err := send(ctx, messages.SubmitRequest{Tasks: batch, Traces: traces})
	if err != nil {
		return nil, fmt.Errorf("task: submit: %w", err)
	}
	r, ok := rep.(messages.SubmitReply)
	if !ok {
		return nil, fmt.Errorf("task: submit: %w: reply of kind %s", ErrRemote, rep.Kind())
	}
	if err := outcomeErr(r.Refused); err != nil {
		return nil, fmt.Errorf("task: submit: %w", err)
	}
	if len(r.Outcomes) != len(batch) {
		return nil, fmt.Errorf("task: submit: %w: %d outcomes for %d tasks", ErrRemote, len(r.Outcomes), len(batch))
	}
	per := make([]error, len(batch))
	for i, o := range r.Outcomes {
		per[i] = outcomeErr(o)
	}
	return per, nil
}

// Wait waits for a task's result (the manager answers once the task is
// final).
func (c *Client) Wait(ctx context.Context, id string) (messages.TaskResult, error) {
	rep, err := c.request(ctx, messages.WaitRequest{ID: id})
	if err != nil {
		return messages.TaskResult{}, fmt.Errorf("task: wait %q: %w", id, err)
	}
	r, ok := rep.(messages.WaitReply)
	if !ok {
		return messages.TaskResult{}, fmt.Errorf("task: wait %q: %w: reply of kind %s", id, ErrRemote, rep.Kind())
	}
	if err := outcomeErr(r.Outcome); err != nil {
		return messages.TaskResult{}, fmt.Errorf("task: wait %q: %w", id, err)
	}
	return r.Result, nil
}

// Run submits a task and waits for its result.
func (c *Client) Run(ctx context.Context, t messages.Task) (messages.TaskResult, error) {
	if err := c.Submit(ctx, t); err != nil {
		return messages.TaskResult{}, err
	}
	return c.Wait(ctx, t.ID)
}

// RemoteInfo is a task's state as the manager reports it to a client.
type RemoteInfo struct {
	Status          Status
	Attempt         int
	Worker          string
	Progress        float64
	ProgressMessage string
	// Result is set once the task is final.
	Result *messages.TaskResult
}

// Task returns a task's state now.
func (c *Client) Task(ctx context.Context, id string) (RemoteInfo, error) {
	rep, err := c.request(ctx, messages.StatusRequest{ID: id})
	if err != nil {
		return RemoteInfo{}, fmt.Errorf("task: status of %q: %w", id, err)
	}
	r, ok := rep.(messages.StatusReply)
	if !ok {
		return RemoteInfo{}, fmt.Errorf("task: status of %q: %w: reply of kind %s", id, ErrRemote, rep.Kind())
	}
	if err := outcomeErr(r.Outcome); err != nil {
		return RemoteInfo{}, fmt.Errorf("task: status of %q: %w", id, err)
	}
	st, err := ParseStatus(r.Status)
	if err != nil {
		return RemoteInfo{}, fmt.Errorf("task: status of %q: %w: %w", id, ErrRemote, err)
	}
	return RemoteInfo{Status: st, Attempt: r.Attempt, Worker: r.Worker, Progress: r.Progress, ProgressMessage: r.ProgressMessage, Result: r.Result}, nil
}

// Cancel cancels a task; it returns once the cancel is durable.
func (c *Client) Cancel(ctx context.Context, id string) error {
	rep, err := c.request(ctx, messages.CancelRequest{ID: id})
	if err != nil {
		return fmt.Errorf("task: cancel %q: %w", id, err)
	}
	r, ok := rep.(messages.CancelReply)
	if !ok {
		return fmt.Errorf("task: cancel %q: %w: reply of kind %s", id, ErrRemote, rep.Kind())
	}
	if err := outcomeErr(r.Outcome); err != nil {
		return fmt.Errorf("task: cancel %q: %w", id, err)
	}
	return nil
}

// SubmitAsync hands one task to the manager without waiting: it returns
// once the task is queued (waiting only while the client's queue is full:
// flow control), and the future resolves once the manager holds the task
// durably, or refused it. Queued tasks travel together, as many as fit
// one request, so one goroutine keeps the manager's group commit busy.
func (c *Client) SubmitAsync(ctx context.Context, t messages.Task) (*SubmitFuture, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("task %q: %w", t.ID, err)
	}
	if n, limit := t.Msgsize(), c.a.MaxMessageSize()-batchSlack; n > limit {
		return nil, fmt.Errorf("task %q: %w: %d bytes encoded, a message carries %d", t.ID, ErrTaskTooLarge, n, limit)
	}
	c.batcher.Do(func() { go c.sendQueued() })
	f := &SubmitFuture{id: t.ID, done: make(chan struct{})}
	select {
	case c.queue <- asyncSubmit{t, f, traceparentOf(ctx)}:
		return f, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("task: submit %q: waiting for room: %w", t.ID, ctx.Err())
	case <-c.a.Done():
		return nil, agent.ErrStopped
	}
}

// asyncSubmit is a task SubmitAsync queued, and its future.
type asyncSubmit struct {
	t     messages.Task
	f     *SubmitFuture
	trace string // the submit's context's traceparent
}

// sendQueued sends what SubmitAsync queues, as many tasks per request as
// fit, at most the in-flight bound of requests at once, until the agent
// stops (then what is still queued fails with agent.ErrStopped).
func (c *Client) sendQueued() {
	limit := c.a.MaxMessageSize() - batchSlack
	for {
		var first asyncSubmit
		select {
		case first = <-c.queue:
		case <-c.a.Done():
			for {
				select {
				case q := <-c.queue:
					q.f.resolve(agent.ErrStopped)
				default:
					return
				}
			}
		}
		batch, size := []asyncSubmit{first}, first.t.Msgsize()
	gather:
		for len(batch) < messages.MaxSubmitBatch {
			select {
			case q := <-c.queue:
				if size+q.t.Msgsize() > limit {
					c.sendBatch(batch)
					batch, size = nil, 0
				}
				batch = append(batch, q)
				size += q.t.Msgsize()
			default:
				break gather
			}
		}
		c.sendBatch(batch)
	}
}

// sendBatch sends one request for batch in the background (once there is
// room among the in-flight requests) and resolves its futures.
func (c *Client) sendBatch(batch []asyncSubmit) {
	select {
	case c.sem <- struct{}{}:
	case <-c.a.Done():
		for _, q := range batch {
			q.f.resolve(agent.ErrStopped)
		}
		return
	}
	tasks := make([]messages.Task, len(batch))
	var traces []string
	for i, q := range batch {
		tasks[i] = q.t
		if q.trace != "" && traces == nil {
			traces = make([]string, len(batch))
		}
		if traces != nil {
			traces[i] = q.trace
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(c.a.Context(), cancel)
	// The request is sent here, in the order SubmitAsync queued its
	// tasks, and answered in the background: batches in flight at once
	// reach the manager in order (a task ID submitted twice is the first
	// one's). Only a resend may overtake: among replicated managers, a
	// failed attempt is made again in the background, after a pause.
	first, startErr := c.start(ctx, messages.SubmitRequest{Tasks: tasks, Traces: traces})
	go func() {
		defer func() { <-c.sem }()
		defer cancel()
		defer stop()
		refused, err := c.submitBatchOutcomes(ctx, tasks, traces, func(ctx context.Context, msg messages.Message) (messages.Message, error) {
			if startErr != nil {
				return nil, startErr
			}
			return c.askStarted(ctx, msg, first)
		})
		for i, q := range batch {
			switch {
			case err != nil:
				q.f.resolve(fmt.Errorf("task: submit %q: %w", q.t.ID, err))
			case refused[i] != nil:
				q.f.resolve(fmt.Errorf("task: submit %q: %w", q.t.ID, refused[i]))
			default:
				q.f.resolve(nil)
			}
		}
	}()
}

// present hands the client's grants to mgr if it does not have them yet.
// Grants it refuses are logged; when it refuses every one, the request
// would be refused too: that is the error (ErrUnauthorized, and why).
func (c *Client) present(ctx context.Context, mgr peer.ID) error {
	c.mu.Lock()
	grants, done := c.grants, c.presented[mgr]
	c.mu.Unlock()
	if len(grants) == 0 || done {
		return nil
	}
	n, err := presentGrants(ctx, c.a, mgr, grants)
	if n == 0 && err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err != nil {
		c.a.Logger().Warn("task manager refused some grants", "err", err)
	}
	c.mu.Lock()
	c.presented[mgr] = true
	c.mu.Unlock()
	return nil
}

// SetGrants replaces the client's grants (renewal) and hands them to its
// manager now; it returns the manager's refusal of any of them.
func (c *Client) SetGrants(ctx context.Context, grants ...[]byte) error {
	if len(grants) > messages.MaxGrantsPresented {
		return fmt.Errorf("%w: %d grants (at most %d)", ErrBadGrant, len(grants), messages.MaxGrantsPresented)
	}
	c.mu.Lock()
	c.grants, c.presented = slices.Clone(grants), map[peer.ID]bool{}
	c.mu.Unlock()
	mgr, err := c.Manager(ctx)
	if err != nil {
		return err
	}
	_, err = presentGrants(ctx, c.a, mgr, grants)
	c.mu.Lock()
	c.presented[mgr] = true
	c.mu.Unlock()
	return err
}

// Request sends msg to the manager's agent and returns its reply, as the
// client's own calls do: within the in-flight bound, after handing over
// the client's grants, following the leader among replicated managers.
// It is for layers above the task manager that answer on its agent (the
// playground's remote producers); msg's reply kind must be registered on
// the client's agent (agent.RegisterKind) before it starts.
func (c *Client) Request(ctx context.Context, msg messages.Message) (messages.Message, error) {
	return c.request(ctx, msg)
}
