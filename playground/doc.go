// Package playground runs tasks with dependencies on a workspace of
// workers: the Go form of Ceylon's TaskProcessingPlayground, with a real
// dependency scheduler.
//
// A [Playground] starts an [task.Manager] and, optionally, local
// workers in the same process; remote workers in other processes (or on
// other machines) join its workspace with [Worker.Agent]. Tasks are added
// one at a time with [Playground.AddAndExecuteTask] or as a whole DAG with
// [Playground.AddTasks]. With [WithJournal] the graph and every result
// survive a restart; with [WithHTTP] a live dashboard, /stats and
// /metrics are served while it runs.
//
// # Dependencies
//
// A task runs only after every task in its Dependencies completed
// successfully; its handler gets their outputs in [Request.Inputs], keyed
// by task ID (dependencies that returned no output are left out). Independent tasks run in parallel, limited only by the
// workers' capacity. A task whose dependency failed (or was cancelled) is
// not run: it fails with [ErrDependencyFailed] naming the dependency, and
// so do its own dependents, transitively. Unknown dependencies and cycles
// are rejected when tasks are added ([ErrUnknownDependency], [ErrCycle]),
// and then nothing of the batch is added.
//
// # Child tasks
//
// A handler may spawn child tasks with [Request.Spawn] (fan-out from inside
// a task). When the handler succeeds, its children are added to the
// playground (a child without an ID gets "<parent>/<n>"; children may
// depend on each other and on existing tasks). The parent completes when
// all its children have completed successfully, and fails, naming the
// child, if one of them fails. Tasks that depend on the parent start only
// then, and receive the parent's output and every child's output in their
// inputs. The parent's own result (output, worker, timing) is the one its
// handler produced.
//
// # Replicated playgrounds
//
// With [WithJournal] and, among [WithManagerOptions],
// [task.WithReplication], several playgrounds (processes, machines) keep
// one graph: its records ride the manager's commits through the Raft log.
// The leading one holds the graph and runs it; a standby holds none: its
// AddTasks, Wait, Result, Task and Cancel answer [task.ErrNotLeader]
// (naming the leader when it knows it), and its Progress is zero. When the leader is lost, the next one rebuilds the graph from
// its copy of the journal as it takes the lead, takes over the attempts
// its workers are running, and goes on; waiters on the old leader hear
// task.ErrNotLeader. A [Client] follows the leader by itself: its calls
// block through a failover, and a batch it sends again (after a lost
// reply, or to the next leader) is the same batch, answered as added.
// Start does not wait for workers there: they register with whichever
// playground leads.
package playground
