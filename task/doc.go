// Package task hands typed tasks to workers across a workspace: a
// [Manager] (the admin) matches each task to an eligible [Worker] by type,
// capabilities, free capacity and skill, assigns it with an
// acknowledgement and a lease, retries failed attempts with backoff,
// requeues the tasks of lost workers, and keeps the results (for a day,
// the last 100,000: [WithRetention], [WithKeepFinished]); a [Worker]
// runs the processors registered for each task type, outside its actor,
// and reports heartbeats and results.
//
// Both roles are built by composition on an [agent.Agent] the caller made,
// as GossipSub is built on a host: the manager on an admin
// ([agent.AsAdmin]), a worker on a client that joins it
// ([agent.WithJoin]). Every setting of the agent (workspace, secret,
// listen addresses, identity, logger) is the agent's own option; the
// role's options configure only the role.
//
// With a [Journal] ([WithJournal]) every change of a task's state is
// written (in group commits, off the actor) before it takes effect, so a
// restarted manager resumes where it stopped: nothing is lost and nothing
// is reported twice.
//
// With [WithReplication] several managers keep one journal through a Raft
// log over the workspace's own connections: one leads, the others stand
// by and take over, with the tasks and the attempts in flight, when it is
// lost. Workers and [Client]s follow the leader by themselves; the leader's
// term travels in every assignment, so a deposed leader is fenced.
//
// The manager knows no dependencies between tasks; package playground
// schedules dependency graphs on top of it.
package task
