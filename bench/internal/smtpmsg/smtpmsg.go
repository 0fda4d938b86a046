// Package smtpmsg holds what the benchmark clients share: the message
// they send and how they read a reply.
package smtpmsg

import (
	"bufio"
	"fmt"
	"strings"
)

// Content is a message of about size octets with the given subject,
// ready for DATA: 78-octet lines and the final dot.
func Content(size int, subject string) string {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nTo: b@example.net\r\nSubject: " + subject + "\r\n\r\n")
	line := strings.Repeat("x", 76) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	b.WriteString(".\r\n")
	return b.String()
}

// Expect reads one reply, all its lines, and checks its code.
func Expect(r *bufio.Reader, code string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(line, code) {
			return fmt.Errorf("want %s, got %q", code, strings.TrimSpace(line))
		}
		if len(line) < 4 || line[3] != '-' {
			return nil
		}
	}
}
