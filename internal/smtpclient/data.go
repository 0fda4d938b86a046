package smtpclient

import (
	"bufio"
	"bytes"
)

// dotWriter writes message data as SMTP sends it (RFC 5321 §4.5.2): a line
// that starts with "." gets another "." in front, every line ends in CRLF,
// and end adds the terminating ".". Bare CR and bare LF become CRLF on the
// way: they are never passed on as they came, so no "end of data" variant
// hides in the body for a lenient next hop (SMTP smuggling). Messages from
// the queue have CRLF line endings already and pass unchanged.
type dotWriter struct {
	w         *bufio.Writer
	lineStart bool  // the next octet starts a line
	heldCR    bool  // the last octet written to us was a CR
	n         int64 // octets sent, stuffing included
	err       error // first write error
}

// Write implements io.Writer.
func (d *dotWriter) Write(p []byte) (int, error) {
	size := len(p)
	for len(p) > 0 && d.err == nil {
		// Content from the queue is all CRLF lines: those go out as
		// they are, many lines in one write, and only a line that starts
		// with a dot or ends oddly takes the octet-wise path.
		if n := d.clean(p); n > 0 {
			d.put(p[:n])
			d.lineStart = true
			p = p[n:]
			continue
		}
		p = d.step(p)
	}
	if d.err != nil {
		return 0, d.err
	}
	return size, nil
}

// clean returns the length of the longest prefix of p made of whole
// lines ending in CRLF, with no other CR or LF and none starting with a
// dot: octets that go out unchanged.
func (d *dotWriter) clean(p []byte) int {
	if d.heldCR {
		return 0
	}
	n, start := 0, d.lineStart
	for n < len(p) {
		if start && p[n] == '.' {
			return n
		}
		i := bytes.IndexByte(p[n:], '\n')
		if i < 1 || p[n+i-1] != '\r' || bytes.IndexByte(p[n:n+i-1], '\r') >= 0 {
			return n
		}
		n += i + 1
		start = true
	}
	return n
}

// step writes p up to its next CR or LF, turning a bare CR or LF into
// CRLF and stuffing a dot that starts a line, and returns the rest.
func (d *dotWriter) step(p []byte) []byte {
	if d.heldCR {
		d.heldCR = false
		d.put([]byte("\r\n"))
		d.lineStart = true
		if p[0] == '\n' {
			return p[1:]
		}
	}
	if d.lineStart && p[0] == '.' {
		d.put([]byte{'.'})
	}
	i := bytes.IndexAny(p, "\r\n")
	if i < 0 {
		d.put(p)
		d.lineStart = false
		return nil
	}
	if i > 0 {
		d.put(p[:i])
		d.lineStart = false
	}
	if p[i] == '\r' {
		d.heldCR = true
	} else {
		d.put([]byte("\r\n"))
		d.lineStart = true
	}
	return p[i+1:]
}

// end finishes the last line if it is open and writes ".\r\n" (RFC 5321
// §4.1.1.4: the data ends with <CRLF>.<CRLF>).
func (d *dotWriter) end() {
	if d.heldCR || !d.lineStart {
		d.put([]byte("\r\n"))
	}
	d.heldCR, d.lineStart = false, true
	d.put([]byte(".\r\n"))
}

func (d *dotWriter) put(b []byte) {
	if d.err != nil {
		return
	}
	n, err := d.w.Write(b)
	d.n += int64(n)
	d.err = err
}
