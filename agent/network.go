package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"
)

// Network is what an agent needs of the workspace's network: its node's
// identity and addresses, joining, direct sends, broadcasts and the
// roster. A [peer.Node] is one (the default); an in-memory one
// (internal/memnet) runs tests without sockets, with faults on demand and
// under testing/synctest. Its semantics are peer.Node's: see there.
type Network interface {
	ID() peer.ID
	Addrs() []ma.Multiaddr
	// Join connects to the member at addr and keeps it (redialing when
	// lost); Connect connects once.
	Join(ctx context.Context, addr string) (peer.ID, error)
	Connect(ctx context.Context, addr string) (peer.ID, error)
	Send(ctx context.Context, p peer.ID, data []byte) error
	SendWithin(p peer.ID, data []byte, d time.Duration) error
	Publish(ctx context.Context, data []byte) error
	MaxFrameSize() int
	Member(p peer.ID) (peer.Member, bool)
	Members() []peer.Member
	Present(p peer.ID) bool
	Penalize(p peer.ID, reason string)
	Close() error
}

var _ Network = (*peer.Node)(nil)

// NetworkConfig is what the agent tells a [NetworkFactory] about itself.
type NetworkConfig struct {
	Key       crypto.PrivKey
	Workspace string
	Meta      []byte       // the agent's detail, for the roster
	Handler   peer.Handler // where the node delivers what it hears
	Server    bool         // an admin: the node serves a roster
	Logger    *slog.Logger
}

// NetworkFactory starts an agent's [Network].
type NetworkFactory func(ctx context.Context, c NetworkConfig) (Network, error)

// WithNetwork replaces the agent's libp2p node with the network f starts
// (tests: an in-memory network). The libp2p options (listen addresses,
// secret, mDNS, bootstrap, WithPeerOptions) then do not apply, and
// [Agent.Node] is nil.
func WithNetwork(f NetworkFactory) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("agent: nil network factory")
		}
		c.network = f
		return nil
	}
}

// netHolder lets the network be swapped in atomically.
type netHolder struct{ Network }

// network returns the agent's network, nil before Start.
func (a *Agent) network() Network {
	if h := a.netP.Load(); h != nil {
		return h.Network
	}
	return nil
}
