package delivery

import (
	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
)

// transcript returns the protocol log hook for a session to addr, or nil
// when the connector does not log its protocol. The session id is new
// for each connection, so one conversation can be followed in the file.
func (d *Deliverer) transcript(sc *config.SendConnector, addr string) func(byte, string) {
	if !sc.ProtocolLog || d.protocol == nil {
		return nil
	}
	s := d.protocol.Session(sc.Name, string(mail.NewID()), "", addr)
	return func(dir byte, line string) {
		switch dir {
		case '>':
			s.Sent(line)
		case '<':
			s.Received(line)
		default:
			s.Note(line)
		}
	}
}
