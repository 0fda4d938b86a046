package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Error is a failed token fetch, worded for an admin:
//
//	token endpoint login.microsoftonline.com: invalid_client: AADSTS7000215: Invalid client secret provided. ... (HTTP 401); check client_id and client_secret (the secret VALUE, not its ID) and that it has not expired
//
// It never holds the client secret, the refresh token or an access token.
type Error struct {
	Endpoint      string // host of the token URL, e.g. login.microsoftonline.com
	HTTPStatus    int    // 0 when there was no answer (or the config stopped the request)
	Code          string // RFC 6749 §5.2 error code: invalid_client, invalid_grant, ...
	MicrosoftCode int    // the AADSTS number, e.g. 7000215; 0 when none
	Description   string // the endpoint's error_description on one line, or what went wrong
	Hint          string // what to change; empty when there is nothing to say
	Err           error  // the underlying error, for errors.Is (context.DeadlineExceeded, ...)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("token endpoint ")
	b.WriteString(e.Endpoint)
	b.WriteString(": ")
	switch {
	case e.Code != "":
		b.WriteString(e.Code)
		if e.Description != "" {
			b.WriteString(": ")
			b.WriteString(e.Description)
		}
		if e.HTTPStatus != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
		}
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, "HTTP %d %s", e.HTTPStatus, http.StatusText(e.HTTPStatus))
		if e.Description != "" {
			b.WriteString(": ")
			b.WriteString(e.Description)
		}
	case e.config():
		b.WriteString(e.Description)
	default:
		b.WriteString("no answer: ")
		b.WriteString(e.Description)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later, unchanged, may succeed:
// no answer, a 5xx or 429, or the endpoint saying it is unavailable. An
// OAuth2 rejection (wrong secret, unknown app, revoked grant) is not: an
// admin has to change something.
func (e *Error) Temporary() bool {
	switch {
	case e.config():
		return false
	case e.Code == "temporarily_unavailable", e.Code == "server_error":
		return true
	case e.HTTPStatus == 0, e.HTTPStatus == http.StatusTooManyRequests, e.HTTPStatus >= 500:
		return true
	}
	return false
}

func (e *Error) config() bool {
	var ce configError
	return errors.As(e.Err, &ce)
}

// hint says what an admin should change, for the errors they meet. The
// AADSTS numbers are from Microsoft's "Microsoft Entra authentication and
// authorization error codes" reference.
func hint(e *Error) string {
	google := strings.HasSuffix(e.Endpoint, "googleapis.com") || strings.HasSuffix(e.Endpoint, "google.com")
	switch ms := e.MicrosoftCode; {
	case e.config():
		return "fix the send connector's auth.oauth2 settings"
	case ms == 7000222: // the client secret has expired
		return "the client secret has expired: create a new one under the app registration's Certificates & secrets and set client_secret to its VALUE"
	case ms == 700016 || e.Code == "unauthorized_client":
		return "no application with this client_id was found in the tenant: check client_id and tenant, and that an admin of that tenant has consented to the app"
	case ms == 90002 || ms == 900023:
		return "tenant not found: check the tenant (the directory id or a verified domain of the Microsoft 365 organisation)"
	case ms == 70011 || e.Code == "invalid_scope":
		if google {
			return "the scope must be " + GoogleScope
		}
		return "the scope must be " + MicrosoftScope
	case e.Code == "invalid_client":
		if google {
			return "check client_id and client_secret of the OAuth client (Google Cloud console, APIs & Services, Credentials)"
		}
		return "check client_id and client_secret (the secret VALUE, not its ID) and that it has not expired"
	case e.Code == "invalid_grant":
		if ms != 0 {
			return "the refresh token is invalid, expired or revoked: sign in again to get a new one"
		}
		return "the refresh token has expired or was revoked: create a new one (Google expires them after 7 days while the OAuth consent screen is in Testing)"
	case e.Code == "unsupported_grant_type":
		return "the endpoint does not accept this flow: check flow and token_url"
	case ms == 900144:
		return "the request lacked a parameter the endpoint needs: check that client_id, client_secret and scopes are set"
	case e.Code == "temporarily_unavailable", e.Code == "server_error", e.HTTPStatus >= 500:
		return "the identity platform is failing; Sluice tries again, change nothing unless it persists"
	case e.HTTPStatus == http.StatusTooManyRequests:
		return "the endpoint is throttling token requests; Sluice tries again"
	case e.HTTPStatus == http.StatusNotFound:
		return "nothing answers at that path: check token_url"
	case e.HTTPStatus == 0:
		return "check DNS, firewall and proxy settings: Sluice must reach https://" + e.Endpoint
	}
	return ""
}

var aadsts = regexp.MustCompile(`\bAADSTS(\d+)\b`)

// microsoftCode is the AADSTS number of a Microsoft error: error_codes[0]
// in the body, else the number the description starts with.
func microsoftCode(body []byte, description string) int {
	var v struct {
		ErrorCodes []int `json:"error_codes"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.ErrorCodes) > 0 {
		return v.ErrorCodes[0]
	}
	if m := aadsts.FindStringSubmatch(description); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// bodySnippet is the start of a failure answer that carries no OAuth2
// error, on one line; nothing for HTML, which says nothing useful there.
func bodySnippet(contentType string, body []byte) string {
	if mt, _, _ := mime.ParseMediaType(contentType); mt == "text/html" {
		return ""
	}
	s := oneLine(string(body))
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "..."
	}
	return s
}

// oneLine collapses runs of white space, so Microsoft's "\r\nTrace ID:
// ..." tail stays on the log line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// minRedact is the shortest secret redact replaces: shorter strings would
// blot out ordinary words, and no real secret is that short.
const minRedact = 6

// redact removes the client secret, refresh tokens and access token from text. Endpoints do
// not echo them, but a proxy's error page might. Called with s.mu held.
func (s *Source) redact(text string) string {
	for _, v := range []string{s.cfg.ClientSecret, s.cfg.RefreshToken, s.refresh, s.tok} {
		if len(v) >= minRedact {
			text = strings.ReplaceAll(text, v, "***")
		}
	}
	return text
}
