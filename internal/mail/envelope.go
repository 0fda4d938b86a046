package mail

import (
	"net/netip"
	"time"
)

// Notify is the DSN NOTIFY parameter of one recipient (RFC 3461 §4.1).
type Notify uint8

const (
	NotifyDefault Notify = 0 // not given: failure (and delay) notices, as if FAILURE,DELAY
	NotifyNever   Notify = 1 << iota
	NotifySuccess
	NotifyFailure
	NotifyDelay
)

// Recipient is one forward path with its DSN parameters.
type Recipient struct {
	Addr   Address
	Notify Notify
	ORcpt  string // ORCPT as given, "rfc822;bob@example.com" (RFC 3461 §4.2)
}

// Ret is the DSN RET parameter (RFC 3461 §4.3): how much of the message a
// bounce carries.
type Ret string

const (
	RetDefault Ret = ""
	RetFull    Ret = "FULL"
	RetHeaders Ret = "HDRS"
)

// Body is the BODY parameter of MAIL FROM (RFC 6152).
type Body string

const (
	Body7Bit     Body = "7BIT"
	Body8BitMIME Body = "8BITMIME"
)

// Origin says where a message came from: the facts a Received header and the
// tracking log record about the receiving session.
type Origin struct {
	Connector  string     // receive connector name
	ClientIP   netip.Addr // remote address of the session
	ClientHelo string     // EHLO/HELO argument
	AuthUser   string     // authenticated user, "" if anonymous
	TLS        string     // "TLS1.3 TLS_AES_128_GCM_SHA256", "" without TLS
	Session    string     // session id, for matching log lines
}

// Envelope is everything about a message except its content: who sent it,
// to whom, and how it arrived.
type Envelope struct {
	ID    ID
	From  Address
	Rcpts []Recipient
	Ret   Ret
	EnvID string // DSN ENVID (RFC 3461 §4.4)
	// SMTPUTF8 says the message needs SMTPUTF8 at the next hop (RFC 6531
	// §3.4): the client asked for it and an envelope address or the
	// header section is not ASCII. Records written before this field
	// meant "needed" hold the client's request here, which errs only
	// towards needing it.
	SMTPUTF8 bool
	// SMTPUTF8Asked says the client sent SMTPUTF8, which a next hop that
	// offers the extension gets too, needed or not.
	SMTPUTF8Asked bool `json:",omitempty"`
	Body          Body
	Size          int64     // octets of the stored message, added headers included
	Received      time.Time // when the 250 was given
	Origin        Origin
	// MessageID is the message's Message-ID field, as tracking shows it.
	MessageID string
	// Via names the send connector the message must leave through
	// (sluice test send --via); empty: the recipients' address spaces
	// decide.
	Via string `json:",omitempty"`
	// About is, on a delivery status notification, the id of the message
	// it reports on: tracking links the notice's story to that message's.
	About ID `json:",omitempty"`
}
