package agent

import (
	"sort"
	"sync"

	"github.com/ceylon-go/ceylon/peer"
)

// The workspace's roster lives in the agent's node (peer.Node.Members):
// a workspace has thousands of members, and every agent holds all of them.
// The agent keeps its own state only for the members that send it
// messages: their detail (decoded once) and their share of the mailbox.

// member is an agent of the workspace that has sent this one a message.
type member struct {
	pid     peer.ID
	detail  AgentDetail
	credits chan struct{} // one slot per message of this peer in the mailbox
}

// roster holds the active members. The node's reader goroutines write it;
// everyone reads it.
type roster struct {
	mu     sync.RWMutex
	active map[peer.ID]*member
}

func (r *roster) init() { r.active = make(map[peer.ID]*member) }

// sender returns the member for pid, making it if pid is a member of the
// workspace; nil if it is not.
func (a *Agent) sender(pid peer.ID) *member {
	r := &a.roster
	r.mu.RLock()
	m := r.active[pid]
	r.mu.RUnlock()
	if m != nil {
		return m
	}
	node := a.network()
	info, ok := node.Member(pid)
	if !ok {
		return nil
	}
	r.mu.Lock()
	if m = r.active[pid]; m == nil {
		m = &member{pid: pid, detail: decodeMeta(pid.String(), info.Meta), credits: make(chan struct{}, a.cfg.peerInflight)}
		r.active[pid] = m
	}
	r.mu.Unlock()
	if !node.Present(pid) { // it left while we made it
		r.remove(pid)
	}
	return m
}

func (r *roster) remove(pid peer.ID) {
	r.mu.Lock()
	delete(r.active, pid)
	r.mu.Unlock()
}

// ConnectedAgents lists the agents in the workspace as this one knows them
// (those that joined and have not left; not only those it holds a
// connection to), sorted by name then ID.
func (a *Agent) ConnectedAgents() []AgentDetail {
	node := a.network()
	if node == nil {
		return nil
	}
	ms := node.Members()
	out := make([]AgentDetail, 0, len(ms))
	for _, m := range ms {
		out = append(out, decodeMeta(m.ID.String(), m.Meta))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// resolve returns the peer ID of an agent ID.
func (a *Agent) resolve(id string) (peer.ID, error) {
	pid, err := peer.ParseID(id)
	if err != nil {
		return "", errUnknownAgent(id, err)
	}
	return pid, nil
}
