package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	bolt "go.etcd.io/bbolt"
)

// The manager's side of roles (see grant.go). With the open policy (the
// default) whoever holds the workspace secret may do anything, as a
// member of the workspace always could; with WithGrantsRequired every
// registration, submission and admin request from another agent needs a
// grant for it. Calls made in the manager's own process (Manager's
// methods) are the process owner's and are not checked. Owned by the
// actor.

// WithGrantsRequired makes the manager strict: it serves other agents only
// in the roles their grants give them, grants signed by its own key, by
// one of issuers (operator keys, by peer ID) or, among replicated
// managers, by another manager of its group (so a grant one leader issued
// holds at the next). A refused registration,
// submission or admin request gets [ErrUnauthorized] (or why the grant
// was no good: [ErrGrantExpired], [ErrGrantRevoked], [ErrUntrustedIssuer],
// [ErrBadGrant]) and is counted (ceylon_auth_refused_total).
func WithGrantsRequired(issuers ...peer.ID) ManagerOption {
	return func(c *managerConfig) error {
		c.auth = &authConfig{issuers: map[peer.ID]bool{}}
		for _, id := range issuers {
			if id == "" {
				return errors.New("task: empty grant issuer")
			}
			c.auth.issuers[id] = true
		}
		return nil
	}
}

type authConfig struct{ issuers map[peer.ID]bool }

// Revocations are kept until the grant they revoke expires (when the
// manager has seen it), or for maxRevocationKeep; at most maxRevocations.
const (
	maxRevocationKeep = 400 * 24 * time.Hour
	maxRevocations    = 1 << 16
)

// keyRevoked holds the revocations in the journal's meta bucket.
var keyRevoked = []byte("revoked")

type authState struct {
	grants  map[peer.ID][]Grant  // the valid grants each connected peer presented
	revoked map[string]time.Time // revoked grant IDs, until when the revocation is kept
	swept   time.Time
}

func (m *Manager) strict() bool { return m.cfg.auth != nil }

// GrantsRequired reports whether the manager is strict
// ([WithGrantsRequired]).
func (m *Manager) GrantsRequired() bool { return m.strict() }

// holds reports whether pid holds a grant for role and typ now.
func (m *Manager) holds(pid peer.ID, role Role, typ string) bool {
	now := time.Now()
	for _, g := range m.auth.grants[pid] {
		if g.Valid(now) && m.auth.revoked[g.ID].IsZero() && g.Allows(role, typ) {
			return true
		}
	}
	return false
}

// authorize is nil if pid may act in one of roles for typ, or the refusal
// (counted). Only called in the actor.
func (m *Manager) authorize(pid peer.ID, typ string, roles ...Role) error {
	if !m.strict() || pid == m.agent.Node().ID() {
		return nil
	}
	for _, r := range roles {
		if m.holds(pid, r, typ) {
			return nil
		}
	}
	if m.replicaServer(pid) {
		return nil // a fellow manager of the replicated group: it holds the log already
	}
	m.metrics.authRefused.WithLabelValues(string(roles[0])).Inc()
	what := string(roles[0])
	if typ != "" {
		what += " for type " + typ
	}
	return fmt.Errorf("%w: %s has no grant to act as %s", ErrUnauthorized, pid, what)
}

// onGrantPresent takes the grants a peer presents: the valid ones replace
// those it held; each gets its outcome back.
func (m *Manager) onGrantPresent(ctx agent.Context, gp messages.GrantPresent) error {
	if err := gp.Validate(); err != nil {
		return ctx.Reply(messages.GrantReply{Outcomes: []messages.Outcome{outcome("", err)}})
	}
	from, now := ctx.SenderID(), time.Now()
	var held []Grant
	outs := make([]messages.Outcome, len(gp.Grants))
	for i, b := range gp.Grants {
		g, issuer, err := ParseGrant(b)
		switch {
		case err != nil:
		case issuer != m.agent.Node().ID() && (m.cfg.auth == nil || !m.cfg.auth.issuers[issuer]) && !m.replicaServer(issuer):
			err = fmt.Errorf("%w: %s", ErrUntrustedIssuer, issuer)
		case g.Subject != from:
			err = fmt.Errorf("%w: grant %q is for %s, not for %s who presented it", ErrUnauthorized, g.ID, g.Subject, from)
		case !g.Valid(now):
			err = fmt.Errorf("%w: grant %q is valid from %v to %v", ErrGrantExpired, g.ID, g.NotBefore.Format(time.RFC3339), g.Expires.Format(time.RFC3339))
		case !m.auth.revoked[g.ID].IsZero():
			err = fmt.Errorf("%w: %q", ErrGrantRevoked, g.ID)
			if g.Expires.After(m.auth.revoked[g.ID]) { // a copy that lives longer stays revoked
				m.auth.revoked[g.ID] = g.Expires
				if err := m.journalRevoked(); err != nil {
					m.agent.Logger().Error("revocation not journaled", "grant", g.ID, "err", err)
				}
			}
		}
		if err != nil {
			outs[i] = outcome(g.ID, err)
			m.metrics.grantsRefused.Inc()
			continue
		}
		outs[i].ID = g.ID
		held = append(held, g)
	}
	if len(held) > 0 {
		m.auth.grants[from] = held
	} else {
		delete(m.auth.grants, from)
	}
	m.reauthorize(from)
	return ctx.Reply(messages.GrantReply{Outcomes: outs})
}

// workerTypes splits the types a worker offers into those its grants
// allow and those they do not. Only called in the actor.
func (m *Manager) workerTypes(pid peer.ID, offered []messages.TypeInfo) (allowed []messages.TypeInfo, denied []string) {
	if !m.strict() {
		return offered, nil
	}
	for _, ti := range offered {
		if m.holds(pid, RoleWorker, ti.Name) {
			allowed = append(allowed, ti)
		} else {
			denied = append(denied, ti.Name)
		}
	}
	return allowed, denied
}

// refuseRegistration tells a worker its registration is refused (the
// caller counted the refusal).
func (m *Manager) refuseRegistration(pid peer.ID, err error) {
	_ = m.agent.SendBounded(pid, messages.Refused{What: "registration", Outcome: outcome("", err)})
}

// reauthorize checks a registered worker's grants again (they changed,
// expired, or one was revoked): it keeps the types still allowed, or
// loses the worker, whose attempts go back to the queue.
func (m *Manager) reauthorize(pid peer.ID) {
	w := m.workers[pid]
	if w == nil || !m.strict() {
		return
	}
	allowed, denied := m.workerTypes(pid, w.info.Types)
	if len(denied) == 0 {
		return
	}
	if len(allowed) == 0 {
		err := fmt.Errorf("%w: %s no longer holds a worker grant", ErrUnauthorized, pid)
		m.agent.Logger().Warn("worker no longer authorized", "worker", w.info.Name, "err", err)
		m.workerLost(w, "unauthorized: its grant expired or was revoked")
		m.history[w.info.Name] = w.stats
		m.workerLog.left(w.info.Name, time.Now())
		delete(m.workers, pid)
		m.rebuildWorkerList()
		m.metrics.workerInflight.DeleteLabelValues(w.info.Name)
		m.updateGauges()
		m.metrics.authRefused.WithLabelValues(string(RoleWorker)).Inc()
		m.refuseRegistration(pid, err)
		return
	}
	w.info.Types = allowed
	w.setTypes()
	m.rebuildWorkerList()
	m.refuseTypes(pid, denied)
}

func (m *Manager) refuseTypes(pid peer.ID, denied []string) {
	err := fmt.Errorf("%w: no worker grant for types %v", ErrUnauthorized, denied)
	_ = m.agent.SendBounded(pid, messages.Refused{What: "types", Outcome: outcome("", err), Types: denied[:min(len(denied), messages.MaxRefusedTypes)]})
}

// authSweep, once a second, drops the grants that expired and the
// revocations no longer needed, and checks the workers again.
func (m *Manager) authSweep(now time.Time) {
	if !m.strict() || now.Sub(m.auth.swept) < time.Second {
		return
	}
	m.auth.swept = now
	for pid, gs := range m.auth.grants {
		kept := slices.DeleteFunc(gs, func(g Grant) bool { return !now.Before(g.Expires) || !m.auth.revoked[g.ID].IsZero() })
		if len(kept) == len(gs) {
			continue
		}
		if len(kept) == 0 {
			delete(m.auth.grants, pid)
		} else {
			m.auth.grants[pid] = kept
		}
		m.reauthorize(pid)
	}
	for id, until := range m.auth.revoked {
		if now.After(until) {
			delete(m.auth.revoked, id)
		}
	}
}

// Revoke takes grant id back (whoever issued it): whoever holds it loses
// what it gave at once (a worker it made one is dropped, its attempts
// requeued), and the manager refuses it from then on. With WithJournal it
// is journaled (a restarted or a standby manager keeps refusing it; without
// a journal a restart forgets it) and returns once that is durable.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	return m.durably(ctx, func() error { return m.revokeGrant(id) })
}

// revokeGrant revokes a grant. Only called in the actor.
func (m *Manager) revokeGrant(id string) error {
	switch {
	case id == "" || len(id) > maxGrantID:
		return fmt.Errorf("%w: grant ID of %d bytes", ErrBadFilter, len(id))
	case !m.leading:
		return m.notLeader()
	case len(m.auth.revoked) >= maxRevocations && m.auth.revoked[id].IsZero():
		return fmt.Errorf("%w: %d revocations held", ErrBusy, maxRevocations)
	}
	// Kept for maxRevocationKeep at least, longer if a copy of the grant
	// lives longer (and extended if a later one shows up: onGrantPresent).
	later := func(a, b time.Time) time.Time {
		if b.After(a) {
			return b
		}
		return a
	}
	until := later(time.Now().Add(maxRevocationKeep), m.auth.revoked[id])
	var holders []peer.ID
	for pid, gs := range m.auth.grants {
		for _, g := range gs {
			if g.ID == id {
				until = later(until, g.Expires)
				holders = append(holders, pid)
			}
		}
	}
	m.auth.revoked[id] = until
	for _, pid := range holders {
		m.auth.grants[pid] = slices.DeleteFunc(m.auth.grants[pid], func(g Grant) bool { return g.ID == id })
		m.reauthorize(pid)
	}
	if err := m.journalRevoked(); err != nil {
		return err
	}
	m.agent.Logger().Info("grant revoked", "grant", id, "holders", len(holders))
	return nil
}

// loadRevoked reads the revocations of the last commit.
func (j *Journal) loadRevoked() (map[string]time.Time, error) {
	out := map[string]time.Time{}
	err := j.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyRevoked)
		if v == nil {
			return nil
		}
		if err := messages.Unmarshal(v, &out); err != nil {
			return fmt.Errorf("%w: revocations: %w", ErrJournalCorrupt, err)
		}
		return nil
	})
	if len(out) > maxRevocations {
		return nil, fmt.Errorf("%w: %d revocations", ErrJournalCorrupt, len(out))
	}
	return out, err
}

// GrantsHeld lists the valid grants the connected peers presented, by peer
// (the manager's view for an operator).
func (m *Manager) GrantsHeld(ctx context.Context) (map[peer.ID][]Grant, error) {
	return agent.Call(ctx, m.agent, func() (map[peer.ID][]Grant, error) {
		out := make(map[peer.ID][]Grant, len(m.auth.grants))
		for pid, gs := range m.auth.grants {
			out[pid] = slices.Clone(gs)
		}
		return out, nil
	})
}

// IssueGrant signs g with the manager's own key (which it always trusts).
func (m *Manager) IssueGrant(g Grant) ([]byte, error) {
	n := m.agent.Node()
	if n == nil {
		return nil, agent.ErrNotStarted
	}
	key := n.Host().Peerstore().PrivKey(n.ID())
	if key == nil {
		return nil, errors.New("task: the manager's key is not at hand")
	}
	return IssueGrant(key, g)
}

// Authorize is nil if the sender of a request may act in one of roles
// for task type typ (always, under the open policy), or the refusal
// (counted). For handlers of layers above on the manager's agent (the
// playground's remote producers); only call it in such a handler.
func (m *Manager) Authorize(ctx agent.Context, typ string, roles ...Role) error {
	return m.authorize(ctx.SenderID(), typ, roles...)
}

// journalRevoked puts the revocations in the next commit. Only called in
// the actor.
func (m *Manager) journalRevoked() error {
	if m.cfg.journal == nil {
		return nil
	}
	v, err := messages.MarshalValue(m.auth.revoked)
	if err != nil {
		return err
	}
	m.jputs = append(m.jputs, journalPut{bucket: string(bucketMeta), key: keyRevoked, value: v})
	m.queueFlush()
	return nil
}
