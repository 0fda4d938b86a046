package smtpd

import (
	"strings"
	"testing"
)

// With two Message-ID fields (RFC 5322 allows one; some scripts add their
// own after the library's), tracking records the first, as the notices'
// In-Reply-To does (go-message reads the first): a search by the id a
// bounce gives finds the message.
func TestFirstMessageIDCounts(t *testing.T) {
	h, err := readHeader(strings.NewReader("Message-ID: <first@x>\r\nSubject: s\r\nMessage-ID: <second@x>\r\n\r\nbody\r\n"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if h.messageID != "<first@x>" {
		t.Errorf("Message-ID %q; want <first@x>", h.messageID)
	}
}
