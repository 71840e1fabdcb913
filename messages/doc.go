// Package messages is the wire vocabulary of a ceylon workspace: the
// [Message] interface with its stable [Message.Kind] name, the [Envelope]
// every message travels in, the msgpack codec, the kind [Registry] that turns
// a body back into its Go type, and the task-layer types ([Task],
// [TaskAssignment], [TaskResult]) with their control messages.
//
// The package knows nothing of libp2p or actors: it turns values into bytes
// and back, and says clearly (with the sentinel errors below) when bytes are
// not a valid message.
package messages
