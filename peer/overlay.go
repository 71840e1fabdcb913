package peer

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// The overlay keeps this node connected to a few members of the workspace
// picked at random, so that GossipSub can build its mesh among all of them
// rather than around the roster server everybody joined (a star, which
// would make the server relay every broadcast). It dials only while the
// node has fewer than the overlay degree peers on the workspace topic;
// the connection manager trims whatever grows past its high water mark.

// overlayInterval is how often the overlay looks, when nothing asks it to.
const overlayInterval = 10 * time.Second

// kickOverlay asks the overlay loop to look now (the roster grew, or a
// topic peer left). It does not block.
func (n *Node) kickOverlay() {
	select {
	case n.overlay <- struct{}{}:
	default:
	}
}

func (n *Node) overlayLoop() {
	defer n.wg.Done()
	if n.cfg.overlayDegree == 0 {
		return
	}
	t := time.NewTimer(jitter(overlayInterval))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			t.Reset(jitter(overlayInterval))
		case <-n.overlay:
		case <-n.ctx.Done():
			return
		}
		n.fillOverlay()
	}
}

// jitter returns d ± 20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}

// overlayDials bounds the overlay's dials in flight.
const overlayDials = 4

// fillOverlay dials random members until the node has overlayDegree topic
// peers (or has tried every candidate once).
func (n *Node) fillOverlay() {
	need := n.cfg.overlayDegree - n.topicPeers()
	if need <= 0 {
		return
	}
	cands := n.roster.sample(need, func(p ID) bool { return !n.connected(p) && n.gater.allowed(p) })
	var wg sync.WaitGroup
	sem := make(chan struct{}, overlayDials)
	for _, m := range cands {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.handshakeTimeout)
			defer cancel()
			n.stats.overlayDials.Add(1)
			if err := n.host.Connect(ctx, peerInfo(m)); err != nil {
				n.cfg.logger.Debug("overlay dial failed", "peer", m.ID, "err", err)
			}
		}()
	}
	wg.Wait()
}
