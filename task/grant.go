package task

//go:generate go tool msgp -file grant.go -o grant_gen.go -io=false -tests=false -unexported
//msgp:tag msgpack
//msgp:newtime
//msgp:ignore Grant Role

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ceylon-go/ceylon/messages"
	"github.com/ceylon-go/ceylon/peer"
	"github.com/libp2p/go-libp2p/core/crypto"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
	lprecord "github.com/libp2p/go-libp2p/core/record"
)

// Roles authorized. Under a strict policy ([WithGrantsRequired]) a task
// manager serves a peer only in the roles its grants give it. A grant is
// a statement signed by an issuer the manager trusts (its own key, or an
// operator key it was given): "peer X may act as worker for types A and
// B until T". It is bound to X's libp2p peer ID, which every connection
// authenticates, so a grant is of no use to anyone else; it is a libp2p
// signed envelope (core/record) in its own signing domain. The peer hands
// its grants to the manager (WithWorkerGrants, WithClientGrants; renewed
// with SetGrants, no restart), the manager checks each registration,
// submission and admin request against them, and a revocation (Revoke,
// journaled) takes a grant back before it expires.

// Role is what a grant lets its subject do.
type Role string

// Roles.
const (
	// RoleWorker registers and runs tasks of the grant's types.
	RoleWorker Role = "worker"
	// RoleProducer submits tasks of the grant's types, and waits for,
	// looks up and cancels them.
	RoleProducer Role = "producer"
	// RoleViewer reads everything an operator reads: stats, tasks,
	// workers, series, events.
	RoleViewer Role = "viewer"
	// RoleOperator reads everything and acts: cancel, retry, delete,
	// pause, resume, revoke.
	RoleOperator Role = "operator"
)

var roles = []Role{RoleWorker, RoleProducer, RoleViewer, RoleOperator}

// Grant limits.
const (
	maxGrantID    = 128
	maxGrantTypes = 256
	maxTypeName   = 256
)

// Grant errors. A refusal on the manager's side reaches the caller as
// [ErrUnauthorized]; the others say why a grant itself is no good.
var (
	// ErrUnauthorized reports a registration, submission or admin request
	// refused for want of a grant that allows it.
	ErrUnauthorized = errors.New("task: unauthorized")
	// ErrBadGrant reports a grant that cannot be read, is not signed
	// (or not for grants), or breaks a limit.
	ErrBadGrant = errors.New("task: bad grant")
	// ErrGrantExpired reports a grant outside its validity.
	ErrGrantExpired = errors.New("task: grant expired or not valid yet")
	// ErrGrantRevoked reports a grant the manager revoked.
	ErrGrantRevoked = errors.New("task: grant revoked")
	// ErrUntrustedIssuer reports a grant signed by a key the manager does
	// not trust.
	ErrUntrustedIssuer = errors.New("task: grant signed by an untrusted key")
)

// Grant says what its subject may do, until when.
type Grant struct {
	// ID names the grant (for Revoke); unique per issuer.
	ID string
	// Subject is the peer the grant is for.
	Subject peer.ID
	// Roles are what it may do.
	Roles []Role
	// Types, for the worker and producer roles, are the task types it may
	// run or submit (none: every type).
	Types []string
	// NotBefore (optional) and Expires bound its validity.
	NotBefore, Expires time.Time
}

// Allows reports whether g gives role for task type typ ("" for a role
// without types). An operator may do what a viewer does.
func (g Grant) Allows(role Role, typ string) bool {
	ok := slices.Contains(g.Roles, role) || role == RoleViewer && slices.Contains(g.Roles, RoleOperator)
	if !ok {
		return false
	}
	if typ == "" || len(g.Types) == 0 || role == RoleViewer || role == RoleOperator {
		return true
	}
	return slices.Contains(g.Types, typ)
}

// Valid reports whether now is within g's validity.
func (g Grant) Valid(now time.Time) bool {
	return !now.Before(g.NotBefore) && now.Before(g.Expires)
}

func (g Grant) check() error {
	switch {
	case g.ID == "" || len(g.ID) > maxGrantID:
		return fmt.Errorf("%w: ID of %d bytes (1 to %d)", ErrBadGrant, len(g.ID), maxGrantID)
	case g.Subject == "":
		return fmt.Errorf("%w: no subject", ErrBadGrant)
	case len(g.Roles) == 0 || len(g.Roles) > len(roles):
		return fmt.Errorf("%w: %d roles", ErrBadGrant, len(g.Roles))
	case len(g.Types) > maxGrantTypes:
		return fmt.Errorf("%w: %d types (at most %d)", ErrBadGrant, len(g.Types), maxGrantTypes)
	case g.Expires.IsZero():
		return fmt.Errorf("%w: no expiry", ErrBadGrant)
	}
	for _, r := range g.Roles {
		if !slices.Contains(roles, r) {
			return fmt.Errorf("%w: unknown role %q", ErrBadGrant, r)
		}
	}
	for _, t := range g.Types {
		if t == "" || len(t) > maxTypeName {
			return fmt.Errorf("%w: a type of %d bytes", ErrBadGrant, len(t))
		}
	}
	return nil
}

// ParseRole is the Role named name.
func ParseRole(name string) (Role, error) {
	if r := Role(name); slices.Contains(roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("%w: unknown role %q (worker, producer, viewer, operator)", ErrBadGrant, name)
}

// IssueGrant signs g with key: the issuer is key's peer ID, which a strict
// manager must trust ([WithGrantsRequired]; its own key always is).
func IssueGrant(key crypto.PrivKey, g Grant) ([]byte, error) {
	if err := g.check(); err != nil {
		return nil, err
	}
	rec := &grantRecord{ID: g.ID, Subject: g.Subject.String(), Types: g.Types, NotBefore: g.NotBefore, Expires: g.Expires, IssuedAt: time.Now()}
	for _, r := range g.Roles {
		rec.Roles = append(rec.Roles, string(r))
	}
	env, err := lprecord.Seal(rec, key)
	if err != nil {
		return nil, fmt.Errorf("task: sign grant: %w", err)
	}
	b, err := env.Marshal()
	if err == nil && len(b) > messages.MaxGrantSize {
		return nil, fmt.Errorf("%w: %d bytes signed (at most %d)", ErrBadGrant, len(b), messages.MaxGrantSize)
	}
	return b, err
}

// ParseGrant checks a grant's signature and limits and returns it with its
// issuer. Whether the issuer is trusted, the time and revocations are the
// manager's to check.
func ParseGrant(b []byte) (Grant, peer.ID, error) {
	if len(b) > messages.MaxGrantSize {
		return Grant{}, "", fmt.Errorf("%w: %d bytes (at most %d)", ErrBadGrant, len(b), messages.MaxGrantSize)
	}
	var rec grantRecord
	env, err := lprecord.ConsumeTypedEnvelope(b, &rec)
	if err != nil {
		return Grant{}, "", fmt.Errorf("%w: %w", ErrBadGrant, err)
	}
	if !bytes.Equal(env.PayloadType, rec.Codec()) {
		return Grant{}, "", fmt.Errorf("%w: a signed record of another kind", ErrBadGrant)
	}
	issuer, err := libp2ppeer.IDFromPublicKey(env.PublicKey)
	if err != nil {
		return Grant{}, "", fmt.Errorf("%w: issuer: %w", ErrBadGrant, err)
	}
	subject, err := peer.ParseID(rec.Subject)
	if err != nil {
		return Grant{}, "", fmt.Errorf("%w: subject: %w", ErrBadGrant, err)
	}
	g := Grant{ID: rec.ID, Subject: subject, Types: rec.Types, NotBefore: rec.NotBefore, Expires: rec.Expires}
	for _, r := range rec.Roles {
		g.Roles = append(g.Roles, Role(r))
	}
	if err := g.check(); err != nil {
		return Grant{}, "", err
	}
	return g, issuer, nil
}

// grantRecord is a grant as it is signed.
type grantRecord struct {
	ID        string    `msgpack:"id"`
	Subject   string    `msgpack:"sub"`
	Roles     []string  `msgpack:"roles"`
	Types     []string  `msgpack:"types,omitempty,allownil,limit=256"`
	NotBefore time.Time `msgpack:"nbf,omitempty"`
	Expires   time.Time `msgpack:"exp"`
	IssuedAt  time.Time `msgpack:"iat"`
}

// Domain implements record.Record: signatures over grants are good for
// nothing else.
func (*grantRecord) Domain() string { return "ceylon-grant" }

// Codec implements record.Record.
func (*grantRecord) Codec() []byte { return []byte("/ceylon/grant/1") }

// MarshalRecord implements record.Record.
func (r *grantRecord) MarshalRecord() ([]byte, error) { return r.MarshalMsg(nil) }

// UnmarshalRecord implements record.Record.
func (r *grantRecord) UnmarshalRecord(b []byte) error {
	return messages.Unmarshal(b, r) // bounded: no allocation past what the input holds
}

// EncodeGrant is a signed grant as text (base64), for files and flags.
func EncodeGrant(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// ReadGrant reads a grant file as EncodeGrant wrote it (or raw bytes).
func ReadGrant(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) > 2*messages.MaxGrantSize {
		return nil, fmt.Errorf("%w: %s: %d bytes", ErrBadGrant, path, len(b))
	}
	if d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil {
		return d, nil
	}
	return b, nil
}
