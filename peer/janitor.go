package peer

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// janitor closes direct streams that have carried nothing for the idle
// timeout, in either direction, and lifts their protection, so that the
// connection manager may trim connections nobody uses any more. It runs
// until the node closes.
func (n *Node) janitor() {
	defer n.wg.Done()
	t := time.NewTicker(max(n.cfg.idleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			n.closeIdle()
		case <-n.ctx.Done():
			return
		}
	}
}

func (n *Node) closeIdle() {
	cutoff := time.Now().Add(-n.cfg.idleTimeout).UnixNano()
	var idle []*outStream
	var quiet []ID // peers whose streams are all idle
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	for p, o := range n.out {
		in := n.in[p]
		if o.lastUse.Load() < cutoff && (in == nil || in.lastUse.Load() < cutoff) {
			idle = append(idle, o)
			delete(n.out, p)
			quiet = append(quiet, p)
		}
	}
	for p, in := range n.in {
		if n.out[p] == nil && in.lastUse.Load() < cutoff {
			quiet = append(quiet, p)
		}
	}
	n.mu.Unlock()
	for _, p := range quiet {
		n.host.ConnManager().Unprotect(p, activeTag)
	}
	for _, o := range idle {
		n.stats.idleClosed.Add(1)
		if !n.track() {
			return
		}
		go func() { defer n.wg.Done(); o.close(closeWait, errRetired, false) }()
	}
}

// peerInfo is the AddrInfo to dial m.
func peerInfo(m Member) peer.AddrInfo { return peer.AddrInfo{ID: m.ID, Addrs: m.Addrs} }
