package delivery

import (
	"sync"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/protolog"
)

// transcript returns the protocol log hook for session id to addr, and
// end, which closes that session's log (with why, when err is set) if
// the client has not: a connection that could not be made, or failed
// before the client closed it, says so instead of ending at its "+".
// Both are no-ops (hook nil) when the connector does not log its
// protocol. The session starts in the file when the connection is made
// ('+'), as only then is its local end known; one never made starts at
// its failure, with no local end.
func (d *Deliverer) transcript(sc *config.SendConnector, id, addr string) (hook func(byte, string), end func(err error)) {
	if !sc.ProtocolLog || d.protocol == nil {
		return nil, func(error) {}
	}
	// s is set by the first call, which is '+' in the dialling
	// goroutine, or end after a failed dial: both before the client is
	// handed to anyone who could call the hook from elsewhere.
	var s *protolog.Session
	start := func(local string) {
		if s == nil {
			s = d.protocol.Session(sc.Name, id, local, addr)
		}
	}
	var once sync.Once
	end = func(err error) {
		once.Do(func() {
			start("")
			if err != nil {
				s.Note("failed: " + err.Error())
			}
			s.Close()
		})
	}
	hook = func(dir byte, line string) {
		switch dir {
		case '+':
			start(line)
		case '>':
			s.Sent(line)
		case '<':
			s.Received(line)
		case '-':
			end(nil)
		default:
			s.Note(line)
		}
	}
	return hook, end
}
