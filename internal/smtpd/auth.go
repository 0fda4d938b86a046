package smtpd

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/policy"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/userdb"
)

// errAuthCancelled: the client answered a challenge with "*" (RFC 4954 §4).
var errAuthCancelled = errors.New("cancelled")

// auth runs AUTH PLAIN (RFC 4616) or AUTH LOGIN, with or without an initial
// response. .NET's SmtpClient (SharePoint, Send-MailMessage) speaks only
// LOGIN and sends the user name after the first challenge; Python's smtplib
// sends it on the AUTH line.
func (s *session) auth(arg string) bool {
	mech, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	mech = strings.ToUpper(mech)
	// RFC 4954 §4: no AUTH inside a transaction; its MAIL FROM was checked
	// for the identity the session had then.
	s.policy.InMail = s.tx != nil
	if err := policy.Auth(&s.policy, mech); err != nil {
		r := err.(reply.Reply)
		s.log.Info("AUTH refused", "mech", mech, "reply", r.Error())
		return s.fail(r)
	}
	if strings.ContainsAny(strings.TrimSpace(initial), " \t") {
		// Not "cannot decode as base64": the response may well be
		// base64; what is wrong is the word after it.
		r := reply.SyntaxParams.With("AUTH takes a mechanism and at most one initial response, in base64 without spaces")
		s.log.Info("AUTH refused", "mech", mech, "reply", r.Error())
		return s.fail(r)
	}
	ip := s.remote.Addr()
	if s.srv.authFails.count(ip, time.Now()) >= s.rc.Limits.MaxAuthFailures {
		s.log.Warn("AUTH refused: too many failures from this client", "mech", mech, "reply", reply.AuthTooManyFails.Error())
		return s.fail(reply.AuthTooManyFails)
	}
	var user, pass string
	var err error
	switch mech {
	case "PLAIN":
		user, pass, err = s.authPlain(initial, hasInitial)
	case "LOGIN":
		user, pass, err = s.authLogin(initial, hasInitial)
	}
	switch {
	case errors.Is(err, errAuthCancelled):
		return s.reply(reply.AuthCancelled)
	case errors.Is(err, errBadBase64):
		s.log.Info("AUTH refused", "mech", mech, "reply", reply.AuthBadBase64.Error())
		return s.fail(reply.AuthBadBase64)
	case errors.Is(err, errBadPlain):
		// A client that builds the data wrongly, not a password guess:
		// not counted toward max_auth_failures.
		s.log.Info("AUTH refused", "mech", mech, "reply", reply.AuthBadPlain.Error())
		return s.fail(reply.AuthBadPlain)
	case errors.Is(err, errLineTooLong):
		return s.reply(reply.LineTooLong)
	case err != nil:
		s.ioError(err)
		return true
	}
	if !s.srv.authFails.reserve(ip, time.Now(), s.rc.Limits.MaxAuthFailures) {
		s.log.Warn("AUTH refused: too many failures from this client", "mech", mech, "reply", reply.AuthTooManyFails.Error())
		return s.fail(reply.AuthTooManyFails)
	}
	// A reservation never ended would hold the IP's other logins back
	// for ever: whatever does not end it as a failure or a success below
	// (the user database failing, a panic) releases it.
	counted := false
	defer func() {
		if !counted {
			s.srv.authFails.release(ip, time.Now())
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, err := s.snap.users.Authenticate(ctx, user, pass)
	if err != nil {
		known := s.snap.users.Known(user)
		var who []any
		login := "" // a name that is no user's is not kept, not even in memory
		if known {
			who = []any{"user", user}
			login = strings.ToLower(user) // userdb's names are case-insensitive
		}
		if !errors.Is(err, userdb.ErrInvalid) {
			s.log.Error("AUTH could not be checked", append(who, "mech", mech, "err", err, "reply", reply.AuthTempFail.Error())...)
			return s.fail(reply.AuthTempFail)
		}
		s.srv.metrics.Auth(s.rc.Name, false)
		n := s.srv.authFails.fail(ip, login, time.Now())
		counted = true
		// A name that is not a configured user is not logged: it is often
		// the password, typed in the user name field.
		reason := "wrong password"
		switch {
		case user == "":
			reason = "no user name"
		case !known:
			reason = "unknown user"
		}
		s.log.Warn("AUTH failed", append(who, "mech", mech, "failures", n, "reason", reason)...)
		if n >= s.rc.Limits.MaxAuthFailures {
			return s.failAfter(reply.AuthTooManyFails, s.rc.Limits.Tarpit.D())
		}
		// Always delayed, also for clients that are otherwise trusted: a
		// wrong password must be slow to guess.
		return s.failAfter(reply.AuthInvalid, s.rc.Limits.Tarpit.D())
	}
	s.srv.authFails.succeed(ip, strings.ToLower(u.Name), time.Now())
	counted = true
	s.srv.metrics.Auth(s.rc.Name, true)
	s.policy.User = u
	s.log.Info("AUTH succeeded", "user", u.Name, "mech", mech)
	return s.reply(reply.AuthOK)
}

var (
	errBadBase64 = errors.New("bad base64")
	errBadPlain  = errors.New("PLAIN data is not authzid NUL authcid NUL passwd")
)

// authPlain reads "authzid NUL authcid NUL passwd". An authorization
// identity other than the login itself is refused: users act as themselves.
func (s *session) authPlain(initial string, hasInitial bool) (string, string, error) {
	if !hasInitial {
		var err error
		if initial, err = s.challenge(""); err != nil {
			return "", "", err
		}
	}
	b, err := decode64(initial)
	if err != nil {
		return "", "", err
	}
	f := bytes.Split(b, []byte{0})
	if len(f) != 3 {
		return "", "", errBadPlain
	}
	if len(f[0]) > 0 && !bytes.Equal(f[0], f[1]) {
		return "", "", nil
	}
	return string(f[1]), string(f[2]), nil
}

// authLogin asks "Username:" (unless given on the AUTH line), then
// "Password:".
func (s *session) authLogin(initial string, hasInitial bool) (string, string, error) {
	var err error
	if !hasInitial {
		if initial, err = s.challenge("Username:"); err != nil {
			return "", "", err
		}
	}
	user, err := decode64(initial)
	if err != nil {
		return "", "", err
	}
	resp, err := s.challenge("Password:")
	if err != nil {
		return "", "", err
	}
	pass, err := decode64(resp)
	if err != nil {
		return "", "", err
	}
	return string(user), string(pass), nil
}

// challenge sends a 334 with the base64 text and reads the client's line.
func (s *session) challenge(text string) (string, error) {
	s.send(reply.Reply{Code: 334, Text: base64.StdEncoding.EncodeToString([]byte(text))})
	line, err := s.readLine(maxAuthLine)
	if err != nil {
		return "", err
	}
	s.proto.Received("***")
	if line == "*" {
		return "", errAuthCancelled
	}
	return line, nil
}

func decode64(s string) ([]byte, error) {
	if s == "=" {
		return nil, nil // RFC 4954 §4: "=" is an empty initial response
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errBadBase64
	}
	return b, nil
}
