// Package agent runs actors in a ceylon workspace.
//
// An [Agent] is one protoactor actor bound to one [peer.Node]. Every message
// it receives (from the network or from its own timers) goes through the
// actor's mailbox, so handlers of one agent never run concurrently and need
// no locks. Handlers are registered per message type with [On]; the type's
// [messages.Message.Kind] is its wire name.
//
// An agent is an admin (it listens on a known address and prints it) or a
// client (it joins with the workspace ID and the admin's address). Agents
// introduce themselves in the peer handshake, so each knows every other
// agent's name and role ([Agent.ConnectedAgents], [Agent.OnConnect]).
//
// The task roles built on agents, [TaskManager] and [WorkerAgent], live in
// this package too.
package agent
