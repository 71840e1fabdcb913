package main

// Replicated playgrounds: several processes (machines) keep one
// playground's graph through a Raft log; one leads and runs the DAGs,
// the others stand by and take over if it is lost. Producers and workers
// join all of them.
//
//	pipeline -role id -key k1                       # prints k1's peer ID (make k2, k3 too)
//	pipeline -key k1 -secret S -replicate d1 -replicas ID1,ID2,ID3
//	pipeline -key k2 -secret S -replicate d2 -replicas ID1,ID2,ID3 -join ADDR1
//	pipeline -key k3 -secret S -replicate d3 -replicas ID1,ID2,ID3 -join ADDR1,ADDR2
//	pipeline -role worker   -secret S -join ADDR1,ADDR2,ADDR3
//	pipeline -role producer -secret S -join ADDR1,ADDR2,ADDR3

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ceylon-go/ceylon/peer"
	"github.com/ceylon-go/ceylon/playground"
	"github.com/ceylon-go/ceylon/task"
)

// replicaOptions are the playground's options for -replicate.
func replicaOptions(o options) ([]playground.Option, error) {
	switch {
	case o.secret == "":
		return nil, errors.New("-replicate needs -secret (only holders of it take part)")
	case o.key == "":
		return nil, errors.New("-replicate needs -key (a playground is a member of the group by its peer ID)")
	}
	if err := os.MkdirAll(o.replicate, 0o700); err != nil {
		return nil, err
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
	opts := []playground.Option{
		playground.WithJournal(filepath.Join(o.replicate, "journal.db")),
		playground.WithManagerOptions(
			task.WithReplication(filepath.Join(o.replicate, "raft"), ropts...),
			task.WithLeadership(func(leading bool, term uint64) {
				if leading {
					fmt.Printf("leading the playgrounds (term %d)\n", term)
				} else {
					fmt.Printf("standing by (term %d ended)\n", term)
				}
			})),
	}
	if o.join != "" {
		opts = append(opts, playground.WithAgentOptions(agentJoin(o.join)...))
	}
	return opts, nil
}

// printID prints the peer ID of the key in -key (created if missing).
func printID(o options) error {
	if o.key == "" {
		return errors.New("-role id needs -key <file>")
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

// serve runs a serving playground until ctx ends, then prints its report.
func serve(ctx context.Context, p *playground.Playground) error {
	<-ctx.Done()
	rep, err := p.Stats(context.WithoutCancel(ctx))
	if err == nil {
		_, _ = rep.WriteTo(os.Stdout)
	}
	return nil
}
