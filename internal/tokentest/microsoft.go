package tokentest

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// msError is the Microsoft identity platform's error body; field names
// and order as it sends them.
type msError struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	Codes         []int  `json:"error_codes"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	ErrorURI      string `json:"error_uri"`
}

// msToken is its answer to a client-credentials request.
type msToken struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// microsoft answers like https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token
// for the client-credentials grant.
func (s *Server) microsoft(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code string, aadsts int, format string, args ...any) {
		msFail(w, status, code, aadsts, fmt.Sprintf(format, args...))
	}
	if !s.begin(w, r, func() {
		fail(http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method)
	}) {
		return
	}
	s.mu.Lock()
	secret := s.secret
	s.mu.Unlock()

	tenant := r.PathValue("tenant")
	id, sec := clientCredentials(r)
	grant, scope := r.PostForm.Get("grant_type"), r.PostForm.Get("scope")
	switch {
	case !strings.EqualFold(tenant, s.o.Tenant):
		fail(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.", tenant)
	case grant == "":
		fail(400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
	case grant != "client_credentials":
		fail(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", grant)
	case id == "":
		fail(400, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
	case id != s.o.ClientID:
		fail(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", id, tenant)
	case sec == "":
		fail(401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case sec != secret:
		fail(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", id)
	case scope == "":
		fail(400, "invalid_scope", 70011, "The provided request must include a 'scope' input parameter.")
	case !hasScope(scope, s.o.Scope):
		fail(400, "invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)
	default:
		tok, n := s.issue()
		writeJSON(w, http.StatusOK, msToken{TokenType: "Bearer", ExpiresIn: n, ExtExpiresIn: n, AccessToken: tok})
	}
}

// msFail writes an error the way the identity platform does: the AADSTS
// number leads the description, which ends with trace and correlation
// ids and a timestamp on lines of their own.
func msFail(w http.ResponseWriter, status int, code string, aadsts int, text string) {
	ts := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	trace, corr := uuid(), uuid()
	writeJSON(w, status, msError{
		Error:         code,
		Description:   fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, text, trace, corr, ts),
		Codes:         []int{aadsts},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
		ErrorURI:      fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	})
}

// uuid is a random (version 4) UUID.
func uuid() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
