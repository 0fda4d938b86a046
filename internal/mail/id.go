package mail

import (
	"encoding/base32"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// ID names one accepted message in logs, the queue, tracking and the
// Received header. 16 characters of base32hex: 48 bits of Unix
// milliseconds, a 16-bit process counter and 16 random bits, so IDs sort by
// time of acceptance and cannot repeat within a process below 65536
// messages per millisecond.
type ID string

var (
	idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)
	idCounter  atomic.Uint32
)

// NewID returns a fresh ID for a message accepted now.
func NewID() ID { return newIDAt(time.Now()) }

func newIDAt(t time.Time) ID {
	var b [10]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(b[0:8], ms<<16)
	binary.BigEndian.PutUint16(b[6:8], uint16(idCounter.Add(1)))
	binary.BigEndian.PutUint16(b[8:10], uint16(rand.Uint32()))
	return ID(idEncoding.EncodeToString(b[:]))
}

// ErrBadID is returned by ParseID for anything NewID could not have made.
var ErrBadID = errors.New("not a message id: expected 16 characters of 0-9 and a-v")

// ParseID checks that s has the shape of an ID, so that an ID read from a
// command line or a file name can be used as a file name safely.
func ParseID(s string) (ID, error) {
	if len(s) != 16 {
		return "", ErrBadID
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'v') {
			return "", ErrBadID
		}
	}
	return ID(s), nil
}

// Time returns when the message with this ID was accepted.
func (id ID) Time() time.Time {
	b, err := idEncoding.DecodeString(string(id))
	if err != nil || len(b) != 10 {
		return time.Time{}
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(b[0:8]) >> 16))
}
