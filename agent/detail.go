package agent

import (
	"fmt"

	"github.com/ceylon-go/ceylon/messages"

	"github.com/vmihailenco/msgpack/v5"
)

// Mode is an agent's place in the workspace.
type Mode int

const (
	// Client agents join a workspace through an admin's address.
	Client Mode = iota
	// Admin agents listen on a known address for clients to join.
	Admin
)

// String implements fmt.Stringer.
func (m Mode) String() string {
	if m == Admin {
		return "admin"
	}
	return "client"
}

// AgentDetail identifies an agent to the others: its ID (the libp2p peer ID
// in base58, stable when the agent has an identity file), and the name and
// role it introduced itself with.
type AgentDetail struct {
	ID   string `msgpack:"-"`
	Name string `msgpack:"name"`
	Role string `msgpack:"role"`
	Mode Mode   `msgpack:"mode"`
}

// String implements fmt.Stringer.
func (d AgentDetail) String() string {
	id := d.ID
	if len(id) > 12 {
		id = id[len(id)-8:]
	}
	if d.Name == "" {
		return id
	}
	return fmt.Sprintf("%s(%s…%s)", d.Name, d.Role, id)
}

// encodeMeta is the agent's introduction, carried in the peer hello.
func encodeMeta(d AgentDetail) []byte {
	b, err := msgpack.Marshal(&d)
	if err != nil {
		panic(err) // strings and an int: cannot fail
	}
	return b
}

// decodeMeta reads a peer's introduction; a peer that sent none (or junk)
// gets an empty name and role.
func decodeMeta(id string, meta []byte) AgentDetail {
	var d AgentDetail
	if err := messages.Unmarshal(meta, &d); err != nil {
		d = AgentDetail{}
	}
	d.ID = id
	return d
}
