package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/task"
)

// Replicated admins (-replicate DIR): several admin processes keep the
// tasks in one Raft log; one leads, the others stand by and take over when
// it is lost. They run no scenario of their own: producers (-role producer
// -join all of them) submit, workers (-join all of them) follow the
// leader by themselves.

// replicaOptions checks the flags of a replicated admin and returns its
// manager options; it sets the journal to DIR/journal.db unless -journal
// is given.
func replicaOptions(o *options) ([]task.ManagerOption, error) {
	switch {
	case o.secret == "":
		return nil, errors.New("-replicate needs -secret (only holders of it may take part)")
	case o.key == "":
		return nil, errors.New("-replicate needs -key (an admin is a member of the group by its peer ID)")
	}
	if err := os.MkdirAll(o.replicate, 0o700); err != nil {
		return nil, err
	}
	if o.journal == "" {
		o.journal = filepath.Join(o.replicate, "journal.db")
	}
	var ropts []task.ReplicaOption
	if o.replicas != "" {
		var ids []peer.ID
		for _, s := range strings.Split(o.replicas, ",") {
			id, err := peer.ParseID(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("-replicas: %q: %w", s, err)
			}
			ids = append(ids, id)
		}
		ropts = append(ropts, task.ReplicaBootstrap(ids...))
	}
	return []task.ManagerOption{
		task.WithReplication(filepath.Join(o.replicate, "raft"), ropts...),
		task.WithLeadership(func(leading bool, term uint64) {
			if leading {
				fmt.Printf("leading the task managers (term %d)\n", term)
			} else {
				fmt.Printf("standing by (term %d ended)\n", term)
			}
		}),
	}, nil
}

// serveReplicated runs a replicated admin until ctx ends: it applies
// -add-standby and -remove-standby once it leads, and prints the group.
func serveReplicated(ctx context.Context, o options, m *task.Manager) error {
	st, err := m.Replica()
	if err != nil {
		return err
	}
	fmt.Printf("replicating as %s (%s); Ctrl-C to stop\n", m.Agent().ID(), st.State)
	for _, ch := range []struct {
		id  string
		add bool
	}{{o.addStandby, true}, {o.rmStandby, false}} {
		if ch.id == "" {
			continue
		}
		id, err := peer.ParseID(ch.id)
		if err != nil {
			return fmt.Errorf("standby %q: %w", ch.id, err)
		}
		for { // once this admin leads
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if ch.add {
				err = m.AddStandby(cctx, id)
			} else {
				err = m.RemoveStandby(cctx, id)
			}
			cancel()
			if err == nil || !errors.Is(err, task.ErrNotLeader) || ctx.Err() != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("changing the group: %w", err)
		}
		verb := map[bool]string{true: "added", false: "removed"}[ch.add]
		fmt.Printf("%s %s\n", verb, id)
	}
	if rs, err := m.Replicas(ctx); err == nil {
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID.String())
		}
		fmt.Printf("the group: %s\n", strings.Join(ids, ", "))
	}
	<-ctx.Done()
	return ctx.Err()
}

// printID prints the peer ID of the -key file (created if missing), to
// list it in the -replicas of each admin.
func printID(o options) error {
	if o.key == "" {
		return errors.New("-role id needs -key FILE")
	}
	k, err := peer.LoadOrCreateIdentity(o.key)
	if err != nil {
		return err
	}
	id, err := peer.IDFromKey(k)
	if err != nil {
		return err
	}
	fmt.Println(id)
	return nil
}
