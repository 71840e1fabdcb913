package task

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	libp2ppeer "github.com/libp2p/go-libp2p/core/peer"
)

// FuzzParseGrant feeds the grant decoder what any peer may present: it
// must never panic, and what it accepts must be within the limits and
// signed by the issuer it names.
func FuzzParseGrant(f *testing.F) {
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		f.Fatal(err)
	}
	sub, _ := libp2ppeer.IDFromPrivateKey(k)
	good, err := IssueGrant(k, Grant{ID: "g1", Subject: sub, Roles: []Role{RoleWorker, RoleOperator}, Types: []string{"a", "b"},
		NotBefore: time.Unix(1, 0), Expires: time.Unix(1<<31, 0)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, issuer, err := ParseGrant(b)
		if err != nil {
			return
		}
		if issuer == "" || g.check() != nil || len(g.Types) > maxGrantTypes || !slices.ContainsFunc(roles, func(r Role) bool { return slices.Contains(g.Roles, r) }) {
			t.Fatalf("accepted %+v from %q", g, issuer)
		}
	})
}
