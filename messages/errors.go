package messages

import "errors"

// Decoding errors. Every failure to decode network input wraps one of these.
var (
	// ErrMalformed reports bytes that are not a valid envelope or body.
	ErrMalformed = errors.New("messages: malformed input")
	// ErrUnknownKind reports a body whose kind has no registered type.
	ErrUnknownKind = errors.New("messages: unknown kind")
	// ErrUnsupportedVersion reports an envelope written by an incompatible
	// version of the protocol.
	ErrUnsupportedVersion = errors.New("messages: unsupported envelope version")
)

// Validation errors returned by the Validate methods.
var (
	ErrEmptyID   = errors.New("messages: empty id")
	ErrEmptyKind = errors.New("messages: empty kind")
	ErrEmptyType = errors.New("messages: empty task type (processor)")
	// ErrEmptyDescription is no longer returned: a description is
	// optional. Kept so code that names it still builds.
	ErrEmptyDescription    = errors.New("messages: empty description")
	ErrDifficultyRange     = errors.New("messages: difficulty out of range 1-10")
	ErrNegativeValue       = errors.New("messages: negative value")
	ErrSelfDependency      = errors.New("messages: task depends on itself")
	ErrDuplicateDependency = errors.New("messages: duplicate dependency")
	ErrEmptyWorker         = errors.New("messages: empty worker")
	ErrBadAttempt          = errors.New("messages: attempt must be >= 1")
)
