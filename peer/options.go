package peer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// Defaults; see the Option docs.
const (
	DefaultMaxFrameSize     = 4 << 20
	DefaultMaxBroadcastSize = 512 << 10
	DefaultSendQueueBytes   = 4 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWorkspace        = "default"
	// DefaultLeaveGrace is how long a member whose last connection closed
	// stays in the roster, waiting for it to come back.
	DefaultLeaveGrace = 2 * time.Second
	// DefaultOrphanTime is how long the members a gone roster server
	// listed stay in the roster, waiting for it (or another source).
	DefaultOrphanTime = 30 * time.Second
	// DefaultIdleTimeout is how long a direct stream may carry nothing
	// before it is closed and its connection may be trimmed.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultOverlayDegree is how many workspace peers a node keeps on
	// the topic, dialing random members when it has fewer.
	DefaultOverlayDegree = 6
	// DefaultMaxMembers bounds the roster.
	DefaultMaxMembers = 16384
	// DefaultMaxSnapshot bounds a roster snapshot on the wire.
	DefaultMaxSnapshot = 16 << 20
)

// Option configures a [Node].
type Option func(*config) error

type config struct {
	listen           []string
	key              crypto.PrivKey
	keyFile          string
	workspace        string
	meta             []byte
	handler          Handler
	maxFrame         int
	maxBroadcast     int
	sendQueue        int
	handshakeTimeout time.Duration
	mdns             bool
	logger           *slog.Logger
	gossipQueue      int
	secret           string
	maxBadFrames     int

	server        bool
	limits        Limits
	leaveGrace    time.Duration
	orphanTTL     time.Duration
	idleTimeout   time.Duration
	overlayDegree int
	maxRoster     int
	maxSnapshot   int
	rosterFlush   time.Duration
	rosterBeat    time.Duration
	validator     func(from ID, data []byte) error
	transport     []libp2p.Option
	reachConfig
}

func defaults() config {
	return config{
		listen:           []string{"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"},
		workspace:        DefaultWorkspace,
		handler:          NopHandler{},
		maxFrame:         DefaultMaxFrameSize,
		maxBroadcast:     DefaultMaxBroadcastSize,
		sendQueue:        DefaultSendQueueBytes,
		handshakeTimeout: DefaultHandshakeTimeout,
		logger:           slog.New(slog.DiscardHandler),
		gossipQueue:      1024,
		maxBadFrames:     64,
		limits:           DefaultLimits(),
		leaveGrace:       DefaultLeaveGrace,
		orphanTTL:        DefaultOrphanTime,
		idleTimeout:      DefaultIdleTimeout,
		overlayDegree:    DefaultOverlayDegree,
		maxRoster:        DefaultMaxMembers,
		maxSnapshot:      DefaultMaxSnapshot,
		rosterFlush:      250 * time.Millisecond,
		rosterBeat:       time.Second,
		reachConfig:      defaultReach(),
	}
}

// newConfig applies opts to the defaults and loads the identity file.
func newConfig(opts []Option) (config, error) {
	cfg := defaults()
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return cfg, err
		}
	}
	if cfg.key == nil && cfg.keyFile != "" {
		k, err := LoadOrCreateIdentity(cfg.keyFile)
		if err != nil {
			return cfg, err
		}
		cfg.key = k
	}
	return cfg, nil
}

// WithListenAddrs sets the multiaddrs to listen on, e.g.
// "/ip4/0.0.0.0/tcp/7000" and "/ip4/0.0.0.0/udp/7000/quic-v1". Port 0 picks
// a free port. The default is every interface on free TCP and QUIC ports.
func WithListenAddrs(addrs ...string) Option {
	return func(c *config) error {
		if len(addrs) == 0 {
			return errors.New("peer: no listen addresses")
		}
		c.listen = addrs
		return nil
	}
}

// WithIdentity sets the node's private key (and so its peer ID).
func WithIdentity(k crypto.PrivKey) Option {
	return func(c *config) error { c.key = k; return nil }
}

// WithIdentityFile loads the node's key from path, creating it on first use
// (see [LoadOrCreateIdentity]).
func WithIdentityFile(path string) Option {
	return func(c *config) error { c.keyFile = path; return nil }
}

// WithWorkspace sets the workspace ID. Nodes talk only to nodes of the same
// workspace: it names the GossipSub topic and is checked in every hello.
func WithWorkspace(id string) Option {
	return func(c *config) error {
		if id == "" {
			return errors.New("peer: empty workspace id")
		}
		c.workspace = id
		return nil
	}
}

// WithMeta sets opaque bytes that describe the node in its roster record
// (the agent layer puts its name and role there). At most [MaxMetaSize].
func WithMeta(meta []byte) Option {
	return func(c *config) error {
		if len(meta) > MaxMetaSize {
			return fmt.Errorf("peer: meta of %d bytes exceeds %d", len(meta), MaxMetaSize)
		}
		c.meta = meta
		return nil
	}
}

// WithHandler sets who receives presence events, direct frames and
// broadcasts. The default drops everything.
func WithHandler(h Handler) Option {
	return func(c *config) error {
		if h == nil {
			return errors.New("peer: nil handler")
		}
		c.handler = h
		return nil
	}
}

// WithMaxFrameSize bounds a direct frame (default 4 MiB). Larger sends fail
// with [ErrFrameTooLarge]; larger inbound frames are counted and dropped.
func WithMaxFrameSize(n int) Option {
	return func(c *config) error {
		if n < 1024 {
			return fmt.Errorf("peer: max frame size %d below 1 KiB", n)
		}
		c.maxFrame = n
		return nil
	}
}

// WithMaxBroadcastSize bounds a broadcast (default 512 KiB, at most 900 KiB
// since GossipSub resets streams past 1 MiB).
func WithMaxBroadcastSize(n int) Option {
	return func(c *config) error {
		if n < 1024 || n > 900<<10 {
			return fmt.Errorf("peer: max broadcast size %d outside [1 KiB, 900 KiB]", n)
		}
		c.maxBroadcast = n
		return nil
	}
}

// WithSendQueue bounds the bytes queued for one peer before [Node.Send]
// blocks (default 4 MiB).
func WithSendQueue(bytes int) Option {
	return func(c *config) error {
		if bytes < 1024 {
			return fmt.Errorf("peer: send queue %d below 1 KiB", bytes)
		}
		c.sendQueue = bytes
		return nil
	}
}

// WithHandshakeTimeout bounds how long a new inbound stream may take to
// send its hello (default 10 s).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("peer: handshake timeout must be positive")
		}
		c.handshakeTimeout = d
		return nil
	}
}

// WithMDNS turns on mDNS discovery of workspace peers on the local network.
func WithMDNS(on bool) Option {
	return func(c *config) error { c.mdns = on; return nil }
}

// WithLogger sets the node's logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("peer: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithSecret makes the workspace private: only nodes with the same secret
// (and workspace ID) can connect (see the package's secret.go for how and
// the trade-offs). QUIC listen addresses are dropped, as libp2p private
// networks run over TCP only. The secret is never logged.
// An empty secret leaves the workspace open (so an optional secret needs
// no if).
func WithSecret(secret string) Option {
	return func(c *config) error {
		c.secret = secret // "" leaves the workspace open
		return nil
	}
}

// WithMaxBadFrames sets how many offences (undecodable frames, broadcasts
// that fail validation, see [Node.Penalize]) a peer may commit before it is
// banned for [DefaultBan] (default 64).
func WithMaxBadFrames(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("peer: max bad frames must be at least 1")
		}
		c.maxBadFrames = n
		return nil
	}
}

// WithServer makes the node a roster server: it lists the members that
// present themselves to it, publishes the changes on the workspace topic
// and serves snapshots, so that everyone who joined through it learns the
// whole workspace without connecting to it. A task manager is one.
func WithServer(on bool) Option {
	return func(c *config) error { c.server = on; return nil }
}

// WithLimits replaces the connection, stream and per-IP limits (see
// [Limits] and [DefaultLimits]).
func WithLimits(l Limits) Option {
	return func(c *config) error {
		if err := l.validate(); err != nil {
			return err
		}
		c.limits = l
		return nil
	}
}

// WithLeaveGrace sets how long a member whose last connection to this node
// closed stays in the roster waiting for a new one (default
// [DefaultLeaveGrace]). A member that says goodbye leaves at once.
func WithLeaveGrace(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("peer: negative leave grace")
		}
		c.leaveGrace = d
		return nil
	}
}

// WithOrphanTime sets how long the members listed by a roster server that
// went away (or restarted) stay in the roster unless a source lists them
// again (default [DefaultOrphanTime]).
func WithOrphanTime(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("peer: negative orphan time")
		}
		c.orphanTTL = d
		return nil
	}
}

// WithIdleTimeout sets how long a direct stream may carry nothing before it
// is closed and its connection becomes a candidate for trimming (default
// [DefaultIdleTimeout]); the next Send opens it again.
func WithIdleTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return errors.New("peer: idle timeout must be positive")
		}
		c.idleTimeout = d
		return nil
	}
}

// WithOverlayDegree sets how many workspace peers the node wants on the
// topic; with fewer it dials random members (default
// [DefaultOverlayDegree]; 0 turns the overlay off).
func WithOverlayDegree(d int) Option {
	return func(c *config) error {
		if d < 0 || d > 64 {
			return errors.New("peer: overlay degree outside [0, 64]")
		}
		c.overlayDegree = d
		return nil
	}
}

// WithMaxMembers bounds the roster (default [DefaultMaxMembers]); records
// past it are refused and counted.
func WithMaxMembers(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("peer: max members must be positive")
		}
		c.maxRoster = n
		return nil
	}
}

// WithBroadcastValidator sets a check every broadcast must pass before it
// is delivered or forwarded; one that fails is rejected, counted, and
// counts against its author (see [Node.Penalize]). It runs inline in
// GossipSub's validation and must be quick.
func WithBroadcastValidator(v func(from ID, data []byte) error) Option {
	return func(c *config) error { c.validator = v; return nil }
}

// WithTransportOptions replaces the node's transports and listen addresses
// with libp2p options: for a simulated network in tests
// (go-libp2p's x/simlibp2p), or transports the node does not set up itself.
func WithTransportOptions(opts ...libp2p.Option) Option {
	return func(c *config) error { c.transport = opts; return nil }
}
