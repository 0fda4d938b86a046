package config

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// newToken is how to make a token, on Unix and in Windows PowerShell
// (5.1 and 7: RandomNumberGenerator is the system's CSPRNG).
const newToken = `openssl rand -hex 32, or in PowerShell: $b = [byte[]]::new(32); [Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($b); -join ($b | % { '{0:x2}' -f $_ })`

// AdminToken reads the token the admin API is to require from path
// (admin.token_file), as ReadToken does, and refuses one that is short
// enough to guess.
func AdminToken(path string) (string, error) {
	tok, err := ReadToken(path)
	if err == nil && len(tok) < 16 {
		return "", fmt.Errorf("the token in %s is shorter than 16 characters; make a longer one (e.g. %s)", path, newToken)
	}
	return tok, err
}

// ReadToken reads an admin API bearer token from path (admin.token_file,
// or the CLI's --token-file): the file's text without the white space
// around it, nor a UTF-8 byte order mark. config check, the admin API and
// the CLI read it alike, so a token the API starts with is one the CLI
// can send. The error says what is wrong with the file and what to do.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %v", path, err)
	}
	if utf16Text(b) {
		// Windows PowerShell 5.1's > and Out-File write UTF-16: the CLI
		// then failed at every call with net/http's "invalid header
		// field value for \"Authorization\"".
		return "", fmt.Errorf("%s is UTF-16 text, as Windows PowerShell's > writes it, which no HTTP header can carry; save the token as ASCII (in PowerShell: (Get-Content %s) | Set-Content -Encoding ascii %s)", path, psQuote(path), psQuote(path))
	}
	// PowerShell 5.1's Set-Content -Encoding utf8 starts the file with
	// a byte order mark, which is no part of the token.
	tok := strings.TrimSpace(string(bytes.TrimPrefix(b, []byte("\uFEFF"))))
	if !httpguts.ValidHeaderFieldValue(tok) {
		return "", fmt.Errorf("the token in %s has a character no HTTP header can carry (a line break or another control character); keep the token to one line of printable characters", path)
	}
	return tok, nil
}

// utf16Text reports whether b is UTF-16 text: a UTF-16 byte order mark,
// or NUL bytes, which text in an 8-bit encoding does not hold.
func utf16Text(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0xFF, 0xFE}) || bytes.HasPrefix(b, []byte{0xFE, 0xFF}) || bytes.IndexByte(b, 0) >= 0
}

// psQuote quotes s for PowerShell: single quotes take it literally.
func psQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
