package task

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
)

// leaderLink shortens a follower's wait for a leader whose connections
// have all closed. A leader that crashes or is SIGKILLed has its
// connections closed by its kernel at once, but Raft only counts missed
// heartbeats: a follower stands for election 1 to 2 heartbeat timeouts
// after the last contact, and refuses others' votes while it still knows
// a leader, so a failover took 0.8 s to over 2 s. Once the leader's last
// connection closes, the follower's heartbeat timeout drops to the leader
// lease (the least Raft allows) for a few election timeouts: the election
// starts a quarter to half a second after the loss. A leader still alive
// (a connection that blinked) keeps its followers with its heartbeats, as
// before; only an outage longer than the lease calls an election earlier.
type leaderLink struct {
	r      *replica
	net    network.Network
	notif  *network.NotifyBundle
	normal time.Duration // the heartbeat timeout configured
	short  time.Duration // the leader lease

	mu      sync.Mutex
	restore *time.Timer // pending return to normal; nil when normal
	closed  bool
}

// watchLeaderLink starts a leaderLink on the replica's host.
func watchLeaderLink(r *replica, h network.Network, conf *raft.Config) *leaderLink {
	l := &leaderLink{r: r, net: h, normal: conf.HeartbeatTimeout, short: conf.LeaderLeaseTimeout}
	l.notif = &network.NotifyBundle{DisconnectedF: l.disconnected}
	h.Notify(l.notif)
	return l
}

// disconnected runs in the swarm's notification path: it must not block.
func (l *leaderLink) disconnected(n network.Network, c network.Conn) {
	p := c.RemotePeer()
	if n.Connectedness(p) == network.Connected || l.short >= l.normal {
		return // another connection remains, or nothing to shorten
	}
	if l.r.raft.State() != raft.Follower {
		return
	}
	if _, leader := l.r.raft.LeaderWithID(); string(leader) != p.String() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	if l.restore == nil && !l.set(l.short) {
		return
	}
	if l.restore != nil {
		l.restore.Stop()
	}
	l.restore = time.AfterFunc(4*l.normal, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !l.closed && l.restore != nil {
			l.set(l.normal)
			l.restore = nil
		}
	})
	l.r.m.agent.Logger().Info("replica: the leader's connections closed; standing for election sooner", "leader", p)
}

// set changes the heartbeat timeout (l.mu held).
func (l *leaderLink) set(d time.Duration) bool {
	rc := l.r.raft.ReloadableConfig()
	rc.HeartbeatTimeout = d
	if err := l.r.raft.ReloadConfig(rc); err != nil {
		l.r.m.agent.Logger().Warn("replica: cannot change the heartbeat timeout", "err", err)
		return false
	}
	return true
}

// close stops watching, and a pending return to normal (the replica is
// stopping).
func (l *leaderLink) close() {
	l.net.StopNotify(l.notif)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.restore != nil {
		l.restore.Stop()
		l.restore = nil
	}
}
