package main

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/ceylon-go/ceylon/monitor"
	"github.com/ceylon-go/ceylon/task"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitRefused     = 4
	exitUnreachable = 5
)

// usageError is a mistake in the command line.
type usageError struct {
	err     error
	printed bool // cobra printed it with the usage already
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode says what kind of failure err is.
func exitCode(err error) int {
	var ue usageError
	var ne net.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue), strings.HasPrefix(err.Error(), "unknown command "), strings.HasPrefix(err.Error(), "unknown shorthand flag"):
		return exitUsage
	case errors.Is(err, task.ErrUnknownTask):
		return exitNotFound
	case errors.Is(err, task.ErrNotFinal), errors.Is(err, task.ErrBadFilter), errors.Is(err, task.ErrNotLeader),
		errors.Is(err, monitor.ErrUnauthorized), errors.Is(err, monitor.ErrForbidden), errors.Is(err, task.ErrUnknownOp),
		errors.Is(err, task.ErrReplyTooLarge), errors.Is(err, task.ErrBusy), errors.Is(err, task.ErrUnauthorized),
		errors.Is(err, task.ErrGrantExpired), errors.Is(err, task.ErrGrantRevoked), errors.Is(err, task.ErrUntrustedIssuer),
		errors.Is(err, task.ErrBadGrant):
		return exitRefused
	case errors.Is(err, errUnreachable), errors.Is(err, task.ErrNoManager), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne):
		return exitUnreachable
	}
	return exitError
}
