package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sluice-relay/sluice/internal/secret"
)

// Secrets says where this node's application credential key is. Every node
// of a farm must hold the same key; the config names its id so a node with
// another key is found at load, not when mail piles up.
type Secrets struct {
	// KeyFile holds the key (a passphrase). Default: $SLUICE_CREDENTIAL_KEY.
	KeyFile string `yaml:"key_file"`
	// KeyID is the id of the key the config's secrets were encrypted with
	// (sluice secret encrypt prints it).
	KeyID string `yaml:"key_id"`
}

// Secret is a password, client secret or token in the config: plain text,
// or enc:v1:... made by `sluice secret encrypt`, decrypted at load.
type Secret struct {
	Raw   string // as written
	value secret.Value
}

func (s *Secret) setScalar(v string) error {
	s.Raw = v
	return nil
}

// Value is the secret, decrypted.
func (s Secret) Value() secret.Value { return s.value }

// Encrypted reports whether the config holds the secret encrypted.
func (s Secret) Encrypted() bool { return secret.IsEncrypted(s.Raw) }

// IsZero reports whether no secret is set.
func (s Secret) IsZero() bool { return s.Raw == "" }

// Key returns the node's application credential key, nil if none.
func (c *Config) Key() *secret.Key { return c.key }

// checkSecrets loads the node's key and decrypts every secret, saying
// plainly when this node holds a different key than the config expects.
func (k *checker) checkSecrets() {
	c := k.c
	key, err := secret.LoadKey(c.Secrets.KeyFile)
	if err != nil {
		k.errorf("secrets.key_file", "%v", err)
	}
	c.key = key
	// Key ids are hex; one copied in capitals names the same key.
	c.Secrets.KeyID = strings.ToLower(strings.TrimSpace(c.Secrets.KeyID))
	if c.Secrets.KeyID != "" {
		switch {
		case key == nil && err == nil:
			k.errorf("secrets.key_id", "the config's secrets need key %s, but this node has no application credential key; set secrets.key_file or $%s", c.Secrets.KeyID, secret.EnvKey)
		case key != nil && key.ID() != c.Secrets.KeyID:
			k.errorf("secrets.key_id", "this node's application credential key is %s, but the config's secrets were encrypted with key %s: this node cannot retrieve the upstream credentials; install the same key on every node%s", key.ID(), c.Secrets.KeyID, keyFileNote(c.Secrets.KeyFile))
		}
	}
	for i := range c.SendConnectors {
		sc := &c.SendConnectors[i]
		p := fmt.Sprintf("send_connectors[%d].auth", i)
		k.openSecret(&sc.Auth.Password, p+".password", key, err)
		k.openSecret(&sc.Auth.OAuth2.ClientSecret, p+".oauth2.client_secret", key, err)
		k.openSecret(&sc.Auth.OAuth2.RefreshToken, p+".oauth2.refresh_token", key, err)
	}
}

// openSecret decrypts s. keyErr is why the key could not be loaded; that
// is reported once, at secrets.key_file, so each secret need not repeat
// that this node "has no key, set secrets.key_file" when it is set.
func (k *checker) openSecret(s *Secret, path string, key *secret.Key, keyErr error) {
	if !s.Encrypted() {
		s.value = secret.New(s.Raw)
		return
	}
	if keyErr != nil {
		return
	}
	if key == nil {
		id, _ := secret.KeyID(s.Raw)
		k.errorf(path, "is encrypted with key %s, but this node has no application credential key; set secrets.key_file or $%s", id, secret.EnvKey)
		return
	}
	v, err := key.Decrypt(s.Raw)
	if err != nil {
		note := ""
		if errors.Is(err, secret.ErrWrongKey) {
			note = keyFileNote(k.c.Secrets.KeyFile)
		}
		k.errorf(path, "cannot be decrypted: %v%s", err, note)
		return
	}
	s.value = secret.New(v)
}

// keyFileNote explains a wrong key that may be the right passphrase in
// another encoding: the key is the file's bytes, so the same passphrase
// written by Windows PowerShell 5.1 (`sluice secret new-key > file` makes
// UTF-16) or saved by Notepad with a byte order mark is another key,
// though the files look the same. The bytes are not converted: a farm
// whose nodes all have such a file works, and must keep its key id.
func keyFileNote(path string) string {
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var what string
	switch {
	case utf16Text(b):
		what = "is UTF-16 text, as Windows PowerShell's > writes it"
	case bytes.HasPrefix(b, []byte("\uFEFF")):
		what = "starts with a byte order mark, as Notepad's UTF-8 with BOM writes it"
	default:
		return ""
	}
	return fmt.Sprintf("; note: %s %s, and the key is the file's bytes: the same passphrase saved another way is another key, so copy the key file itself to every node", path, what)
}
