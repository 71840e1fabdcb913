package task_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ceylon-go/ceylon/agent"
	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/task"
)

// A replicated manager: its journal commits go through a Raft log kept by
// the group's managers (here a group of one, which leads at once; a group
// of three survives the loss of any one). Workers and producers work with
// it as with any manager; a standby would answer ErrNotLeader.
func ExampleWithReplication() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, _ := os.MkdirTemp("", "replica-example")
	defer os.RemoveAll(dir)
	net := []agent.Option{agent.WithListenAddrs("/ip4/127.0.0.1/tcp/0"), agent.WithWorkspace("example-ha"), agent.WithSecret("s3cret")}

	admin, _ := agent.New("manager", append(net, agent.AsAdmin())...)
	j, err := task.OpenJournal(filepath.Join(dir, "journal.db"), "example-ha")
	if err != nil {
		panic(err)
	}
	defer j.Close()
	leading := make(chan uint64, 1)
	m, err := task.NewManager(admin, task.WithJournal(j),
		task.WithReplication(filepath.Join(dir, "raft"), task.ReplicaBootstrap()), // the group: this manager alone
		task.WithLeadership(func(lead bool, term uint64) {
			if lead {
				leading <- term
			}
		}))
	if err != nil {
		panic(err)
	}
	if err := m.Start(ctx); err != nil {
		panic(err)
	}
	defer m.Stop()
	<-leading

	worker, _ := agent.New("echo", append(net, agent.WithJoin(m.Addrs()[0]))...)
	w, _ := task.NewWorker(worker)
	w.Handle("echo", func(_ context.Context, job *task.Job) ([]byte, error) { return job.Task.Input, nil })
	if err := w.Start(ctx); err != nil {
		panic(err)
	}
	defer w.Stop()

	res, err := m.Run(ctx, messages.Task{ID: "t1", Type: "echo", Input: []byte("replicated")})
	if err != nil {
		panic(err)
	}
	st, _ := m.Replica()
	fmt.Println(string(res.Output), st.State)
	// Output: replicated Leader
}
