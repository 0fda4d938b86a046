// Package secret owns the secrets in Sluice's config — upstream passwords,
// OAuth2 client secrets and refresh tokens — stored as
// "enc:v1:<key id>:<data>": AES-256-GCM under the application credential
// key, which every node of a farm must hold (seed 002: a node with another
// key "can't retrieve the outgoing email credentials"). The key id names
// the key a secret was made with, so a node holding a different key says
// so plainly instead of failing to log in upstream.
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Prefix marks an encrypted secret.
const Prefix = "enc:v1:"

// EnvKey is the environment variable that may hold the key instead of a file.
const EnvKey = "SLUICE_CREDENTIAL_KEY"

// Key is an application credential key.
type Key struct {
	aead cipher.AEAD
	id   string
}

// keySalt makes the key derivation Sluice's own: the same passphrase
// gives the same key on every node, and a different one than elsewhere.
var keySalt = []byte("sluice application credential key v1")

// NewKey derives a key from a passphrase (the text of a key file or the
// environment variable). Like SharePoint's Set-SPApplicationCredentialKey,
// any passphrase works; it must be the same on every node.
func NewKey(passphrase string) (*Key, error) {
	passphrase = strings.TrimRight(passphrase, "\r\n")
	if len(passphrase) < 12 {
		return nil, errors.New("the application credential key is shorter than 12 characters; use a long random passphrase (sluice secret new-key prints one)")
	}
	raw := argon2.IDKey([]byte(passphrase), keySalt, 2, 19*1024, 1, 32)
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte("key id:"), raw...))
	return &Key{aead: aead, id: hex.EncodeToString(sum[:4])}, nil
}

// LoadKey reads the key from file, or from $SLUICE_CREDENTIAL_KEY when file
// is empty. It returns nil and no error when neither is set.
func LoadKey(file string) (*Key, error) {
	if file == "" {
		v := os.Getenv(EnvKey)
		if v == "" {
			return nil, nil
		}
		return NewKey(v)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read the application credential key file %s: %v", file, unwrapPath(err))
	}
	k, err := NewKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// ID is the key's fingerprint: 8 hex digits, safe to show and to write in
// the config (secrets.key_id) so every node can check it has the same key.
func (k *Key) ID() string { return k.id }

// Encrypt seals plaintext as "enc:v1:<key id>:<base64>".
func (k *Key) Encrypt(plaintext string) string {
	nonce := make([]byte, k.aead.NonceSize())
	rand.Read(nonce)
	sealed := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(k.id))
	return Prefix + k.id + ":" + base64.RawURLEncoding.EncodeToString(sealed)
}

// ErrWrongKey means the secret was encrypted with another key.
var ErrWrongKey = errors.New("encrypted with a different application credential key")

// Decrypt opens a value made by Encrypt.
func (k *Key) Decrypt(s string) (string, error) {
	id, data, err := parse(s)
	if err != nil {
		return "", err
	}
	if id != k.id {
		return "", fmt.Errorf("%w: the secret was made with key %s, this node has key %s; set the same key on every node (sluice secret check)", ErrWrongKey, id, k.id)
	}
	n := k.aead.NonceSize()
	if len(data) < n {
		return "", errors.New("encrypted secret is truncated")
	}
	plain, err := k.aead.Open(nil, data[:n], data[n:], []byte(id))
	if err != nil {
		return "", errors.New("encrypted secret is damaged (it does not authenticate); encrypt it again with sluice secret encrypt")
	}
	return string(plain), nil
}

// KeyID returns the key id an encrypted secret names.
func KeyID(s string) (string, error) {
	id, _, err := parse(s)
	return id, err
}

func parse(s string) (string, []byte, error) {
	rest, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return "", nil, errors.New("not an encrypted secret (enc:v1:...)")
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok || len(id) != 8 {
		return "", nil, errors.New("encrypted secret is malformed: expected enc:v1:<key id>:<data>")
	}
	data, err := base64.RawURLEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, errors.New("encrypted secret is malformed: the data is not base64")
	}
	return id, data, nil
}

// IsEncrypted reports whether s is an enc:v1 value.
func IsEncrypted(s string) bool { return strings.HasPrefix(s, Prefix) }

// Value is a secret in memory. It never prints itself: fmt and slog show
// "***", so a secret cannot reach a log line by accident.
type Value struct{ s string }

// New wraps a plaintext secret.
func New(plain string) Value { return Value{s: plain} }

// Reveal returns the plaintext, for the one place that sends it upstream.
func (v Value) Reveal() string { return v.s }

// IsZero reports whether there is no secret.
func (v Value) IsZero() bool { return v.s == "" }

// String implements fmt.Stringer without revealing anything.
func (v Value) String() string {
	if v.s == "" {
		return ""
	}
	return "***"
}

// GoString hides the secret from %#v too.
func (v Value) GoString() string { return `secret.Value("***")` }

// LogValue implements slog.LogValuer.
func (v Value) LogValue() slog.Value { return slog.StringValue(v.String()) }

// MarshalText keeps secrets out of JSON.
func (v Value) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
