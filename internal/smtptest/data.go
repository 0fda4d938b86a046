package smtptest

import (
	"bufio"
	"bytes"
)

// readData reads message data up to the line ".", removing the extra dot
// of stuffed lines (RFC 5321 §4.5.2). Only ".\r\n" after a line ends it;
// ".\n" and the like are content, so a client that gets the terminator
// wrong waits for a reply that does not come instead of passing.
func readData(r *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		if bytes.Equal(line, []byte(".\r\n")) {
			return body, nil
		}
		if line[0] == '.' {
			line = line[1:]
		}
		body = append(body, line...)
	}
}
