package peer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// maxSkipFactor bounds how many bytes of oversized frames a reader discards
// to stay in sync before it gives up on the stream.
const maxSkipFactor = 16

// inStream is a peer's stream to this node, from which we only read.
type inStream struct {
	s       network.Stream
	done    chan struct{} // closed when its reader has exited
	lastUse atomic.Int64  // unix nanos of the last frame read
}

// handleStream serves one inbound direct stream: it checks the hello,
// links the peer in the roster (so its join is reported before any of its
// frames), and hands each frame to the Handler in order.
func (n *Node) handleStream(s network.Stream) {
	remote := s.Conn().RemotePeer()
	if !n.track() {
		_ = s.Reset()
		return
	}
	defer n.wg.Done()

	br := bufio.NewReaderSize(s, 16<<10)
	_ = s.SetReadDeadline(time.Now().Add(n.cfg.handshakeTimeout))
	h, err := n.readHello(s, br, remote)
	if err != nil {
		return
	}
	_ = s.SetReadDeadline(time.Time{})

	in := &inStream{s: s, done: make(chan struct{})}
	in.lastUse.Store(time.Now().UnixNano())
	defer close(in.done)
	if !n.register(remote, in) {
		_ = s.Reset()
		return
	}
	n.roster.link(remote, h.Self)
	n.host.ConnManager().Protect(remote, activeTag)

	err = n.readLoop(remote, br, in, h.Self.Inc)
	if errors.Is(err, ErrHandshake) || errors.Is(err, ErrFrameTooLarge) {
		n.stats.streamResets.Add(1)
		_ = s.Reset()
		n.Ban(remote, DefaultBan, err.Error())
	} else {
		_ = s.Close()
	}
	n.unregister(remote, in)
}

// readLoop hands frames to the handler until the stream ends or breaks the
// protocol.
func (n *Node) readLoop(remote ID, br *bufio.Reader, in *inStream, inc uint64) error {
	for {
		typ, payload, err := readFrame(br, n.cfg.maxFrame)
		var big errFrameTooLarge
		switch {
		case errors.As(err, &big):
			n.stats.droppedOversize.Add(1)
			if big.Size > uint64(maxSkipFactor*n.cfg.maxFrame) {
				return err
			}
			if _, err := br.Discard(int(big.Size)); err != nil {
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
		in.lastUse.Store(time.Now().UnixNano())
		switch typ {
		case frameData:
			n.stats.framesIn.Add(1)
			n.stats.bytesIn.Add(uint64(len(payload)))
			n.cfg.handler.HandleDirect(n.ctx, remote, payload)
		case frameBye:
			n.roster.left(remote, inc)
		default:
			n.stats.droppedUnknown.Add(1)
			n.Penalize(remote, fmt.Sprintf("frame of unknown type %d", typ))
		}
	}
}

// register makes in the current stream of remote, replacing (and waiting
// out) an older one, so frames of one peer are handed over in order by one
// goroutine at a time. It reports false when the node is closing.
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
	}
	n.mu.Unlock()
}
