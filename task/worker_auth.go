package task

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
)

// A worker's side of roles (see grant.go): it hands its grants to its
// manager before it registers, follows only the managers it trusts, and
// hears whether its registration was accepted.

// WithWorkerGrants gives the worker its grants (from IssueGrant), handed
// to every manager it registers with; renew them with SetGrants.
func WithWorkerGrants(grants ...[]byte) WorkerOption {
	return func(c *workerConfig) error {
		if len(grants) > messages.MaxGrantsPresented {
			return fmt.Errorf("%w: %d grants (at most %d)", ErrBadGrant, len(grants), messages.MaxGrantsPresented)
		}
		c.grants = slices.Clone(grants)
		return nil
	}
}

// WithTrustedManagers makes the worker follow only these managers (by
// peer ID): an agent that declares the admin role but is not one of them
// gets nothing from it, and its assignments are ignored. Without it the
// worker trusts the admin it joined through (WithJoin), or any admin of
// the workspace when it found it by mDNS or by the workspace ID.
func WithTrustedManagers(ids ...peer.ID) WorkerOption {
	return func(c *workerConfig) error {
		c.managers = map[peer.ID]bool{}
		for _, id := range ids {
			if id == "" {
				return errors.New("task: empty manager ID")
			}
			c.managers[id] = true
		}
		return nil
	}
}

// trusts reports whether the worker may take pid for its manager.
func (w *Worker) trusts(pid peer.ID) bool {
	if w.cfg.managers != nil {
		return w.cfg.managers[pid]
	}
	return w.agent.JoinedThrough(pid)
}

// registration is what the worker last heard of its registration. Owned
// by the actor.
type registration struct {
	types    []string      // accepted types
	err      error         // the refusal, or why the grants were not taken
	answered chan struct{} // closed once the manager answered
}

// SetGrants replaces the worker's grants and hands them to its manager
// now (renewal: no restart); the manager then checks its registration
// again. It returns the manager's refusal of any of them.
func (w *Worker) SetGrants(ctx context.Context, grants ...[]byte) error {
	if len(grants) > messages.MaxGrantsPresented {
		return fmt.Errorf("%w: %d grants (at most %d)", ErrBadGrant, len(grants), messages.MaxGrantsPresented)
	}
	mgr, err := agent.Call(ctx, w.agent, func() (peer.ID, error) {
		w.cfg.grants = slices.Clone(grants)
		return w.manager, nil
	})
	if err != nil || mgr == "" {
		return err
	}
	_, err = presentGrants(ctx, w.agent, mgr, grants)
	w.agent.Post(func() {
		w.grantErr = err
		w.introduced()
	})
	return err
}

// Registration waits until the manager has answered the worker's last
// registration and returns the task types it accepted, or its refusal
// ([ErrUnauthorized], errors.Is works).
func (w *Worker) Registration(ctx context.Context) ([]string, error) {
	reg, err := agent.Call(ctx, w.agent, func() (*registration, error) { return w.registration(), nil })
	if err != nil {
		return nil, err
	}
	select {
	case <-reg.answered:
	case <-ctx.Done():
		return nil, fmt.Errorf("task: no answer to the registration: %w", ctx.Err())
	}
	return agent.Call(ctx, w.agent, func() ([]string, error) { return slices.Clone(reg.types), reg.err })
}

func (w *Worker) registration() *registration {
	if w.reg == nil {
		w.reg = &registration{answered: make(chan struct{})}
	}
	return w.reg
}

// answered records the manager's answer and wakes Registration.
func (w *Worker) answered(types []string, err error) {
	reg := w.registration()
	reg.types, reg.err = types, err
	select {
	case <-reg.answered:
	default:
		close(reg.answered)
	}
}

func (w *Worker) onRegistered(ctx agent.Context, r messages.Registered) error {
	if !w.fromManager(ctx) {
		return nil
	}
	w.answered(r.Types, nil)
	return nil
}

func (w *Worker) onRefused(ctx agent.Context, r messages.Refused) error {
	if !w.fromManager(ctx) {
		return nil
	}
	err := outcomeErr(r.Outcome)
	if err == nil {
		err = ErrUnauthorized
	}
	w.agent.Logger().Warn("task manager refused", "what", r.What, "types", r.Types, "err", err)
	if r.What == "registration" {
		w.answered(nil, errors.Join(err, w.grantErr))
	}
	return nil
}

// presentGrants hands grants to the manager; it returns how many it
// accepted and an error joining one per grant refused.
func presentGrants(ctx context.Context, a *agent.Agent, mgr peer.ID, grants [][]byte) (int, error) {
	rep, err := a.Request(ctx, mgr.String(), messages.GrantPresent{Grants: grants})
	if err != nil {
		return 0, fmt.Errorf("task: presenting grants: %w", err)
	}
	r, ok := rep.(messages.GrantReply)
	if !ok {
		return 0, fmt.Errorf("task: presenting grants: %w: reply of kind %s", ErrRemote, rep.Kind())
	}
	var errs []error
	for _, o := range r.Outcomes {
		if err := outcomeErr(o); err != nil {
			errs = append(errs, fmt.Errorf("grant %q: %w", o.ID, err))
		}
	}
	return len(r.Outcomes) - len(errs), errors.Join(errs...)
}
