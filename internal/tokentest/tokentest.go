// Package tokentest is an in-process OAuth2 token endpoint for tests, in
// the style of net/http/httptest. It answers like the Microsoft identity
// platform's v2.0 endpoint (client-credentials flow, at
// <base>/<tenant>/oauth2/v2.0/token) and like Google's (refresh-token flow,
// at <base>/token): form-encoded POST only, the same JSON field names, the
// same HTTP statuses, error codes and AADSTS numbers. Access tokens are
// random opaque strings whose expiry the server tracks, so an SMTP test
// server can check an XOAUTH2 token with Valid.
//
// Not modelled: Microsoft's refresh-token (delegated) grant, certificate
// credentials (client_assertion), token contents (JWT claims).
package tokentest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/token"
)

// Defaults for the zero Options.
const (
	DefaultClientID     = "7a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b"
	DefaultClientSecret = "tokentest~client~secret~value"
	DefaultTenant       = "contoso.onmicrosoft.com"
)

// Options shape the endpoint; the zero value is a Microsoft tenant with
// default credentials and one-hour tokens.
type Options struct {
	ClientID     string        // default DefaultClientID
	ClientSecret string        // default DefaultClientSecret
	Tenant       string        // default DefaultTenant
	RefreshToken string        // accepted by the Google-shaped endpoint; empty: it accepts none
	ExpiresIn    time.Duration // lifetime of issued tokens; default 1h, at least a second
	Scope        string        // scope the Microsoft endpoint requires; default token.MicrosoftScope
}

// Server is a running token endpoint.
type Server struct {
	srv       *httptest.Server
	o         Options
	googleURL bool // URL is the Google-shaped endpoint

	mu        sync.Mutex
	secret    string
	refresh   string
	expiresIn time.Duration
	tokens    map[string]time.Time // issued access token → expiry
	requests  int
	outage    int // answer every request with this status when not 0
}

// NewServer starts an endpoint on loopback; it closes on t.Cleanup.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	googleURL := o.RefreshToken != "" && o.Tenant == ""
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.Tenant == "" {
		o.Tenant = DefaultTenant
	}
	if o.ExpiresIn == 0 {
		o.ExpiresIn = time.Hour
	}
	if o.Scope == "" {
		o.Scope = token.MicrosoftScope
	}
	s := &Server{o: o, googleURL: googleURL, secret: o.ClientSecret, refresh: o.RefreshToken, expiresIn: o.ExpiresIn, tokens: map[string]time.Time{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/{tenant}/oauth2/v2.0/token", s.microsoft)
	mux.HandleFunc("/token", s.google)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the token URL to configure: the Microsoft endpoint for the
// configured tenant, or the Google-shaped one when Options named a
// RefreshToken and no Tenant.
func (s *Server) URL() string {
	if s.googleURL {
		return s.RefreshURL()
	}
	return s.TenantURL(s.o.Tenant)
}

// TenantURL is the Microsoft-shaped token URL for any tenant (another
// tenant than the configured one answers AADSTS90002).
func (s *Server) TenantURL(tenant string) string {
	return s.srv.URL + "/" + tenant + "/oauth2/v2.0/token"
}

// RefreshURL is the Google-shaped refresh-token endpoint.
func (s *Server) RefreshURL() string { return s.srv.URL + "/token" }

// Client is an HTTP client for the server (it is plain HTTP on loopback;
// any client works).
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Config is a token.Config that gets tokens from this server: the
// client-credentials flow for the tenant, or the refresh-token flow when
// URL is the Google-shaped endpoint.
func (s *Server) Config() token.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := token.Config{
		Flow:         token.FlowClientCredentials,
		TokenURL:     s.URL(),
		ClientID:     s.o.ClientID,
		ClientSecret: s.secret,
		Scopes:       []string{s.o.Scope},
		HTTPClient:   s.srv.Client(),
	}
	if s.googleURL {
		c.Flow, c.RefreshToken, c.Scopes = token.FlowRefreshToken, s.refresh, []string{token.GoogleScope}
	}
	return c
}

// Valid reports whether tok was issued here, has not expired and has not
// been revoked.
func (s *Server) Valid(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// Requests is the number of requests the token endpoints got, failed ones
// included.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Revoke invalidates every access token issued so far (a password change,
// withdrawn consent). New requests still get tokens.
func (s *Server) Revoke() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// SetSecret makes secret the only client secret accepted from now on.
func (s *Server) SetSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secret = secret
}

// SetRefreshToken makes rt the only refresh token accepted from now on;
// any other gets invalid_grant.
func (s *Server) SetRefreshToken(rt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = rt
}

// SetExpiresIn sets the lifetime of tokens issued from now on.
func (s *Server) SetExpiresIn(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiresIn = d
}

// SetOutage makes the server answer every request with status and an HTML
// error page, as a failing front end does; 0 restores service.
func (s *Server) SetOutage(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = status
}

// begin counts a request and answers it when the server is down or the
// method is not POST. It reports whether the handler should go on.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, methodErr func()) bool {
	s.mu.Lock()
	s.requests++
	outage := s.outage
	s.mu.Unlock()
	if outage != 0 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(outage)
		fmt.Fprintf(w, "<html><head><title>%d %s</title></head><body><h1>%s</h1></body></html>\n", outage, http.StatusText(outage), http.StatusText(outage))
		return false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST, OPTIONS")
		methodErr()
		return false
	}
	// Only a form-encoded body counts (ParseForm ignores any other), so a
	// JSON body is a request without grant_type, as the real ones see it.
	if err := r.ParseForm(); err != nil {
		r.PostForm = nil
	}
	return true
}

// clientCredentials are the client id and secret from the form or, per
// RFC 6749 §2.3.1, from HTTP Basic authentication.
func clientCredentials(r *http.Request) (id, secret string) {
	id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok && id == "" && secret == "" {
		id, secret = unescape(u), unescape(p)
	}
	return id, secret
}

// issue records a new access token and returns it with its lifetime.
func (s *Server) issue() (tok string, expiresIn int) {
	b := make([]byte, 32)
	rand.Read(b)
	tok = "tt." + base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	d := max(s.expiresIn, time.Second)
	s.tokens[tok] = time.Now().Add(d)
	return tok, int(d / time.Second)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func unescape(s string) string {
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}

func hasScope(list, want string) bool {
	for _, s := range strings.Fields(list) {
		if s == want {
			return true
		}
	}
	return false
}
