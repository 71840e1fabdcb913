package peer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ID identifies a node (its libp2p peer ID).
type ID = peer.ID

// ParseID parses a peer ID in its string (base58 or CID) form.
func ParseID(s string) (ID, error) { return peer.Decode(s) }

// LoadOrCreateIdentity reads an identity key from path, or creates an
// Ed25519 key and writes it there (mode 0600) when the file does not exist.
// A node that reuses its key keeps its peer ID, so the address it printed
// stays valid across restarts. A file that exists but is not a key fails
// with [ErrBadIdentity] rather than being replaced.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		k, err := crypto.UnmarshalPrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadIdentity, path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	data, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return k, nil
}

// GenerateIdentity creates a fresh Ed25519 identity key.
func GenerateIdentity() (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(nil)
	return k, err
}

// IDFromKey returns the peer ID a node with key k has.
func IDFromKey(k crypto.PrivKey) (ID, error) { return peer.IDFromPrivateKey(k) }
