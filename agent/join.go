package agent

import "github.com/ceylon-go/ceylon/peer"

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
