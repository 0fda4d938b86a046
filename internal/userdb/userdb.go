// Package userdb owns the users who may AUTH on receive connectors:
// looking them up, checking their passwords, and deciding which sender
// addresses each may use. It is built from a config snapshot and never
// changes; a reload builds a new one.
package userdb

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"runtime"
	"strings"
	"sync"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/password"
)

// DB is an immutable set of users plus a cache of verified logins.
type DB struct {
	users map[string]*config.User // by lower-case login name

	// Password hashes are slow on purpose. Applications log in once per
	// message (SharePoint does), so a login verified once is remembered as
	// an HMAC under a per-process key; the plain password is never kept.
	cacheKey []byte
	mu       sync.Mutex
	verified map[string][32]byte
	// hashing bounds how many argon2 computations run at once, so a burst
	// of logins cannot take all memory (19 MiB each).
	hashing chan struct{}
}

// New indexes users. The slice must come from a loaded config (hashes
// already checked).
func New(users []config.User) *DB {
	db := &DB{
		users:    make(map[string]*config.User, len(users)),
		cacheKey: make([]byte, 32),
		verified: map[string][32]byte{},
		hashing:  make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	rand.Read(db.cacheKey)
	for i := range users {
		db.users[strings.ToLower(users[i].Name)] = &users[i]
	}
	return db
}

// ErrInvalid means unknown user or wrong password; callers must not tell
// which (RFC 4954 §6 lets them, but it helps attackers guess names).
var ErrInvalid = errors.New("invalid credentials")

// Known reports whether name is a configured user's login. Only for
// the log: a client must not learn which names exist.
func (db *DB) Known(name string) bool {
	_, ok := db.users[strings.ToLower(name)]
	return ok
}

// Authenticate returns the user whose name and password these are.
func (db *DB) Authenticate(ctx context.Context, name, pw string) (*config.User, error) {
	u, ok := db.users[strings.ToLower(name)]
	var hash string
	var mac [32]byte
	if !ok {
		hash = unknownHash()
	} else {
		mac = db.mac(u.Name, pw)
		db.mu.Lock()
		known, hit := db.verified[u.Name]
		db.mu.Unlock()
		if hit && hmac.Equal(known[:], mac[:]) {
			return u, nil
		}
		hash = u.PasswordHash
	}
	select {
	case db.hashing <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	// An unknown name is hashed too, against a hash no password
	// matches: answered at once, it would show by its speed which names
	// exist.
	err := password.Verify(hash, pw)
	<-db.hashing
	if !ok {
		return nil, ErrInvalid
	}
	if err != nil {
		if errors.Is(err, password.ErrMismatch) {
			return nil, ErrInvalid
		}
		return nil, err
	}
	db.mu.Lock()
	db.verified[u.Name] = mac
	db.mu.Unlock()
	return u, nil
}

// unknownHash is what an unknown name's password is checked against:
// an argon2id hash with the parameters of `sluice user hash`, of a
// random password, made once.
var unknownHash = sync.OnceValue(func() string {
	pw := make([]byte, 32)
	rand.Read(pw)
	h, _ := password.Hash(string(pw)) // fails only with crypto/rand, which does not
	return h
})

func (db *DB) mac(name, pw string) [32]byte {
	h := hmac.New(sha256.New, db.cacheKey)
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write([]byte(pw))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}
