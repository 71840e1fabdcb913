package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"go.opentelemetry.io/otel/trace"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// Job is one attempt of a task, as a processor sees it.
type Job struct {
	Task    messages.Task
	Attempt int
	// Inputs are the outputs of the task's dependencies, by task ID.
	Inputs map[string][]byte
	// Worker is the name of the worker running the job, Skill its skill.
	Worker string
	Skill  int

	mu       sync.Mutex
	children []messages.Task
	progress progressSender // nil outside a worker
}

// Spawn adds child tasks (fan-out). They go back with the result; what
// happens to them is up to the manager's user (the playground schedules
// them and completes the parent after them). A child without an ID gets
// "<parent>/<n>" (n counts this attempt's children from 0), one without a
// description its name or type; its Parent is the job's task.
func (j *Job) Spawn(tasks ...messages.Task) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range tasks {
		if c.ID == "" {
			c.ID = fmt.Sprintf("%s/%d", j.Task.ID, len(j.children))
		}
		if c.Description == "" {
			c.Description = c.Name
		}
		if c.Description == "" {
			c.Description = c.Type
		}
		c.Parent = j.Task.ID
		j.children = append(j.children, c)
	}
}

// DecodeInput decodes the task's Input (msgpack, as messages.MarshalValue
// writes it) into v, a pointer.
func (j *Job) DecodeInput(v any) error { return messages.Unmarshal(j.Task.Input, v) }

// DecodeDependency decodes the output of dependency id (or of a child task
// of a dependency) into v. A dependency that returned no output leaves v
// untouched; an id that is no dependency of the task fails with
// [ErrNotAnInput].
func (j *Job) DecodeDependency(id string, v any) error {
	out, ok := j.Inputs[id]
	if !ok || len(out) == 0 {
		if ok || slices.Contains(j.Task.Dependencies, id) {
			return nil // no output
		}
		return fmt.Errorf("%w: %q of %q", ErrNotAnInput, id, j.Task.ID)
	}
	return messages.Unmarshal(out, v)
}

// HandlerFunc processes one job and returns its output. It must return soon
// after ctx ends. An error wrapping [ErrSkipRetry] fails the task for good.
type HandlerFunc func(ctx context.Context, job *Job) ([]byte, error)

// WorkerOption configures a [Worker].
type WorkerOption func(*workerConfig) error

type workerConfig struct {
	skill       int
	caps        []string
	max         int
	heartbeat   time.Duration
	ackAfter    time.Duration
	cancelGrace time.Duration
	stopGrace   time.Duration
	watch       func(manager agent.AgentDetail, present bool)
	stopAfter   time.Duration
	tracer      trace.Tracer
	grants      [][]byte         // WithWorkerGrants, SetGrants (the actor's, once started)
	managers    map[peer.ID]bool // WithTrustedManagers (nil: whom it joined through)
}

// WithWorkerTracerProvider sends the worker's run spans to tp (default:
// otel's global provider). A run continues the trace its assignment
// carries; the handler's context holds the run span.
func WithWorkerTracerProvider(tp trace.TracerProvider) WorkerOption {
	return func(c *workerConfig) error {
		if tp == nil {
			return errors.New("task: nil tracer provider")
		}
		c.tracer = tracerOf(tp)
		return nil
	}
}

// WithStopGrace bounds how long Stop waits for processors that ignore
// their context's end (default 10 s).
func WithStopGrace(d time.Duration) WorkerOption {
	return func(c *workerConfig) error {
		if d <= 0 {
			return errors.New("task: stop grace must be positive")
		}
		c.stopGrace = d
		return nil
	}
}

// WithManagerWatch calls fn (in the worker's actor: keep it quick) when
// the worker adopts its manager (present true: at the start, and whenever
// the manager is back after it was lost) and when it loses it (present
// false: the manager left the workspace, said goodbye or was cut off for
// longer than the leave grace). The worker logs both too.
func WithManagerWatch(fn func(manager agent.AgentDetail, present bool)) WorkerOption {
	return func(c *workerConfig) error {
		if fn == nil {
			return errors.New("task: nil manager watch")
		}
		c.watch = fn
		return nil
	}
}

// WithStopWithoutManager stops the worker (Done closes) once its manager
// has been gone for d; by default a worker waits for its manager for
// ever, redialing it.
func WithStopWithoutManager(d time.Duration) WorkerOption {
	return func(c *workerConfig) error {
		if d <= 0 {
			return errors.New("task: stop delay must be positive")
		}
		c.stopAfter = d
		return nil
	}
}

// WithSkill sets the worker's skill, 1-10 (0: unrated).
func WithSkill(level int) WorkerOption {
	return func(c *workerConfig) error {
		if level < 0 || level > messages.MaxDifficulty {
			return fmt.Errorf("task: skill %d: %w", level, messages.ErrDifficultyRange)
		}
		c.skill = level
		return nil
	}
}

// WithCapabilities sets what the worker offers (e.g. "gpu", "high-memory").
func WithCapabilities(caps ...string) WorkerOption {
	return func(c *workerConfig) error { c.caps = append(c.caps, caps...); return nil }
}

// WithMaxConcurrency sets how many tasks the worker runs at once (default 1).
func WithMaxConcurrency(n int) WorkerOption {
	return func(c *workerConfig) error {
		if n < 1 {
			return errors.New("task: max concurrency must be at least 1")
		}
		c.max = n
		return nil
	}
}

// WithHeartbeatInterval sets how often the worker tells the manager it is
// alive (default 1 s; keep it well under the manager's heartbeat timeout).
func WithHeartbeatInterval(d time.Duration) WorkerOption {
	return func(c *workerConfig) error {
		if d <= 0 {
			return errors.New("task: heartbeat interval must be positive")
		}
		c.heartbeat = d
		return nil
	}
}

// WithAckAfter sets how long an attempt runs before the worker
// acknowledges it on its own (default 500 ms; heartbeats acknowledge what
// they list in between). Keep it well under the manager's ack timeout.
func WithAckAfter(d time.Duration) WorkerOption {
	return func(c *workerConfig) error {
		if d <= 0 {
			return errors.New("task: ack delay must be positive")
		}
		c.ackAfter = d
		return nil
	}
}

// Worker is a client agent that runs tasks for a [Manager]. It
// registers processors per task type, tells the manager what it offers,
// runs each assignment in its own goroutine (at most MaxConcurrency at
// once, outside its actor) under a context that ends with the attempt's
// timeout or the manager's cancel, acknowledges long runs, reports every
// result, and sends heartbeats.
type Worker struct {
	agent *agent.Agent
	cfg   workerConfig
	name  string

	hmu        sync.Mutex
	handlers   map[string]workerHandler
	middleware []Middleware

	// Owned by the actor.
	manager  peer.ID
	epoch    uint64             // the highest leadership term heard (replicated managers)
	kept     []sentResult       // the last results, for the next leader (replicated managers)
	keptSize int                // their outputs' bytes
	lostMgr  *agent.AgentDetail // the manager we lost, until it is back
	stopLost func() bool        // the WithStopWithoutManager timer
	running  map[slotKey]*run
	dropped  map[*run]struct{} // cancelled and dropped: they still hold a processor, and report to nobody
	queue    []queued
	shutting bool
	reg      *registration // the manager's answer to the last registration
	grantErr error         // why the manager refused the grants last handed over
	ackArmed bool
	poolSize int

	jobs chan *jobRequest // hands work to idle pool goroutines

	runs      sync.WaitGroup // processor goroutines
	stopBeats func()         // stops the heartbeats
	life      sync.Mutex     // serialises Start with the end of Stop
	stopOnce  sync.Once
	stopErr   error
}

type workerHandler struct {
	fn   HandlerFunc
	opts HandlerOptions
}

type run struct {
	cancel  context.CancelCauseFunc
	from    peer.ID
	as      messages.TaskAssignment
	started time.Time
	acked   bool
}

type queued struct {
	as   messages.TaskAssignment
	from peer.ID
}

// defaultAckAfter is how long an attempt runs before the worker
// acknowledges it on its own. Shorter attempts need no ack (their result
// stands for it), and the heartbeat, which lists the attempts the worker
// holds, acknowledges the others in between: most tasks cost no ack
// message at all.
const defaultAckAfter = 500 * time.Millisecond

// NewWorker makes the client agent a a worker: it registers the worker's
// handlers on a, which must not have started yet and should join the
// manager ([agent.WithJoin]). Register processors with [Worker.Handle],
// then [Worker.Start] starts a and [Worker.Stop] stops it; the worker's
// name is the agent's.
func NewWorker(a *agent.Agent, opts ...WorkerOption) (*Worker, error) {
	if a == nil {
		return nil, errors.New("task: nil agent")
	}
	cfg := workerConfig{max: 1, heartbeat: time.Second, ackAfter: defaultAckAfter, cancelGrace: time.Second, stopGrace: 10 * time.Second}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.tracer == nil {
		cfg.tracer = tracerOf(nil)
	}
	w := &Worker{agent: a, cfg: cfg, name: a.Name(), handlers: map[string]workerHandler{}, running: map[slotKey]*run{}, dropped: map[*run]struct{}{}, jobs: make(chan *jobRequest)}
	agent.On(a, w.onAssignment)
	agent.On(a, w.onCancel)
	agent.On(a, w.onShutdown)
	agent.On(a, w.onWelcome)
	agent.On(a, w.onRegistered)
	agent.On(a, w.onRefused)
	if err := agent.RegisterKind[messages.GrantReply](a); err != nil {
		return nil, err
	}
	a.OnConnect(w.onConnect)
	a.OnDisconnect(w.onDisconnect)
	return w, nil
}

// Agent returns the worker's agent.
func (w *Worker) Agent() *agent.Agent { return w.agent }

// Name returns the worker's name.
func (w *Worker) Name() string { return w.name }

// Handle registers fn as the processor for tasks of type typ, with the
// manager's default policy.
func (w *Worker) Handle(typ string, fn HandlerFunc) {
	w.HandleWith(typ, fn, HandlerOptions{})
}

// HandleWith registers fn for typ with handler-level defaults (timeout,
// retries, backoff, priority) that tasks of the type inherit unless they
// set their own. Registering after Start re-announces the worker.
func (w *Worker) HandleWith(typ string, fn HandlerFunc, opts HandlerOptions) {
	w.hmu.Lock()
	w.handlers[typ] = workerHandler{fn: fn, opts: opts}
	w.hmu.Unlock()
	_ = w.agent.Post(w.announce) // after Start: re-announce
}

func (w *Worker) handler(typ string) (workerHandler, bool) {
	w.hmu.Lock()
	defer w.hmu.Unlock()
	h, ok := w.handlers[typ]
	if ok {
		for i := len(w.middleware) - 1; i >= 0; i-- {
			h.fn = w.middleware[i](h.fn)
		}
	}
	return h, ok
}

// Middleware wraps a handler: logging, metrics, tracing, recovering
// panics, as asynq's middleware does.
type Middleware func(next HandlerFunc) HandlerFunc

// Use adds middleware around every handler of the worker, those
// registered before and after alike; the first added is the outermost. It
// applies to the jobs the worker starts from then on.
func (w *Worker) Use(mw ...Middleware) {
	w.hmu.Lock()
	defer w.hmu.Unlock()
	w.middleware = append(w.middleware, mw...)
}

// Info is what the worker tells the manager it offers.
func (w *Worker) Info() messages.WorkerInfo {
	w.hmu.Lock()
	defer w.hmu.Unlock()
	info := messages.WorkerInfo{Name: w.name, Skill: w.cfg.skill, Capabilities: w.cfg.caps, MaxConcurrency: w.cfg.max}
	for typ, h := range w.handlers {
		info.Types = append(info.Types, h.opts.typeInfo(typ))
	}
	return info
}

// Start joins the workspace and starts heartbeats.
func (w *Worker) Start(ctx context.Context) error {
	w.life.Lock()
	defer w.life.Unlock()
	if err := w.agent.Start(ctx); err != nil {
		return err
	}
	w.stopBeats = w.agent.Every(w.cfg.heartbeat, w.heartbeat)
	return nil
}

// Stop leaves the workspace: running processors see their context end,
// and Stop waits for them to return, for the stop grace at most
// ([WithStopGrace], 10 s; then it fails with [ErrProcessorsRunning]). A Stop during Start cancels it.
func (w *Worker) Stop() error {
	w.stopOnce.Do(func() {
		w.stopErr = w.agent.Stop() // first: it cancels a Start in progress
		w.life.Lock()
		if w.stopBeats != nil {
			w.stopBeats()
		}
		// The processors' contexts ended with the agent; those that ignore
		// theirs get the stop grace, then are left behind.
		ran := make(chan struct{})
		go func() { w.runs.Wait(); close(ran) }()
		t := time.NewTimer(w.cfg.stopGrace)
		select {
		case <-ran:
		case <-t.C:
			w.stopErr = errors.Join(w.stopErr, fmt.Errorf("%w after %v", ErrProcessorsRunning, w.cfg.stopGrace))
		}
		t.Stop()
		w.life.Unlock()
	})
	<-w.agent.Done()
	return w.stopErr
}

// Done is closed when the worker has stopped (after Stop, or after the
// manager's Shutdown once its running tasks finished).
func (w *Worker) Done() <-chan struct{} { return w.agent.Done() }
