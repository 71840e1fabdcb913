package peer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

// maxSkip bounds how many bytes of oversized frames a reader discards to
// stay in sync before it gives up on the stream.
const maxSkipFactor = 16

// inStream is a peer's stream to this node, from which we only read.
type inStream struct {
	s         network.Stream
	hello     hello
	announced bool          // the Handler has seen the join (guarded by n.mu)
	done      chan struct{} // closed when its reader has exited
}

// handleStream serves one inbound stream: it checks the hello, announces the
// peer, hands each frame to the Handler, and announces the leave.
func (n *Node) handleStream(s network.Stream) {
	remote := s.Conn().RemotePeer()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		_ = s.Reset()
		return
	}
	n.wg.Add(1)
	n.mu.Unlock()
	defer n.wg.Done()

	br := bufio.NewReaderSize(s, 64<<10)
	_ = s.SetReadDeadline(time.Now().Add(n.cfg.handshakeTimeout))
	typ, payload, err := readFrame(br, n.cfg.maxFrame)
	if err == nil && typ != frameHello {
		err = fmt.Errorf("%w: first frame is not a hello", ErrHandshake)
	}
	var h hello
	if err == nil {
		h, err = decodeHello(payload, n.cfg.workspace)
	}
	if err != nil {
		n.stats.handshakeFailures.Add(1)
		n.cfg.logger.Warn("refused stream", "peer", remote, "err", err)
		_ = s.Reset()
		// Garbage instead of a hello earns a ban; a network error (EOF,
		// reset, a late hello on a slow link) or a hello for another
		// workspace (a misconfigured peer) does not.
		if (errors.Is(err, ErrHandshake) || errors.Is(err, ErrFrameTooLarge)) && !errors.Is(err, errWrongWorkspace) {
			n.Ban(remote, DefaultBan, "no valid hello: "+err.Error())
		}
		return
	}
	_ = s.SetReadDeadline(time.Time{})

	in := &inStream{s: s, hello: h, done: make(chan struct{})}
	defer close(in.done)
	if !n.register(remote, in) {
		_ = s.Reset()
		return
	}
	n.host.Peerstore().AddAddrs(remote, parseAddrs(h.Addrs), peerstore.RecentlyConnectedAddrTTL)
	n.cfg.handler.HandlePresence(n.ctx, PresenceEvent{Peer: remote, Joined: true, Meta: h.Meta})
	// Only now does WaitPresent (and so Connect) return: the handler has
	// seen the join before anyone is told the peer is there.
	n.mu.Lock()
	in.announced = true
	n.presenceChanged()
	n.mu.Unlock()
	n.wg.Add(1)
	go func() { defer n.wg.Done(); n.greet(remote) }()

	err = n.readLoop(remote, br)
	if errors.Is(err, ErrHandshake) || errors.Is(err, ErrFrameTooLarge) {
		n.stats.streamResets.Add(1)
		_ = s.Reset()
		n.Ban(remote, DefaultBan, err.Error())
	} else {
		_ = s.Close()
	}
	n.unregister(remote, in)
	n.cfg.handler.HandlePresence(n.ctx, PresenceEvent{Peer: remote, Joined: false, Meta: h.Meta})
}

// readLoop hands frames to the handler until the stream ends or breaks the
// protocol.
func (n *Node) readLoop(remote ID, br *bufio.Reader) error {
	bad := 0
	for {
		if bad > n.cfg.maxBadFrames {
			return fmt.Errorf("%w: %d undecodable frames", ErrHandshake, bad)
		}
		typ, payload, err := readFrame(br, n.cfg.maxFrame)
		var big errFrameTooLarge
		switch {
		case errors.As(err, &big):
			n.stats.droppedOversize.Add(1)
			if big.size > uint64(maxSkipFactor*n.cfg.maxFrame) {
				return err
			}
			if _, err := br.Discard(int(big.size)); err != nil {
				return nil
			}
			continue
		case errors.Is(err, ErrHandshake):
			return err
		case err != nil:
			if !errors.Is(err, io.EOF) {
				n.cfg.logger.Debug("stream ended", "peer", remote, "err", err)
			}
			return nil
		}
		switch typ {
		case frameData:
			n.stats.framesIn.Add(1)
			n.stats.bytesIn.Add(uint64(len(payload)))
			n.cfg.handler.HandleDirect(n.ctx, remote, payload)
		case framePeers:
			if n.cfg.peerExchange && !n.learnPeers(payload) {
				bad++
			}
		default:
			n.stats.droppedUnknown.Add(1)
			bad++
		}
	}
}

// register makes in the current stream of remote, replacing (and waiting
// out) an older one so presence events stay ordered. It reports false when
// the node is closing.
func (n *Node) register(remote ID, in *inStream) bool {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return false
		}
		old := n.in[remote]
		if old == nil {
			n.in[remote] = in
			n.mu.Unlock()
			return true
		}
		n.mu.Unlock()
		_ = old.s.Reset()
		<-old.done
	}
}

func (n *Node) unregister(remote ID, in *inStream) {
	n.mu.Lock()
	if n.in[remote] == in {
		delete(n.in, remote)
		n.presenceChanged()
	}
	n.mu.Unlock()
}
