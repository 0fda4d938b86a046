package smtpd

import (
	"bufio"
	"net"
	"sync"
)

// Buffers are pooled across sessions: clients that open a connection per
// message (most devices and scripts) would otherwise cost a fresh 36 KiB,
// zeroed, per message.
var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }} // fewer reads per message in DATA
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

// setConn makes c the session's connection, with buffers of its own:
// what was buffered for the previous one (before STARTTLS) is dropped.
func (s *session) setConn(c net.Conn) {
	s.releaseBuffers()
	s.conn = c
	s.r = readers.Get().(*bufio.Reader)
	s.r.Reset(c)
	s.w = writers.Get().(*bufio.Writer)
	s.w.Reset(c)
}

// releaseBuffers returns the buffers to the pools; the session reads and
// writes no more.
func (s *session) releaseBuffers() {
	if s.r != nil {
		s.r.Reset(nil)
		readers.Put(s.r)
		s.r = nil
	}
	if s.w != nil {
		s.w.Reset(nil)
		writers.Put(s.w)
		s.w = nil
	}
}
