package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Agent is an actor in a workspace. Create it with [New], register handlers
// with [On], [Agent.OnConnect] and [Agent.OnDisconnect], then [Agent.Start]
// it. Its methods are safe for concurrent use.
type Agent struct {
	cfg      config
	name     string
	registry *messages.Registry
	handlers atomic.Pointer[handlerTable]
	hmu      sync.Mutex // serialises handler registration

	node     Network
	netP     atomic.Pointer[netHolder] // node, for readers racing with Start
	nodeP    atomic.Pointer[peer.Node] // node, when it is a libp2p one
	system   *actor.ActorSystem
	pid      *actor.PID
	dispatch *dispatcher
	self     AgentDetail
	log      *slog.Logger

	ctx    context.Context // made by New, cancelled by Stop; handler contexts derive from it
	cancel context.CancelFunc

	credits chan struct{} // one slot per network message in the mailbox

	seq     atomic.Uint64 // envelope IDs
	replies replyTable
	roster  roster
	stats   stats

	ready         chan struct{} // closed when Start has succeeded
	life          sync.Mutex    // serialises Start and Stop
	state         atomic.Int32  // stateNew … stateStopped; written under life
	cancelStart   context.CancelFunc
	stopRequested bool
	stopErr       error
	stoppedCh     chan struct{}
}

const (
	stateNew int32 = iota
	stateStarting
	stateStarted
	stateStopped
)

// New creates an agent named name. Nothing runs until [Agent.Start].
func New(name string, opts ...Option) (*Agent, error) {
	cfg := defaultConfig()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if name == "" {
		return nil, fmt.Errorf("agent: empty name")
	}
	a := &Agent{
		cfg:       cfg,
		name:      name,
		registry:  messages.NewRegistry(),
		log:       cfg.logger.With("agent", name),
		credits:   make(chan struct{}, cfg.mailbox),
		stoppedCh: make(chan struct{}),
		ready:     make(chan struct{}),
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.handlers.Store(&handlerTable{kinds: map[string]*handlerEntry{}})
	a.replies.init()
	a.roster.init()
	return a, nil
}

// Name returns the agent's name.
func (a *Agent) Name() string { return a.name }

// Registry is the agent's kind registry: every kind it has a handler for,
// plus the built-in task kinds. Register reply kinds for [Agent.Request]
// here.
func (a *Agent) Registry() *messages.Registry { return a.registry }

// Start starts the agent's node and actor and, for a client, joins the
// workspace through the admin address, retrying until ctx ends. A Stop
// during Start cancels it (Start then returns ErrStopped).
func (a *Agent) Start(ctx context.Context) error {
	a.life.Lock()
	switch a.state.Load() {
	case stateStarting, stateStarted:
		a.life.Unlock()
		return ErrAlreadyStarted
	case stateStopped:
		a.life.Unlock()
		return ErrStopped
	}
	if a.cfg.mode == Client && len(a.cfg.join) == 0 && !a.cfg.mdns && len(a.cfg.bootstrap) == 0 {
		a.life.Unlock()
		return ErrNoJoinAddress
	}
	a.state.Store(stateStarting)
	startCtx, cancelStart := context.WithCancel(ctx)
	a.cancelStart = cancelStart
	a.life.Unlock()

	err := a.start(startCtx)

	a.life.Lock()
	defer a.life.Unlock()
	cancelStart()
	if err == nil && a.stopRequested {
		err = ErrStopped
	}
	if err != nil {
		a.teardown()
		return err
	}
	a.state.Store(stateStarted)
	a.log.Debug("started", "mode", a.cfg.mode, "addrs", a.node.Addrs())
	close(a.ready)
	return nil
}

// start does Start's work; Start holds no lock meanwhile, so a Stop can
// cancel ctx.
func (a *Agent) start(ctx context.Context) error {
	a.system = actorSystem()
	a.dispatch = newDispatcher()
	a.pid = a.system.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return (*agentActor)(a) },
		actor.WithDispatcher(a.dispatch)))

	// The identity comes first, so the agent knows its own ID (and logs
	// with it) before its node can hear from anyone.
	var key crypto.PrivKey
	var err error
	switch {
	case a.cfg.key != nil:
		key = a.cfg.key
	case a.cfg.keyFile != "":
		key, err = peer.LoadOrCreateIdentity(a.cfg.keyFile)
	default:
		key, err = peer.GenerateIdentity()
	}
	var id peer.ID
	if err == nil {
		id, err = peer.IDFromKey(key)
	}
	if err != nil {
		return err
	}
	a.self = AgentDetail{ID: id.String(), Name: a.name, Role: a.cfg.role, Mode: a.cfg.mode}
	a.log = a.log.With("id", a.self.String())
	popts := []peer.Option{
		peer.WithWorkspace(a.cfg.workspace),
		peer.WithIdentity(key),
		peer.WithMeta(encodeMeta(a.self)),
		peer.WithHandler(nodeHandler{a}),
		peer.WithLogger(a.log),
		peer.WithMDNS(a.cfg.mdns),
		peer.WithServer(a.cfg.mode == Admin),
		peer.WithMaxBadFrames(a.cfg.maxBad),
		peer.WithBroadcastValidator(checkBroadcast),
	}
	if len(a.cfg.listen) > 0 {
		popts = append(popts, peer.WithListenAddrs(a.cfg.listen...))
	}
	if a.cfg.secret != "" {
		popts = append(popts, peer.WithSecret(a.cfg.secret))
	}
	if len(a.cfg.bootstrap) > 0 {
		popts = append(popts, peer.WithBootstrap(a.cfg.bootstrap...))
	}
	var node Network
	if a.cfg.network != nil {
		node, err = a.cfg.network(ctx, NetworkConfig{Key: key, Workspace: a.cfg.workspace, Meta: encodeMeta(a.self),
			Handler: nodeHandler{a}, Server: a.cfg.mode == Admin, Logger: a.log})
	} else {
		var pn *peer.Node
		// The identity last: the agent's ID is that key's, whatever the
		// peer options say.
		pn, err = peer.New(ctx, append(append(popts, a.cfg.peerOptions...), peer.WithIdentity(key))...)
		if err == nil {
			node = pn
			a.nodeP.Store(pn)
		}
	}
	if err != nil {
		return fmt.Errorf("agent %s: start node: %w", a.name, err)
	}
	a.node = node
	a.netP.Store(&netHolder{node})
	for _, addr := range a.cfg.join {
		join := node.Join
		if !a.cfg.reconnect {
			join = node.Connect
		}
		if _, err := join(ctx, addr); err != nil {
			return fmt.Errorf("agent %s: join %s: %w", a.name, addr, err)
		}
	}
	return nil
}

// Stop leaves the workspace: the node flushes and closes its streams (peers
// see the agent disconnect at once), then the actor handles what is left in
// its mailbox and stops. Stop waits for all of it and is idempotent; a Stop
// during Start cancels the start.
func (a *Agent) Stop() error {
	a.life.Lock()
	switch a.state.Load() {
	case stateNew:
		a.state.Store(stateStopped)
		a.cancel()
		close(a.stoppedCh)
		a.life.Unlock()
		return nil
	case stateStarting:
		a.stopRequested = true
		a.cancelStart() // Start tears down and closes stoppedCh
		a.life.Unlock()
	case stateStarted:
		a.teardown()
		a.life.Unlock()
	default:
		a.life.Unlock()
	}
	<-a.stoppedCh
	return a.stopErr
}

// teardown releases what Start made. Called once, with a.life held.
func (a *Agent) teardown() {
	a.state.Store(stateStopped)
	a.cancel()
	var errs []error
	if a.node != nil {
		errs = append(errs, a.node.Close())
	}
	a.replies.failAll(ErrStopped)
	if a.pid != nil {
		if err := a.system.Root.PoisonFuture(a.pid).Wait(); err != nil {
			errs = append(errs, fmt.Errorf("agent %s: actor did not stop: %w", a.name, err))
		}
		a.dispatch.stop()
	}
	a.stopErr = errors.Join(errs...)
	close(a.stoppedCh)
}

// Done is closed once the agent has stopped.
func (a *Agent) Done() <-chan struct{} { return a.stoppedCh }

// Detail returns the agent's own detail (its ID is set once started).
func (a *Agent) Detail() AgentDetail {
	if a.network() == nil {
		return AgentDetail{Name: a.name, Role: a.cfg.role, Mode: a.cfg.mode}
	}
	return a.self
}

// ID returns the agent's ID, or "" before Start.
func (a *Agent) ID() string { return a.Detail().ID }

// Workspace returns the workspace ID.
func (a *Agent) Workspace() string { return a.cfg.workspace }

// Addrs returns the addresses other agents can join through (multiaddrs
// ending in /p2p/<id>), non-loopback first; nil before Start.
func (a *Agent) Addrs() []string {
	node := a.network()
	if node == nil {
		return nil
	}
	var out []string
	for _, m := range node.Addrs() {
		out = append(out, m.String())
	}
	return out
}

// Node exposes the agent's libp2p node (for stats and tests); nil before
// Start and on another [Network] (WithNetwork).
func (a *Agent) Node() *peer.Node { return a.nodeP.Load() }

// Logger returns the agent's logger.
func (a *Agent) Logger() *slog.Logger { return a.log }

// started reports whether the agent can send: from the moment its node
// runs (handlers may answer while a client is still joining) until Stop.
func (a *Agent) started() error {
	switch a.state.Load() {
	case stateNew:
		return ErrNotStarted
	case stateStarting:
		if a.network() == nil {
			return ErrNotStarted
		}
	case stateStopped:
		return ErrStopped
	}
	return nil
}
