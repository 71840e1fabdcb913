package agent

import (
	"context"
	"time"

	"github.com/ceylon-go/ceylon/internal/backoff"
	"github.com/ceylon-go/ceylon/peer"
)

// reconnectBackoff paces redials to a lost admin: 100 ms doubling to 5 s,
// ±20% so that many clients of one admin do not redial in step.
var reconnectBackoff = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: 0.2}

// maybeReconnect starts redialing pid if it is an admin this client
// joined through. It runs on a node reader goroutine.
func (a *Agent) maybeReconnect(pid peer.ID) {
	if !a.cfg.reconnect || a.state.Load() != stateStarted {
		return
	}
	var addr string
	for _, j := range a.cfg.join {
		if ai, err := peer.ParseAddr(j); err == nil && ai.ID == pid {
			addr = j
			break
		}
	}
	if addr == "" {
		return
	}
	a.reconnMu.Lock()
	defer a.reconnMu.Unlock()
	if a.reconnecting[pid] || a.ctx.Err() != nil {
		return
	}
	a.reconnecting[pid] = true
	a.reconnWG.Add(1)
	go a.reconnect(pid, addr)
}

// reconnect redials addr until it is back or the agent stops.
func (a *Agent) reconnect(pid peer.ID, addr string) {
	defer a.reconnWG.Done()
	defer func() {
		a.reconnMu.Lock()
		delete(a.reconnecting, pid)
		a.reconnMu.Unlock()
	}()
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(reconnectBackoff.Delay(attempt))
		select {
		case <-t.C:
		case <-a.ctx.Done():
			t.Stop()
			return
		}
		if a.roster.byPeer(pid) != nil {
			return // it came back by itself
		}
		ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
		_, err := a.node.Connect(ctx, addr)
		cancel()
		if err == nil {
			a.log.Info("reconnected", "admin", pid, "attempts", attempt)
			return
		}
		a.log.Debug("reconnect failed", "admin", pid, "attempt", attempt, "err", err)
	}
}

// joinedThrough reports whether pid is one of the admins this agent was
// told to join (always true for an agent without join addresses).
func (a *Agent) joinedThrough(pid peer.ID) bool {
	if len(a.cfg.join) == 0 {
		return true
	}
	for _, j := range a.cfg.join {
		if ai, err := peer.ParseAddr(j); err == nil && ai.ID == pid {
			return true
		}
	}
	return false
}
