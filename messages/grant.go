package messages

// Roles and grants: under a strict policy the task manager serves a peer
// only in the roles its grants give it (see task.Grant). A peer hands its
// grants over with a GrantPresent request (answered by a GrantReply, one
// outcome per grant), again whenever it renews them. The manager tells a
// worker what became of its registration with Registered or Refused.
//
// The codecs of the types in this file are generated (grant_gen.go).
//
//msgp:tag msgpack

import "fmt"

// Grant limits.
const (
	MaxGrantsPresented = 8       // grants in one GrantPresent
	MaxGrantSize       = 4 << 10 // bytes of one signed grant
	MaxRefusedTypes    = 1024    // types named in one Refused
)

// Code of a refusal for want of a grant.
const CodeUnauthorized = "unauthorized"

// GrantPresent hands the manager the sender's signed grants.
type GrantPresent struct {
	Grants [][]byte `msgpack:"grants"` // at most MaxGrantsPresented (Validate); a limit tag would bound each grant's bytes too
}

// Kind implements Message.
func (GrantPresent) Kind() string { return "ceylon.auth.grants" }

// Validate checks the number and the size of the grants.
func (g GrantPresent) Validate() error {
	if len(g.Grants) > MaxGrantsPresented {
		return fmt.Errorf("grants: %w: %d (at most %d)", ErrMalformed, len(g.Grants), MaxGrantsPresented)
	}
	for _, b := range g.Grants {
		if len(b) > MaxGrantSize {
			return fmt.Errorf("grants: %w: one of %d bytes (at most %d)", ErrMalformed, len(b), MaxGrantSize)
		}
	}
	return nil
}

// GrantReply answers a GrantPresent: an outcome per grant, in order (its
// ID set when the grant could be read; a code when it was refused).
type GrantReply struct {
	Outcomes []Outcome `msgpack:"outcomes,limit=8"`
}

// Kind implements Message.
func (GrantReply) Kind() string { return "ceylon.auth.granted" }

// Registered tells a worker its registration is accepted, for these task
// types (all it offered, unless its grants allow fewer).
type Registered struct {
	Types []string `msgpack:"types,omitempty,allownil,limit=1024"`
}

// Kind implements Message.
func (Registered) Kind() string { return "ceylon.task.registered" }

// Refused tells a peer the manager refused what it asked in a role (a
// registration, or some of the task types it offered).
type Refused struct {
	What    string   `msgpack:"what"` // "registration", "types"
	Outcome Outcome  `msgpack:"outcome"`
	Types   []string `msgpack:"types,omitempty,allownil,limit=1024"` // MaxRefusedTypes
}

// Kind implements Message.
func (Refused) Kind() string { return "ceylon.task.refused" }
