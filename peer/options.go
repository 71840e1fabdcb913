package peer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// Default limits. They suit a LAN or one machine; see the Option docs.
const (
	DefaultMaxFrameSize     = 4 << 20
	DefaultMaxBroadcastSize = 512 << 10
	DefaultSendQueueBytes   = 4 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultWorkspace        = "default"
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
	peerExchange     bool
	logger           *slog.Logger
	gossipQueue      int
	secret           string
	maxBadFrames     int
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
		peerExchange:     true,
		logger:           slog.New(slog.DiscardHandler),
		gossipQueue:      4096,
		maxBadFrames:     64,
	}
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

// WithMeta sets opaque bytes sent to every peer in the hello (the agent
// layer puts its name and role there). At most 64 KiB.
func WithMeta(meta []byte) Option {
	return func(c *config) error {
		if len(meta) > 64<<10 {
			return fmt.Errorf("peer: meta of %d bytes exceeds 64 KiB", len(meta))
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

// WithPeerExchange controls whether the node tells each newcomer about the
// peers it knows, so the workspace becomes a full mesh (default on).
func WithPeerExchange(on bool) Option {
	return func(c *config) error { c.peerExchange = on; return nil }
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
func WithSecret(secret string) Option {
	return func(c *config) error {
		if secret == "" {
			return errors.New("peer: empty secret")
		}
		c.secret = secret
		return nil
	}
}

// WithMaxBadFrames sets how many undecodable frames (unknown types, broken
// peer lists) a peer may send before it is banned for [DefaultBan]
// (default 64).
func WithMaxBadFrames(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("peer: max bad frames must be at least 1")
		}
		c.maxBadFrames = n
		return nil
	}
}
