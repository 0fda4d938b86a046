package smtpclient

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/smtptest"
)

const (
	testUser     = "app@contoso.example"
	testPassword = "Pa55w0rd!-not-in-transcripts"
	testToken    = "eyJ0eXAiOiJKV1QiLCJhbGciOi.access-token-not-in-transcripts"
)

func TestAuth(t *testing.T) {
	users := map[string]string{testUser: testPassword}
	tokens := func(user, token string) bool { return user == testUser && token == testToken }
	tests := []struct {
		name string
		o    smtptest.Options
		mech string
		cred Credentials
		want string // Auth's error, "" for success
	}{
		{name: "PLAIN", o: smtptest.Options{Auth: []string{"PLAIN"}, Users: users},
			mech: "PLAIN", cred: Credentials{Username: testUser, Password: testPassword}},
		{name: "PLAIN wrong password", o: smtptest.Options{Auth: []string{"PLAIN"}, Users: users},
			mech: "PLAIN", cred: Credentials{Username: testUser, Password: "wrong"},
			want: "AUTH PLAIN: 535 5.7.8 Authentication credentials invalid"},
		{name: "LOGIN", o: smtptest.Options{Auth: []string{"PLAIN", "LOGIN"}, Users: users},
			mech: "login", cred: Credentials{Username: testUser, Password: testPassword}},
		{name: "LOGIN wrong user", o: smtptest.Options{Auth: []string{"LOGIN"}, Users: users},
			mech: "LOGIN", cred: Credentials{Username: "nobody", Password: testPassword},
			want: "AUTH LOGIN: 535 5.7.8 Authentication credentials invalid"},
		{name: "LOGIN with basic auth disabled (Microsoft 365)",
			o:    smtptest.Options{Auth: []string{"LOGIN", "XOAUTH2"}, Users: users, AuthReply: "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR02CA0001.eurprd02.prod.outlook.com]"},
			mech: "LOGIN", cred: Credentials{Username: testUser, Password: testPassword},
			want: "AUTH LOGIN: 535 5.7.139 Authentication unsuccessful, basic authentication is disabled. [AM0PR02CA0001.eurprd02.prod.outlook.com]"},
		{name: "XOAUTH2", o: smtptest.Options{Auth: []string{"XOAUTH2"}, Tokens: tokens},
			mech: "XOAUTH2", cred: Credentials{Username: testUser, Token: testToken}},
		{name: "XOAUTH2 expired token", o: smtptest.Options{Auth: []string{"XOAUTH2"}, Tokens: tokens},
			mech: "XOAUTH2", cred: Credentials{Username: testUser, Token: "expired"},
			want: "AUTH XOAUTH2: 535 5.7.3 Authentication unsuccessful"},
		{name: "mechanism not offered: credentials not sent", o: smtptest.Options{Auth: []string{"XOAUTH2"}},
			mech: "PLAIN", cred: Credentials{Username: testUser, Password: testPassword},
			want: "AUTH PLAIN: 504 5.5.4 AUTH PLAIN is not offered: the server offers XOAUTH2"},
		{name: "no AUTH at all", mech: "LOGIN", cred: Credentials{Username: testUser, Password: testPassword},
			want: "AUTH LOGIN: 504 5.5.4 AUTH LOGIN is not offered: the server offers no AUTH mechanism (some offer AUTH only after STARTTLS)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.RequireAuth = true
			srv := smtptest.NewServer(t, tt.o)
			c, tr := dial(t, srv.Addr())
			err := c.Auth(context.Background(), tt.mech, tt.cred)
			if got := errString(err); got != tt.want {
				t.Fatalf("Auth = %q, want %q", got, tt.want)
			}
			if err != nil {
				var se *Error
				if !errors.As(err, &se) {
					t.Fatalf("Auth error %T is not an *Error", err)
				}
			}
			noSecrets(t, tr.String(), tt.cred)
			if strings.Contains(tt.want, "not offered") {
				for _, cmd := range srv.Commands() {
					if strings.HasPrefix(cmd, "AUTH") {
						t.Errorf("sent %q to a server that does not offer the mechanism", cmd)
					}
				}
			}
			// After a refusal the session goes on; after success MAIL is allowed.
			_, err = c.Send(context.Background(), envelope("b@fabrikam.example"), strings.NewReader(testBody))
			if tt.want == "" && err != nil {
				t.Errorf("Send after AUTH: %v", err)
			}
			if tt.want != "" && !strings.Contains(errString(err), "530 5.7.57") {
				t.Errorf("Send after failed AUTH = %v, want 530 5.7.57", err)
			}
			if tt.want == "" {
				if m := srv.WaitMessages(t, 1)[0]; m.AuthUser != testUser {
					t.Errorf("server saw user %q", m.AuthUser)
				}
			}
		})
	}
}

// noSecrets fails if the transcript shows a password or token, plain or in
// any of the base64 forms AUTH sends.
func noSecrets(t *testing.T, transcript string, cred Credentials) {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	secrets := map[string]string{}
	if cred.Password != "" {
		secrets["password"] = cred.Password
		secrets["base64 password"] = b64([]byte(cred.Password))
		secrets["PLAIN response"] = b64([]byte("\x00" + cred.Username + "\x00" + cred.Password))
	}
	if cred.Token != "" {
		secrets["token"] = cred.Token
		secrets["XOAUTH2 response"] = b64([]byte("user=" + cred.Username + "\x01auth=Bearer " + cred.Token + "\x01\x01"))
	}
	for what, s := range secrets {
		if strings.Contains(transcript, s) {
			t.Errorf("transcript shows the %s:\n%s", what, transcript)
		}
	}
}

// The transcript shows the exchange with every payload masked.
func TestAuthTranscript(t *testing.T) {
	tests := []struct {
		mech string
		want []string
	}{
		{"PLAIN", []string{"> AUTH PLAIN ***", "< 235 2.7.0 Authentication successful"}},
		{"LOGIN", []string{"> AUTH LOGIN", "< 334 VXNlcm5hbWU6", "> ***", "< 334 UGFzc3dvcmQ6", "> ***", "< 235 2.7.0 Authentication successful"}},
		{"XOAUTH2", []string{"> AUTH XOAUTH2 ***", "< 334 " + base64.StdEncoding.EncodeToString([]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office365.com/.default"}`)),
			"> ***", "< 535 5.7.3 Authentication unsuccessful"}},
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{Auth: []string{tt.mech}, Users: map[string]string{testUser: testPassword},
				Tokens: func(string, string) bool { return false }})
			c, tr := dial(t, srv.Addr())
			c.Auth(context.Background(), tt.mech, Credentials{Username: testUser, Password: testPassword, Token: testToken})
			got := tr.String()
			if !strings.Contains(got, strings.Join(tt.want, "\n")) {
				t.Errorf("transcript:\n%s\nwant it to contain:\n%s", got, strings.Join(tt.want, "\n"))
			}
			if strings.Contains(got, base64.StdEncoding.EncodeToString([]byte(testUser))) {
				t.Errorf("transcript shows the user name in base64:\n%s", got)
			}
		})
	}
}

// An upstream that quotes what it got in its refusal (the base64 response,
// or it decoded) must not put the password or token in the error, which
// becomes the queue's last error, the tracking log's reply and a log line,
// nor in the transcript.
func TestAuthRefusalQuotingCredentials(t *testing.T) {
	for _, mech := range []string{"PLAIN", "LOGIN", "XOAUTH2"} {
		t.Run(mech, func(t *testing.T) {
			var last string // the client's last line, quoted back
			addr := rawServer(t, "220 echo.example ESMTP", func(line string) string {
				defer func() { last = line }()
				switch {
				case strings.HasPrefix(line, "EHLO"):
					return "250-echo.example\n250 AUTH PLAIN LOGIN XOAUTH2"
				case line == "AUTH LOGIN":
					return "334 VXNlcm5hbWU6"
				case strings.HasPrefix(last, "AUTH LOGIN"):
					return "334 UGFzc3dvcmQ6"
				case strings.HasPrefix(line, "AUTH XOAUTH2"):
					return "334 " + base64.StdEncoding.EncodeToString([]byte(`{"status":"401"}`))
				}
				quoted := line
				if f := strings.Fields(line); len(f) == 3 {
					quoted = f[2]
				}
				if strings.HasPrefix(last, "AUTH XOAUTH2") {
					quoted = strings.Fields(last)[2]
				}
				b, _ := base64.StdEncoding.DecodeString(quoted)
				return "535 5.7.8 authentication failed for " + quoted + " (" + strings.ReplaceAll(string(b), "\x01", " ") + ")"
			})
			c, tr := dial(t, addr)
			cred := Credentials{Username: testUser, Password: testPassword, Token: testToken}
			err := c.Auth(context.Background(), mech, cred)
			if err == nil || !strings.Contains(err.Error(), "535 5.7.8 authentication failed for") {
				t.Fatalf("Auth: %v", err)
			}
			noSecrets(t, err.Error(), cred)
			noSecrets(t, tr.String(), cred)
		})
	}
}

// RFC 4954 §4: the AUTH line is subject to SMTP's 512-octet limit, and a
// client MUST NOT use the initial response when it would not fit; it
// sends the response after the server's empty 334 instead. Microsoft
// 365's access tokens (JWTs of 1.5–3 KB) never fit; short PLAIN
// credentials still go on the AUTH line.
func TestAuthInitialResponseTooLong(t *testing.T) {
	long := "eyJ0eXAiOiJKV1QiLCJub25jZSI6" + strings.Repeat("A", 2400)
	tests := []struct {
		mech     string
		cred     Credentials
		wantLine string // the AUTH command as the server got it, "" for with an initial response
	}{
		{"XOAUTH2", Credentials{Username: testUser, Token: long}, "AUTH XOAUTH2"},
		{"PLAIN", Credentials{Username: testUser, Password: strings.Repeat("p", 500)}, "AUTH PLAIN"},
		{"PLAIN", Credentials{Username: testUser, Password: testPassword}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.mech+" "+tt.wantLine, func(t *testing.T) {
			srv := smtptest.NewServer(t, smtptest.Options{Auth: []string{tt.mech}, RequireAuth: true,
				Users: map[string]string{testUser: tt.cred.Password}, Tokens: func(u, tok string) bool { return u == testUser && tok == long }})
			c, tr := dial(t, srv.Addr())
			if err := c.Auth(context.Background(), tt.mech, tt.cred); err != nil {
				t.Fatalf("Auth = %v", err)
			}
			noSecrets(t, tr.String(), tt.cred)
			for _, cmd := range srv.Commands() {
				if !strings.HasPrefix(cmd, "AUTH") {
					continue
				}
				if len(cmd)+2 > 512 {
					t.Errorf("AUTH line of %d octets with CRLF; RFC 5321 §4.5.3.1.4 allows 512", len(cmd)+2)
				}
				if tt.wantLine != "" && cmd != tt.wantLine {
					t.Errorf("AUTH line %.40q...; want %q", cmd, tt.wantLine)
				}
				if tt.wantLine == "" && !strings.HasPrefix(cmd, "AUTH "+tt.mech+" ") {
					t.Errorf("AUTH line %q; want the initial response on it", cmd)
				}
			}
		})
	}
}
