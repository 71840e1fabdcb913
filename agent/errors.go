package agent

import "errors"

var (
	// ErrNotStarted is returned by calls that need a started agent.
	ErrNotStarted = errors.New("agent: not started")
	// ErrStopped is returned by calls on a stopped agent.
	ErrStopped = errors.New("agent: stopped")
	// ErrAlreadyStarted is returned by a second Start.
	ErrAlreadyStarted = errors.New("agent: already started")
	// ErrDuplicateHandler reports a second handler for one kind.
	ErrDuplicateHandler = errors.New("agent: handler already registered for kind")
	// ErrUnknownAgent reports a send to an ID that is not a valid agent ID.
	ErrUnknownAgent = errors.New("agent: unknown agent")
	// ErrNoJoinAddress reports a client with no join address, no
	// bootstrap address and no mDNS discovery.
	ErrNoJoinAddress = errors.New("agent: client needs a join address, a bootstrap address or mDNS")
	// ErrNoReplyTarget reports a Reply from a context with no sender.
	ErrNoReplyTarget = errors.New("agent: nothing to reply to")
	// ErrBadReply reports a reply whose kind is not registered with the
	// requesting agent.
	ErrBadReply = errors.New("agent: undecodable reply")
	// ErrPeerLeft reports a Request whose peer left the workspace before
	// it replied.
	ErrPeerLeft = errors.New("agent: peer left before replying")
)
