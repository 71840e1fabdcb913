package peer

import (
	"crypto/sha256"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// A workspace secret makes the workspace a libp2p private network: every
// connection is wrapped in a stream cipher keyed by a pre-shared key before
// the security handshake, so a peer without the secret cannot complete a
// connection at all — it cannot join, publish, send, receive or even learn
// who is there. The key is derived from the workspace ID and the secret, so
// one secret reused across workspaces gives different keys.
//
// Trade-offs: libp2p private networks run over TCP only (no QUIC, so no
// UDP hole punching); a wrong key does not fail fast with a clear error —
// the handshake hangs or fails with misleading errors — so Connect bounds
// it and says "wrong workspace secret?"; and the secret protects admission
// and confidentiality for the whole workspace, not per agent.
func derivePSK(workspace, secret string) pnet.PSK {
	h := sha256.New()
	h.Write([]byte("ceylon-go/workspace-psk/v1\x00"))
	h.Write([]byte(workspace))
	h.Write([]byte{0})
	h.Write([]byte(secret))
	return pnet.PSK(h.Sum(nil))
}
