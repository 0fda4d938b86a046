package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	"github.com/sluice-relay/sluice/internal/reply"
)

// dataReader reads message data after DATA's 354: it removes dot-stuffing,
// finds the end of data and enforces line endings and limits, yielding the
// message as stored (CRLF line endings, no stuffing).
//
// The end of data is only <CRLF>.<CRLF>: the "." line must end in CRLF and
// so must the line before it (RFC 5321 §4.1.1.4). Every other variant —
// <LF>.<LF>, <CR>.<CR>, <LF>.<CRLF>, <CRLF>.<LF> — is content, which is
// what defeats SMTP smuggling: a second message hidden behind a variant
// the next hop would take as the end. A bare CR or LF anywhere in the data
// is refused (550 5.6.11) unless the connector normalises it to CRLF; it is
// never passed on as it came.
//
// On the first problem Read returns a reply.Reply; the session then calls
// drain to read to the real end of data before it answers, so that nothing
// the client sent as data is ever read as a command.
type dataReader struct {
	r         *bufio.Reader
	normalize bool  // rewrite bare CR/LF to CRLF instead of refusing
	maxSize   int64 // 0: no limit
	maxLine   int   // longest line of data accepted, CRLF excluded

	n         int64  // octets produced so far
	lineLen   int    // octets of the current line so far
	lineStart bool   // next octet starts a line
	prevCRLF  bool   // the last line ended in CRLF (end of data may follow)
	heldCR    bool   // a CR ended the previous chunk; its LF may come next
	out       []byte // content ready for Read
	buf       []byte // backing store when a segment's content is rebuilt
	aliased   bool   // out points into the bufio buffer or a constant
	done      bool   // end of data seen
	err       error  // first problem; sticky
}

func newDataReader(r *bufio.Reader, normalize bool, maxSize int64, maxLine int) *dataReader {
	return &dataReader{r: r, normalize: normalize, maxSize: maxSize, maxLine: maxLine, lineStart: true, prevCRLF: true}
}

var errBareEnding = reply.BareLineEnding

// Read implements io.Reader over the unstuffed message.
func (d *dataReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(d.out) > 0 {
			c := copy(p[n:], d.out)
			d.out = d.out[c:]
			n += c
			continue
		}
		if d.err != nil || d.done {
			break
		}
		// Don't block for more input when we have something to return.
		if n > 0 && d.r.Buffered() == 0 {
			break
		}
		d.next()
	}
	if n > 0 {
		return n, nil
	}
	if d.err != nil {
		return 0, d.err
	}
	return 0, io.EOF
}

// next reads one segment (a line, or part of a line longer than the
// buffer) and leaves its unstuffed content in d.out. Line state is updated
// before any check can fail, so drain still finds the real end of data.
func (d *dataReader) next() {
	d.buf, d.out, d.aliased = d.buf[:0], nil, false
	seg, err := d.r.ReadSlice('\n')
	if err != nil && err != bufio.ErrBufferFull {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		d.err = err
		return
	}
	whole := err == nil
	if d.heldCR {
		d.heldCR = false
		if seg[0] == '\n' {
			// A CRLF split across two reads; ReadSlice stops at the LF, so
			// nothing follows it in seg.
			d.endLine(true)
			d.put(crlf)
			return
		}
		d.lineLen = 0
		if d.bare() {
			d.put(crlf)
		}
	}
	if d.lineStart {
		if d.prevCRLF && len(seg) == 3 && seg[0] == '.' && seg[1] == '\r' && seg[2] == '\n' {
			d.done = true
			return
		}
		if seg[0] == '.' {
			seg = seg[1:] // RFC 5321 §4.5.2: remove the stuffed dot
		}
		d.lineStart = false
		if len(seg) == 0 {
			return
		}
	}
	body, ending := seg, 0 // ending: 0 partial line, 1 bare LF, 2 CRLF
	switch {
	case whole && len(seg) >= 2 && seg[len(seg)-2] == '\r':
		body, ending = seg[:len(seg)-2], 2
	case whole:
		body, ending = seg[:len(seg)-1], 1
	case seg[len(seg)-1] == '\r':
		body, d.heldCR = seg[:len(seg)-1], true
	}
	d.lineLen += len(body)
	if d.maxLine > 0 && d.lineLen > d.maxLine && d.err == nil {
		d.fail(reply.DataLineLengthFor(d.maxLine))
	}
	if ending > 0 {
		d.endLine(ending == 2)
	}
	clean := bytes.IndexByte(body, '\r') < 0
	if !clean && d.bare() {
		body = bytes.ReplaceAll(body, []byte("\r"), crlf)
	}
	switch {
	case ending == 2 && clean:
		d.put(seg) // the common case: the line as it came, CRLF included
	case ending == 2:
		d.put(body)
		d.put(crlf)
	case ending == 1:
		if d.bare() {
			d.put(body)
			d.put(crlf)
		}
	default:
		d.put(body)
	}
}

var crlf = []byte("\r\n")

// bare handles a bare CR or LF: when normalising it returns true (write
// CRLF instead); otherwise it records the refusal and returns false.
func (d *dataReader) bare() bool {
	if d.normalize {
		return true
	}
	d.fail(errBareEnding)
	return false
}

func (d *dataReader) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *dataReader) endLine(crlf bool) {
	d.lineStart, d.prevCRLF, d.lineLen = true, crlf, 0
}

// put appends content to d.out, counting it against the size limit. Once
// there is an error nothing more is produced.
func (d *dataReader) put(b []byte) {
	if d.err != nil {
		return
	}
	d.n += int64(len(b))
	if d.maxSize > 0 && d.n > d.maxSize {
		d.fail(reply.TooBigFor(d.maxSize))
		return
	}
	switch {
	case d.out == nil:
		d.out, d.aliased = b, true // no copy: b stays valid until the next ReadSlice
	case d.aliased:
		d.buf = append(append(d.buf[:0], d.out...), b...)
		d.out, d.aliased = d.buf, false
	default:
		d.buf = append(d.buf, b...)
		d.out = d.buf
	}
}

// drain reads and discards the rest of the data up to the end of data, so
// the next thing read is the client's next command. It returns an I/O
// error that ended the data early (timeout, connection closed), or nil.
func (d *dataReader) drain() error {
	if d.err != nil && !isReply(d.err) {
		return d.err
	}
	d.normalize, d.maxSize, d.maxLine, d.err = true, 0, 0, nil
	for !d.done {
		d.next()
		if d.err != nil {
			return d.err
		}
	}
	d.out = nil
	return nil
}

func isReply(err error) bool {
	var r reply.Reply
	return errors.As(err, &r)
}
