// Package password hashes and verifies user passwords: argon2id for new
// hashes (RFC 9106, PHC string format), bcrypt accepted so users can be
// migrated from other servers. Plain passwords are never stored.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Parameters for new argon2id hashes: OWASP's recommendation (19 MiB, two
// passes, one lane), cheap enough that a relay verifying many logins does
// not run out of memory, dear enough to slow down a stolen config.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// maxArgonMemory (KiB) bounds what a hash in the config may ask for.
const maxArgonMemory = 256 << 10

var b64 = base64.RawStdEncoding

// Hash returns an argon2id PHC string for pw:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func Hash(pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// ErrMismatch means the password is wrong.
var ErrMismatch = errors.New("password does not match")

// Verify checks pw against hash in constant time. It returns ErrMismatch
// for a wrong password and another error for a hash it cannot read.
func Verify(hash, pw string) error {
	if strings.HasPrefix(hash, "$2") {
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return ErrMismatch
		}
		return err
	}
	p, err := parseArgon(hash)
	if err != nil {
		return err
	}
	got := argon2.IDKey([]byte(pw), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	if subtle.ConstantTimeCompare(got, p.key) != 1 {
		return ErrMismatch
	}
	return nil
}

// Check reports whether hash is a hash Verify can use, with an error that
// says how to make one when it is not.
func Check(hash string) error {
	switch {
	case hash == "":
		return errors.New("missing; make a hash with `sluice user hash` and paste it here")
	case strings.HasPrefix(hash, "$argon2id$"):
		_, err := parseArgon(hash)
		return err
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return fmt.Errorf("not a valid bcrypt hash (%v); make a new one with `sluice user hash`", err)
		}
		return nil
	case strings.HasPrefix(hash, "$argon2i$"), strings.HasPrefix(hash, "$argon2d$"):
		return errors.New("argon2i and argon2d hashes are not accepted; make an argon2id hash with `sluice user hash`")
	}
	return errors.New("this is not a password hash (plain passwords are not accepted); make one with `sluice user hash` and paste the $argon2id$... line here")
}

type argonParams struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parseArgon(h string) (argonParams, error) {
	var p argonParams
	bad := func(why string) (argonParams, error) {
		return p, fmt.Errorf("not a valid argon2id hash (%s); make a new one with `sluice user hash`", why)
	}
	f := strings.Split(h, "$")
	if len(f) != 6 || f[1] != "argon2id" {
		return bad("expected $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	var v int
	if _, err := fmt.Sscanf(f[2], "v=%d", &v); err != nil || v != argon2.Version {
		return bad("unsupported version " + f[2])
	}
	var threads uint32
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &threads); err != nil {
		return bad("cannot read parameters " + f[3])
	}
	// Each login being checked holds m KiB: a hash pasted from elsewhere
	// with gigabytes would take the relay down under a few logins.
	if p.memory > maxArgonMemory {
		return bad(fmt.Sprintf("m=%d asks for %d MiB per login, more than the %d MiB Sluice allows", p.memory, p.memory>>10, maxArgonMemory>>10))
	}
	if p.memory < 8 || p.time < 1 || p.time > 64 || threads < 1 || threads > 255 {
		return bad("parameters out of range")
	}
	p.threads = uint8(threads)
	var err error
	if p.salt, err = b64.DecodeString(f[4]); err != nil || len(p.salt) < 8 {
		return bad("bad salt")
	}
	if p.key, err = b64.DecodeString(f[5]); err != nil || len(p.key) < 16 {
		return bad("bad hash")
	}
	return p, nil
}
