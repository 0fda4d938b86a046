package smtptest

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
)

// xoauth2Error is the JSON a failed XOAUTH2 token gets in a 334 challenge
// (Google's and Microsoft's shape).
const xoauth2Error = `{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}`

// auth runs AUTH PLAIN, LOGIN or XOAUTH2 (RFC 4954), with or without an
// initial response.
func (ss *session) auth(o Options, arg string) error {
	mech, initial, hasInitial := strings.Cut(strings.TrimSpace(arg), " ")
	mech = strings.ToUpper(mech)
	switch {
	case len(o.Auth) == 0:
		ss.reply("502 5.5.1 Command not implemented")
		return nil
	case ss.authUser != "":
		ss.reply("503 5.5.1 Already authenticated")
		return nil
	case ss.tx != nil:
		ss.reply("503 5.5.1 AUTH is not allowed during a mail transaction")
		return nil
	case !slices.ContainsFunc(o.Auth, func(m string) bool { return strings.EqualFold(m, mech) }):
		ss.reply("504 5.5.4 Unrecognized authentication type")
		return nil
	}
	// ask sends a 334 challenge, unless the client gave the response on
	// the AUTH line, and decodes the answer.
	ask := func(challenge string) ([]byte, string, error) {
		if hasInitial {
			hasInitial = false
			return decode(initial)
		}
		ss.reply("334 " + base64.StdEncoding.EncodeToString([]byte(challenge)))
		line, err := ss.readLine()
		if err != nil {
			return nil, "", err
		}
		return decode(line)
	}
	var user string
	var ok bool
	var fail string // reply to a failure, "" while in the exchange
	switch mech {
	case "PLAIN":
		b, f, err := ask("")
		if err != nil {
			return err
		}
		parts := bytes.Split(b, []byte{0})
		if fail = f; fail == "" && len(parts) == 3 {
			user = string(parts[1])
			pass, known := o.Users[user]
			ok = known && pass == string(parts[2])
		}
	case "LOGIN":
		u, f, err := ask("Username:")
		if err != nil {
			return err
		}
		if fail = f; fail == "" {
			p, f, err := ask("Password:")
			if err != nil {
				return err
			}
			fail, user = f, string(u)
			pass, known := o.Users[user]
			ok = fail == "" && known && pass == string(p)
		}
	case "XOAUTH2":
		b, f, err := ask("")
		if err != nil {
			return err
		}
		if fail = f; fail == "" {
			var token string
			user, token = parseXOAUTH2(b)
			ok = o.Tokens != nil && o.Tokens(user, token)
			if !ok && o.AuthReply == "" {
				// The client answers the error challenge with an empty line.
				if _, f, err := ask(xoauth2Error); err != nil {
					return err
				} else if f != "" {
					fail = f
				} else {
					fail = "535 5.7.3 Authentication unsuccessful"
				}
			}
		}
	}
	switch {
	case fail != "":
		ss.reply(fail)
	case o.AuthReply != "":
		ss.reply(o.AuthReply)
		if strings.HasPrefix(o.AuthReply, "2") {
			ss.authUser = user
		}
	case ok:
		ss.authUser = user
		ss.reply("235 2.7.0 Authentication successful")
	default:
		ss.reply("535 5.7.8 Authentication credentials invalid")
	}
	return nil
}

// decode reads a SASL response: "*" cancels (RFC 4954 §4), "=" is empty.
func decode(s string) ([]byte, string, error) {
	switch s = strings.TrimSpace(s); s {
	case "*":
		return nil, "501 5.0.0 Authentication cancelled", nil
	case "=":
		return nil, "", nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, "501 5.5.2 Cannot decode the response as base64", nil
	}
	return b, "", nil
}

// parseXOAUTH2 reads "user=U\x01auth=Bearer T\x01\x01".
func parseXOAUTH2(b []byte) (user, token string) {
	for _, f := range strings.Split(string(b), "\x01") {
		if u, ok := strings.CutPrefix(f, "user="); ok {
			user = u
		}
		if t, ok := strings.CutPrefix(f, "auth=Bearer "); ok {
			token = t
		}
	}
	return user, token
}
