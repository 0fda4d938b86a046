package smtpclient

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-relay/sluice/internal/reply"
)

// Credentials log in to the server: Username and Password for PLAIN and
// LOGIN, Username and Token (an OAuth2 access token) for XOAUTH2.
type Credentials struct {
	Username string
	Password string
	Token    string
}

// maxAuthSteps bounds the challenges of one AUTH; LOGIN needs two.
const maxAuthSteps = 4

// maxCommandLine is the longest command line, CRLF included (RFC 5321
// §4.5.3.1.4), which RFC 4954 §4 keeps for AUTH.
const maxCommandLine = 512

// Auth logs in with mech (RFC 4954): PLAIN (RFC 4616, as an initial
// response), LOGIN (user name and password each after a 334 challenge, as
// .NET and Exchange do it) or XOAUTH2 (Google's and Microsoft's OAuth2
// bearer scheme). A mechanism the server does not offer is refused locally
// with 504 5.5.4 (Local set, and a '*' note in the transcript), without
// sending the credentials; the server's refusal is
// an *Error with its reply as it was, e.g. Microsoft's "535 5.7.139
// Authentication unsuccessful, basic authentication is disabled". In the
// transcript every payload is "***", and so is any of the credentials
// the server's replies quote, in the transcript and in the *Error.
func (c *Client) Auth(ctx context.Context, mech string, cred Credentials) (err error) {
	if err := c.usable(); err != nil {
		return err
	}
	mech = strings.ToUpper(mech)
	cmd := "AUTH " + mech
	initial, respond, ok := mechanism(mech, cred)
	if !ok {
		return fmt.Errorf("smtpclient: %s: mechanism not supported; use PLAIN, LOGIN or XOAUTH2", cmd)
	}
	if offered := c.AuthMechanisms(); !slices.Contains(offered, mech) {
		r := notOffered(mech, offered)
		c.trace('*', "credentials not sent: "+r.Error())
		return &Error{Command: cmd, Reply: r, Local: true}
	}
	defer c.watch(ctx, cmd)(&err)
	b64 := base64.StdEncoding.EncodeToString
	c.secrets = []string{cred.Password, cred.Token, b64([]byte(cred.Password)), b64([]byte(cred.Token))}
	defer func() { c.secrets = nil }()
	line, mask := cmd, ""
	if initial != nil {
		c.secrets = append(c.secrets, b64(initial))
		line, mask = cmd+" "+b64(initial), cmd+" ***"
		if len(line)+2 > maxCommandLine {
			// RFC 4954 §4: an initial response that would make the line
			// too long MUST NOT be used; it answers the server's empty
			// 334 instead. Microsoft 365's tokens never fit.
			line, mask = cmd, ""
			respond = afterInitial(initial, respond)
		}
	}
	r, err := c.cmd(cmd, c.t.Command, line, mask)
	for step := 0; err == nil && r.Code == 334; step++ {
		challenge, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Text))
		resp, more := respond(step, challenge)
		if !more || step > maxAuthSteps {
			// RFC 4954 §4: "*" cancels the exchange; the server answers 501.
			r, err = c.cmd(cmd, c.t.Command, "*", "")
			break
		}
		c.secrets = append(c.secrets, b64(resp))
		r, err = c.cmd(cmd, c.t.Command, b64(resp), "***")
	}
	if err != nil {
		return err
	}
	if r.Code != 235 {
		r.Text = c.redact(r.Text)
		return &Error{Command: cmd, Reply: r}
	}
	return nil
}

// responder answers the step'th 334 challenge; false cancels.
type responder func(step int, challenge []byte) ([]byte, bool)

// afterInitial is respond for an exchange whose initial response did not
// go on the AUTH line: the first challenge (empty, RFC 4954 §4) gets it.
func afterInitial(initial []byte, respond responder) responder {
	return func(step int, challenge []byte) ([]byte, bool) {
		if step == 0 {
			return initial, true
		}
		return respond(step-1, challenge)
	}
}

// mechanism gives the initial response (nil for none) and the answers to
// challenges of a SASL mechanism.
func mechanism(mech string, cred Credentials) ([]byte, responder, bool) {
	switch mech {
	case "PLAIN":
		// RFC 4616 §2: authzid NUL authcid NUL passwd, authzid empty.
		initial := []byte("\x00" + cred.Username + "\x00" + cred.Password)
		return initial, func(int, []byte) ([]byte, bool) { return nil, false }, true
	case "LOGIN":
		// draft-murchison-sasl-login: the server asks "Username:", then
		// "Password:"; answer by step, as servers word the prompts freely.
		return nil, func(step int, _ []byte) ([]byte, bool) {
			switch step {
			case 0:
				return []byte(cred.Username), true
			case 1:
				return []byte(cred.Password), true
			}
			return nil, false
		}, true
	case "XOAUTH2":
		// https://developers.google.com/gmail/imap/xoauth2-protocol and
		// Microsoft's "Authenticate an IMAP, POP or SMTP connection using
		// OAuth": a failed token gets a 334 with a base64 JSON error, to
		// which the client sends an empty line to get the final 535.
		initial := []byte("user=" + cred.Username + "\x01auth=Bearer " + cred.Token + "\x01\x01")
		return initial, func(step int, _ []byte) ([]byte, bool) { return []byte{}, step == 0 }, true
	}
	return nil, nil, false
}

// notOffered is the local refusal of a mechanism the server did not offer.
func notOffered(mech string, offered []string) reply.Reply {
	r := reply.Reply{Code: 504, Enhanced: [3]int{5, 5, 4}}
	if len(offered) == 0 {
		r.Text = "AUTH " + mech + " is not offered: the server offers no AUTH mechanism (some offer AUTH only after STARTTLS)"
	} else {
		r.Text = "AUTH " + mech + " is not offered: the server offers " + strings.Join(offered, " ")
	}
	return r
}
