package peer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
)

// RosterProtocolID is the roster exchange: the opener presents its record
// (and may ask for a snapshot), the other side answers with its own record
// (and, if it serves a roster, the snapshot). Both sides then hold each
// other as linked members.
const RosterProtocolID = "/ceylon/roster/1.0.0"

// maxHelloSize bounds a hello: a record of at most MaxMetaSize bytes of
// metadata and maxRecordAddrs addresses, with room to spare.
const maxHelloSize = 16 << 10

// selfRecord is what this node says about itself.
func (n *Node) selfRecord() record {
	addrs := n.host.Addrs()
	for _, c := range n.circuitAddrs() { // the host's list may lag a new reservation
		if !slices.ContainsFunc(addrs, c.Equal) {
			addrs = append(addrs, c)
		}
	}
	return record{ID: []byte(n.ID()), Inc: n.inc, Meta: n.cfg.meta, Addrs: addrBytes(addrs), Server: n.cfg.server}
}

func (n *Node) selfHello(want bool) hello {
	return hello{Version: protocolVersion, Workspace: n.cfg.workspace, Self: n.selfRecord(), Want: want}
}

// rosterHello is the hello of a roster exchange with p: it asks for what
// p's roster has gained since the version this node has of it.
func (n *Node) rosterHello(p ID, want bool) hello {
	h := n.selfHello(want)
	if want {
		r := n.roster
		r.mu.Lock()
		if v := r.views[p]; v != nil && len(v.orphans) == 0 && !v.full {
			h.SinceEpoch, h.Since = v.epoch, v.version
		}
		r.mu.Unlock()
	}
	return h
}

// exchange presents this node to p (dialing if needed) and links p from
// its answer; with want, it applies p's snapshot when p is a roster server
// this node follows.
func (n *Node) exchange(ctx context.Context, p ID, want bool) error {
	s, err := n.host.NewStream(ctx, p, RosterProtocolID)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotPresent, p, err)
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	} else {
		_ = s.SetDeadline(time.Now().Add(n.cfg.handshakeTimeout))
	}
	if _, err := s.Write(appendFrame(nil, frameHello, encodeHello(n.rosterHello(p, want)))); err != nil {
		_ = s.Reset()
		return fmt.Errorf("peer: roster exchange with %s: %w", p, err)
	}
	typ, payload, err := readFrame(bufio.NewReaderSize(s, 16<<10), n.cfg.maxSnapshot)
	if err == nil && typ != frameHello {
		err = fmt.Errorf("%w: roster reply of type %d", ErrHandshake, typ)
	}
	var rep rosterReply
	var bad int
	if err == nil {
		rep, bad, err = decodeReply(payload, n.cfg.maxRoster)
	}
	if err == nil && ID(rep.Self.ID) != p {
		err = fmt.Errorf("%w: roster reply describes another peer", ErrHandshake)
	}
	if err != nil {
		_ = s.Reset()
		if errors.Is(err, ErrHandshake) || errors.Is(err, ErrFrameTooLarge) {
			n.stats.handshakeFailures.Add(1)
			n.Penalize(p, err.Error())
		}
		return fmt.Errorf("peer: roster exchange with %s: %w", p, err)
	}
	n.stats.rosterRefused.Add(uint64(bad))
	n.roster.link(p, rep.Self)
	switch {
	case want && rep.Self.Server && rep.Epoch != 0:
		n.roster.applyReply(p, &rep)
	case want && rep.Self.Server:
		n.roster.snapshotRefused(p)
	}
	return nil
}

// handleRoster answers one roster exchange.
func (n *Node) handleRoster(s network.Stream) {
	remote := s.Conn().RemotePeer()
	if !n.track() {
		_ = s.Reset()
		return
	}
	defer n.wg.Done()
	_ = s.SetDeadline(time.Now().Add(n.cfg.handshakeTimeout))
	h, err := n.readHello(s, bufio.NewReaderSize(s, 4<<10), remote)
	if err != nil {
		return
	}
	n.roster.link(remote, h.Self)
	if _, err := s.Write(appendFrame(nil, frameHello, n.roster.replyFor(remote, &h))); err != nil {
		_ = s.Reset()
		return
	}
	// Half-close, then wait for the opener to close its end once it has
	// read the reply, so a close here cannot cut the reply short.
	_ = s.CloseWrite()
	_, _ = io.Copy(io.Discard, io.LimitReader(s, maxHelloSize))
	_ = s.Close()
}

// readHello reads and checks the first frame of an inbound stream. On
// failure it resets the stream, counts the failure and bans a peer that
// sent garbage (not one that is only in another workspace).
func (n *Node) readHello(s network.Stream, br *bufio.Reader, remote ID) (hello, error) {
	typ, payload, err := readFrame(br, maxHelloSize)
	if err == nil && typ != frameHello {
		err = fmt.Errorf("%w: first frame is not a hello", ErrHandshake)
	}
	var h hello
	if err == nil {
		h, err = decodeHello(payload, n.cfg.workspace)
	}
	if err == nil && ID(h.Self.ID) != remote {
		err = fmt.Errorf("%w: hello describes another peer", ErrHandshake)
	}
	if err != nil {
		n.stats.handshakeFailures.Add(1)
		n.cfg.logger.Warn("refused stream", "peer", remote, "err", err)
		_ = s.Reset()
		if (errors.Is(err, ErrHandshake) || errors.Is(err, ErrFrameTooLarge)) && !errors.Is(err, errWrongWorkspace) {
			n.Ban(remote, DefaultBan, "no valid hello: "+err.Error())
		}
		return h, err
	}
	return h, nil
}
