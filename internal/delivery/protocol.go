package delivery

import (
	"sync"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
)

// transcript returns the protocol log hook for a session to addr, and
// end, which closes that session's log (with why, when err is set) if
// the client has not: a connection that could not be made, or failed
// before the client closed it, says so instead of ending at its "+".
// Both are no-ops when the connector does not log its protocol. The
// session id is new for each connection, so one conversation can be
// followed in the file.
func (d *Deliverer) transcript(sc *config.SendConnector, addr string) (hook func(byte, string), end func(err error)) {
	if !sc.ProtocolLog || d.protocol == nil {
		return nil, func(error) {}
	}
	s := d.protocol.Session(sc.Name, string(mail.NewID()), "", addr)
	var once sync.Once
	end = func(err error) {
		once.Do(func() {
			if err != nil {
				s.Note("failed: " + err.Error())
			}
			s.Close()
		})
	}
	hook = func(dir byte, line string) {
		switch dir {
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
