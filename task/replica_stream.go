package task

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"

	"github.com/ceylon-go/ceylon/peer"
)

// ReplicaProtocol is the libp2p protocol that replicating managers speak
// Raft on, over the workspace's own connections.
const ReplicaProtocol = protocol.ID("/ceylon/raft/1.0.0")

// streamLayer carries Raft's RPCs on libp2p streams (go-libp2p's gostream
// makes them net.Conns): a server's address is its peer ID, dialed through
// the node's host, so Raft needs no port of its own and crosses whatever
// the workspace crosses. Only members of a private workspace can connect
// to the node at all, so every stream accepted is from a holder of the
// secret.
type streamLayer struct {
	node  *peer.Node
	ln    net.Listener
	allow func(peer.ID) bool // nil: everyone
}

func newStreamLayer(n *peer.Node) (*streamLayer, error) {
	ln, err := gostream.Listen(n.Host(), ReplicaProtocol)
	if err != nil {
		return nil, fmt.Errorf("task: replication listener: %w", err)
	}
	return &streamLayer{node: n, ln: ln}, nil
}

// Accept implements net.Listener. A stream from a peer the group does not
// know (a worker or producer holding the secret, say) is closed unread:
// Raft would believe an AppendEntries from anyone with a higher term.
func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		pid, err := lpeer.Decode(c.RemoteAddr().String())
		if err == nil && (s.allow == nil || s.allow(pid)) {
			return c, nil
		}
		_ = c.Close()
	}
}

// Close implements net.Listener.
func (s *streamLayer) Close() error { return s.ln.Close() }

// Addr implements net.Listener: the node's peer ID.
func (s *streamLayer) Addr() net.Addr { return s.ln.Addr() }

// Dial implements raft.StreamLayer: address is a peer ID.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	pid, err := lpeer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("task: replica address %q: %w", address, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return gostream.Dial(ctx, s.node.Host(), pid, ReplicaProtocol)
}
