// Package secrets seals signing secrets at rest with AES-256-GCM.
//
// A Keyring holds one active master key, which seals, and any number of
// older ones, which still open what they sealed, so the master key can be
// rotated without downtime. Every sealed value is stored next to the id of
// the master key that sealed it.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// KeySize is the length of a master key in bytes (AES-256).
const KeySize = 32

// ErrUnknownKey is returned by Open when the value was sealed by a master key
// the keyring does not hold.
var ErrUnknownKey = errors.New("secrets: sealed by an unknown master key")

// ErrBadCiphertext is returned by Open when the value does not authenticate
// (wrong key, wrong associated data, or tampered bytes).
var ErrBadCiphertext = errors.New("secrets: ciphertext does not authenticate")

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// MasterKey is one named AES-256 key.
type MasterKey struct {
	ID  string
	Key []byte // exactly KeySize bytes
}

// String renders the key in the form ParseMasterKey reads: "ID:base64(key)".
func (k MasterKey) String() string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Key)
}

// ParseMasterKey reads "ID:base64(32 bytes)". The id is 1 to 32 characters of
// [A-Za-z0-9_.-]. The error says what is wrong without echoing the key.
func ParseMasterKey(s string) (MasterKey, error) {
	id, b64, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return MasterKey{}, errors.New(`master key must look like "ID:BASE64" (generate one with "hookd masterkey generate")`)
	}
	if err := ValidKeyID(id); err != nil {
		return MasterKey{}, err
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return MasterKey{}, errors.New("master key after the ':' is not standard base64")
	}
	if len(key) != KeySize {
		return MasterKey{}, fmt.Errorf("master key must decode to %d bytes, got %d", KeySize, len(key))
	}
	return MasterKey{ID: id, Key: key}, nil
}

// ValidKeyID checks a master key id: 1 to 32 of [A-Za-z0-9_.-].
func ValidKeyID(id string) error {
	if !keyIDRE.MatchString(id) {
		return fmt.Errorf("master key id %q must be 1 to 32 characters of letters, digits, '_', '.', '-'", id)
	}
	return nil
}

// GenerateMasterKey makes a new random master key with the given id.
func GenerateMasterKey(id string) MasterKey {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	return MasterKey{ID: id, Key: key}
}

// LoadOrCreateKeyFile reads a master key from path. If the file does not
// exist and create is true, it generates one, writes it with mode 0600 (the
// directory is made with 0700) and reports created=true. A file readable by
// group or others is refused, so a leaked permission is noticed.
func LoadOrCreateKeyFile(path string, create bool) (key MasterKey, created bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		st, statErr := os.Stat(path)
		if statErr != nil {
			return MasterKey{}, false, statErr
		}
		if st.Mode().Perm()&0o077 != 0 {
			return MasterKey{}, false, fmt.Errorf("master key file %s has mode %o; make it private with: chmod 600 %s", path, st.Mode().Perm(), path)
		}
		k, err := ParseMasterKey(string(b))
		if err != nil {
			return MasterKey{}, false, fmt.Errorf("master key file %s: %w", path, err)
		}
		return k, false, nil
	case !errors.Is(err, os.ErrNotExist) || !create:
		return MasterKey{}, false, fmt.Errorf("read master key file: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return MasterKey{}, false, fmt.Errorf("create data directory: %w", err)
	}
	k := GenerateMasterKey("local-" + strings.ToLower(base64.RawURLEncoding.EncodeToString(randomBytes(4))))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return MasterKey{}, false, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(k.String() + "\n"); err != nil {
		_ = f.Close()
		return MasterKey{}, false, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return MasterKey{}, false, fmt.Errorf("write master key file: %w", err)
	}
	return k, true, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// Keyring seals with its active key and opens with any key it holds. It is
// safe for concurrent use.
type Keyring struct {
	active string
	aeads  map[string]cipher.AEAD
	raw    map[string][]byte // the master keys themselves, for DerivedKeys
	order  []string          // key ids, active first, then old as given
}

// NewKeyring returns a keyring that seals with active and can also open
// values sealed by any of old. Ids must be distinct.
func NewKeyring(active MasterKey, old ...MasterKey) (*Keyring, error) {
	kr := &Keyring{active: active.ID, aeads: map[string]cipher.AEAD{}, raw: map[string][]byte{}}
	for _, k := range append([]MasterKey{active}, old...) {
		if _, dup := kr.aeads[k.ID]; dup {
			return nil, fmt.Errorf("master key id %q given twice", k.ID)
		}
		if len(k.Key) != KeySize {
			return nil, fmt.Errorf("master key %q must be %d bytes", k.ID, KeySize)
		}
		block, err := aes.NewCipher(k.Key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		kr.aeads[k.ID] = aead
		kr.raw[k.ID] = append([]byte(nil), k.Key...)
		kr.order = append(kr.order, k.ID)
	}
	return kr, nil
}

// DerivedKeys returns a 32-byte key for one purpose (for example signing
// download links) under every master key the keyring holds, the active one
// first: HMAC-SHA256 of the purpose string under the master key. The first
// makes new values; the others let values made before a master key
// rotation verify while the old key is listed. Distinct purposes give
// independent keys, and the master keys never leave the keyring.
func (kr *Keyring) DerivedKeys(purpose string) [][]byte {
	out := make([][]byte, 0, len(kr.order))
	for _, id := range kr.order {
		out = append(out, derive(kr.raw[id], purpose))
	}
	return out
}

func derive(master []byte, purpose string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// Has reports whether the keyring holds the master key id.
func (kr *Keyring) Has(id string) bool {
	_, ok := kr.aeads[id]
	return ok
}

// Seal encrypts plaintext under the active key, binding it to aad (the
// record's id, so a sealed value cannot be moved to another record). It
// returns the master key id and nonce||ciphertext.
func (kr *Keyring) Seal(plaintext, aad []byte) (keyID string, sealed []byte) {
	aead := kr.aeads[kr.active]
	nonce := randomBytes(aead.NonceSize())
	return kr.active, aead.Seal(nonce, nonce, plaintext, aad)
}

// Open decrypts a value sealed by Seal under keyID with the same aad. It
// returns ErrUnknownKey or ErrBadCiphertext.
func (kr *Keyring) Open(keyID string, sealed, aad []byte) ([]byte, error) {
	aead, ok := kr.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, keyID)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, ErrBadCiphertext
	}
	nonce, ct := sealed[:aead.NonceSize()], sealed[aead.NonceSize():]
	pt, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrBadCiphertext
	}
	return pt, nil
}
