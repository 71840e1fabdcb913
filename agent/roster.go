package agent

import (
	"sort"
	"sync"

	"github.com/ceylon-go/ceylon/peer"
)

// member is an agent of the workspace.
type member struct {
	pid     peer.ID
	detail  AgentDetail
	credits chan struct{} // one slot per message of this peer in the mailbox
}

// roster is who is in the workspace, as the node reports joins and
// leaves; everyone reads it.
type roster struct {
	mu    sync.RWMutex
	byPID map[peer.ID]*member
	byID  map[string]*member
}

func (r *roster) init() {
	r.byPID = make(map[peer.ID]*member)
	r.byID = make(map[string]*member)
}

func (r *roster) add(m *member) {
	r.mu.Lock()
	r.byPID[m.pid] = m
	r.byID[m.detail.ID] = m
	r.mu.Unlock()
}

func (r *roster) remove(pid peer.ID) *member {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.byPID[pid]
	if m != nil {
		delete(r.byPID, pid)
		delete(r.byID, m.detail.ID)
	}
	return m
}

func (r *roster) byPeer(pid peer.ID) *member {
	r.mu.RLock()
	m := r.byPID[pid]
	r.mu.RUnlock()
	return m
}

func (r *roster) lookup(id string) *member {
	r.mu.RLock()
	m := r.byID[id]
	r.mu.RUnlock()
	return m
}

// ConnectedAgents lists the agents in the workspace as this one knows them
// (those that joined and have not left; not only those it holds a
// connection to), sorted by name then ID.
func (a *Agent) ConnectedAgents() []AgentDetail {
	a.roster.mu.RLock()
	out := make([]AgentDetail, 0, len(a.roster.byPID))
	for _, m := range a.roster.byPID {
		out = append(out, m.detail)
	}
	a.roster.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// resolve returns the peer ID of an agent ID, from the roster or by parsing.
func (a *Agent) resolve(id string) (peer.ID, error) {
	if m := a.roster.lookup(id); m != nil {
		return m.pid, nil
	}
	pid, err := peer.ParseID(id)
	if err != nil {
		return "", errUnknownAgent(id, err)
	}
	return pid, nil
}
