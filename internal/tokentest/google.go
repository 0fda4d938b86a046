package tokentest

import (
	"net/http"

	"github.com/sluice-relay/sluice/internal/token"
)

// googleError is Google's OAuth2 error body.
type googleError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// googleToken is its answer to a refresh-token request.
type googleToken struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	TokenType   string `json:"token_type"`
}

// google answers like https://oauth2.googleapis.com/token for the
// refresh-token grant. The grant's scope is token.GoogleScope; a request
// may narrow to it, not widen.
func (s *Server) google(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, code, text string) {
		writeJSON(w, status, googleError{Error: code, Description: text})
	}
	if !s.begin(w, r, func() {
		fail(http.StatusMethodNotAllowed, "invalid_request", "Invalid HTTP method: "+r.Method)
	}) {
		return
	}
	s.mu.Lock()
	secret, refresh := s.secret, s.refresh
	s.mu.Unlock()

	id, sec := clientCredentials(r)
	grant, rt, scope := r.PostForm.Get("grant_type"), r.PostForm.Get("refresh_token"), r.PostForm.Get("scope")
	switch {
	case grant != "refresh_token":
		fail(400, "unsupported_grant_type", "Invalid grant_type: "+grant)
	case id == "":
		fail(400, "invalid_request", "Could not determine client ID from request.")
	case id != s.o.ClientID:
		fail(401, "invalid_client", "The OAuth client was not found.")
	case sec != secret:
		fail(401, "invalid_client", "Unauthorized")
	case rt == "":
		fail(400, "invalid_request", "Missing required parameter: refresh_token")
	case rt != refresh:
		fail(400, "invalid_grant", "Token has been expired or revoked.")
	case scope != "" && scope != token.GoogleScope:
		fail(400, "invalid_scope", "Some requested scopes were invalid. {invalid=["+scope+"]}")
	default:
		tok, n := s.issue()
		writeJSON(w, http.StatusOK, googleToken{AccessToken: tok, ExpiresIn: n, Scope: token.GoogleScope, TokenType: "Bearer"})
	}
}
