// Package agent runs actors in a ceylon workspace.
//
// An [Agent] is one protoactor actor bound to one [peer.Node]. Every message
// it receives (from the network or from its own timers) goes through the
// actor's mailbox, so handlers of one agent never run concurrently and need
// no locks. Handlers are registered per message type with [On]; the type's
// [messages.Message.Kind] is its wire name.
//
// An agent is an admin (it listens on a known address and prints it) or a
// client (it joins with the workspace ID and the admin's address). Every
// agent knows every other agent of the workspace by name and role
// ([Agent.ConnectedAgents]) without being connected to all of them: an
// admin serves the workspace's roster to the clients that joined it (see
// package peer). [Agent.OnConnect] and [Agent.OnDisconnect] report agents
// that joined and left the workspace, not connections: a connection that
// drops and comes back within the leave grace (2 s) is not a leave, an
// agent that stops says goodbye and is seen to leave at once, and one that
// restarts is seen to leave and join again. [Agent.Send] reaches any agent
// of the roster, dialing it on demand.
//
// The task roles built on agents, [TaskManager] and [WorkerAgent], live in
// this package too.
package agent
