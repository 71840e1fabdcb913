package agent

import "github.com/ceylon-go/ceylon/peer"

// JoinedThrough reports whether pid is one of the agents this agent was
// told to join ([WithJoin]); always true for an agent without join
// addresses (one that found its workspace by mDNS or by its ID through
// the DHT). Roles use it to trust
// only the admin they were pointed at.
func (a *Agent) JoinedThrough(pid peer.ID) bool {
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
