package agent

import (
	"errors"
	"log/slog"

	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/crypto"
)

// DefaultMailboxSize bounds the network messages waiting in an agent's
// mailbox. When it is full the agent stops reading from the network, which
// pushes back on senders.
const DefaultMailboxSize = 4096

// DefaultPeerInflight bounds the messages of one peer waiting in an agent's
// mailbox, so a flooding peer cannot fill it for everyone.
const DefaultPeerInflight = 1024

// DefaultMaxBadMessages is how many undecodable or spoofed messages a peer
// may send before the agent bans it for peer.DefaultBan.
const DefaultMaxBadMessages = 64

// Option configures an [Agent].
type Option func(*config) error

type config struct {
	role         string
	mode         Mode
	join         []string
	workspace    string
	listen       []string
	keyFile      string
	key          crypto.PrivKey
	logger       *slog.Logger
	mailbox      int
	mdns         bool
	peerOptions  []peer.Option
	bootstrap    []string
	network      NetworkFactory
	secret       string
	peerInflight int
	maxBad       int
	reconnect    bool
}

func defaultConfig() config {
	return config{
		role:         "agent",
		workspace:    peer.DefaultWorkspace,
		logger:       slog.New(slog.DiscardHandler),
		mailbox:      DefaultMailboxSize,
		peerInflight: DefaultPeerInflight,
		maxBad:       DefaultMaxBadMessages,
		reconnect:    true,
	}
}

// WithRole sets the role the agent introduces itself with (default "agent").
func WithRole(role string) Option {
	return func(c *config) error { c.role = role; return nil }
}

// AsAdmin makes the agent an admin: others join through its address.
func AsAdmin() Option {
	return func(c *config) error { c.mode = Admin; return nil }
}

// WithJoin makes the agent a client that joins through the given admin
// addresses (multiaddrs ending in /p2p/<id>, as [Agent.Addrs] prints them).
func WithJoin(addrs ...string) Option {
	return func(c *config) error {
		if len(addrs) == 0 {
			return errors.New("agent: WithJoin needs an address")
		}
		for _, a := range addrs {
			if _, err := peer.ParseAddr(a); err != nil {
				return err
			}
		}
		c.join = addrs
		return nil
	}
}

// WithWorkspace sets the workspace ID (default "default").
func WithWorkspace(id string) Option {
	return func(c *config) error {
		if id == "" {
			return errors.New("agent: empty workspace id")
		}
		c.workspace = id
		return nil
	}
}

// WithListenAddrs sets the multiaddrs to listen on. An admin that others
// must find at a fixed address uses a fixed port, e.g.
// "/ip4/0.0.0.0/tcp/7000".
func WithListenAddrs(addrs ...string) Option {
	return func(c *config) error { c.listen = addrs; return nil }
}

// WithIdentityFile keeps the agent's key (and so its ID and address) in
// path across restarts.
func WithIdentityFile(path string) Option {
	return func(c *config) error { c.keyFile = path; return nil }
}

// WithIdentity makes key the agent's identity (its peer ID is key's).
// Give the identity here, not as a peer option (WithPeerOptions): the
// agent signs its messages with the ID it derives from it.
func WithIdentity(key crypto.PrivKey) Option {
	return func(c *config) error {
		if key == nil {
			return errors.New("agent: nil identity key")
		}
		c.key = key
		return nil
	}
}

// WithLogger sets the agent's logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("agent: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithMailboxSize bounds the network messages queued for the agent's actor
// (default [DefaultMailboxSize]).
func WithMailboxSize(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("agent: mailbox size must be positive")
		}
		c.mailbox = n
		return nil
	}
}

// WithMDNS discovers workspace peers on the local network (clients may then
// omit WithJoin).
func WithMDNS(on bool) Option {
	return func(c *config) error { c.mdns = on; return nil }
}

// WithBootstrap names DHT entry points (any member of the workspace, its
// task manager, or a [peer.Bootstrap] node; multiaddrs ending in
// /p2p/<id>): a client given one needs no WithJoin, it finds the
// workspace's task managers by the workspace ID (and secret) and joins
// them. An admin given some advertises itself through them (an admin
// always runs a DHT others can bootstrap from). See [peer.WithBootstrap].
func WithBootstrap(addrs ...string) Option {
	return func(c *config) error {
		if len(addrs) == 0 {
			return errors.New("agent: no bootstrap addresses")
		}
		c.bootstrap = append(c.bootstrap, addrs...)
		return nil
	}
}

// WithPeerOptions passes options to the agent's [peer.Node] (frame limits,
// queue sizes, …). The agent sets the workspace, listen addresses,
// metadata and handler itself; options given here come after and win,
// except an identity: the agent's is WithIdentity's or WithIdentityFile's.
func WithPeerOptions(opts ...peer.Option) Option {
	return func(c *config) error { c.peerOptions = append(c.peerOptions, opts...); return nil }
}

// WithSecret makes the workspace private: only agents with the same
// secret can connect (a libp2p private network keyed by the workspace ID
// and the secret; TCP only). Read it from a file or the environment; it is
// never logged.
// An empty secret leaves the workspace open (so an optional secret needs
// no if).
func WithSecret(secret string) Option {
	return func(c *config) error {
		c.secret = secret // "" leaves the workspace open
		return nil
	}
}

// WithPeerInflight bounds the messages one peer may have waiting in the
// agent's mailbox (default [DefaultPeerInflight]); a peer over it is not
// read from until the agent catches up.
func WithPeerInflight(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("agent: peer in-flight limit must be positive")
		}
		c.peerInflight = n
		return nil
	}
}

// WithMaxBadMessages sets how many undecodable or spoofed messages a peer
// may send before it is banned (default [DefaultMaxBadMessages]).
func WithMaxBadMessages(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("agent: max bad messages must be positive")
		}
		c.maxBad = n
		return nil
	}
}

// WithReconnect controls whether a client that loses its connection to an
// admin it joined through redials it (peer.Node.Join: at once, then with
// capped, jittered exponential backoff, libp2p's dial backoff cleared)
// until it is back or the agent stops (default on).
func WithReconnect(on bool) Option {
	return func(c *config) error { c.reconnect = on; return nil }
}
