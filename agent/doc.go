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
// # Building roles on an agent
//
// A role (the task manager and worker of package task, or one of your own)
// keeps its state in the agent's actor and is built from these hooks:
// [Agent.Post] runs a function in the actor, [Agent.After] and
// [Agent.Every] run one later or periodically, [Call] and [CallDeferred]
// run one from outside and wait for its answer, [Context.SenderID] names
// the authenticated sender of the message being handled, and
// [Agent.SendBounded] sends from the actor without letting one slow peer
// stall it.
package agent
