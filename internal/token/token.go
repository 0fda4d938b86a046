package token

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The two flows a Config may name.
const (
	FlowClientCredentials = "client_credentials" // Microsoft 365 app registration
	FlowRefreshToken      = "refresh_token"      // Google (and delegated Microsoft) consent
)

// Microsoft's and Google's endpoints and the scopes SMTP needs.
const (
	// MicrosoftScope is the only scope the client-credentials flow accepts
	// for Exchange Online SMTP: the resource with /.default.
	MicrosoftScope = "https://outlook.office365.com/.default"
	GoogleTokenURL = "https://oauth2.googleapis.com/token"
	GoogleScope    = "https://mail.google.com/"
)

// DefaultRefreshBefore is how long before expiry a token is replaced when
// Config.RefreshBefore is zero. Microsoft's tokens live about an hour.
const DefaultRefreshBefore = 5 * time.Minute

// fetchTimeout bounds one request to the token endpoint, whoever waits.
const fetchTimeout = 30 * time.Second

// assumedLifetime is used when the endpoint gives no expires_in (RFC 6749
// §5.1 makes it RECOMMENDED, not required): an hour, Microsoft's default;
// a token revoked earlier is replaced after the upstream's 535.
const assumedLifetime = time.Hour

// retryAfterFailure spaces the attempts to replace a token that is still
// valid after one failed: each delivery session asks for the token, and
// an endpoint that is down, or refuses an expired client secret, would
// otherwise get a request from every one until the token expires.
const retryAfterFailure = 30 * time.Second

// MicrosoftTokenURL is the Microsoft identity platform's v2.0 token
// endpoint for a tenant (directory id or verified domain).
func MicrosoftTokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// Config is one send connector's OAuth2 settings.
type Config struct {
	Flow          string // FlowClientCredentials (default) or FlowRefreshToken
	TokenURL      string // the full endpoint URL
	ClientID      string
	ClientSecret  string
	Scopes        []string
	RefreshToken  string           // FlowRefreshToken only
	RefreshBefore time.Duration    // replace a token this long before expiry; default DefaultRefreshBefore
	HTTPClient    *http.Client     // default: one with a 30s timeout and the environment's proxy
	Now           func() time.Time // default time.Now; tests set a clock
}

// Status is a Source's state, for health and the admin API.
type Status struct {
	LastFetch time.Time `json:"last_fetch,omitzero"` // last request to the token endpoint, successful or not
	ExpiresAt time.Time `json:"expires_at,omitzero"` // of the cached token; zero when none is cached
	LastError string    `json:"last_error,omitempty"`
	OK        bool      `json:"ok"` // the last fetch succeeded; false before the first
	// Err is the last fetch's error (an *Error), for errors.As.
	Err error `json:"-"`
}

// Source hands out one connector's access token. It is safe for
// concurrent use.
type Source struct {
	cfg    Config
	host   string
	before time.Duration
	client *http.Client

	mu      sync.Mutex
	tok     string
	expiry  time.Time
	refresh string    // the current refresh token; the endpoint may rotate it
	retryAt time.Time // after a failed early refresh: no new one before
	call    *call     // the fetch in flight, if any
	status  Status
}

// call is one fetch that concurrent Token callers share.
type call struct {
	done    chan struct{}
	waiters int // callers waiting on done (tests observe it)
	tok     string
	err     error
}

// New returns a Source for c. It makes no request: the first Token does.
func New(c Config) *Source {
	c.Scopes = append([]string(nil), c.Scopes...)
	s := &Source{cfg: c, host: endpointHost(c.TokenURL), before: c.RefreshBefore, client: c.HTTPClient, refresh: c.RefreshToken}
	if s.before <= 0 {
		s.before = DefaultRefreshBefore
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: fetchTimeout}
	}
	if s.cfg.Now == nil {
		s.cfg.Now = time.Now
	}
	return s
}

// Token returns the cached access token while it is valid, and fetches
// one when none is cached or it has expired. Inside RefreshBefore of
// expiry the cached token is still returned at once and a replacement is
// fetched in the background: a session must not wait for the endpoint
// (up to 30s when it hangs) while it holds a token the upstream accepts.
// Concurrent callers share one request. A caller whose ctx ends stops
// waiting; the fetch goes on (up to 30s) and its token is cached for the
// next caller.
func (s *Source) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	now := s.cfg.Now()
	if s.tok != "" && now.Before(s.expiry) {
		tok := s.tok
		if !now.Before(s.expiry.Add(-s.before)) && !now.Before(s.retryAt) && s.call == nil {
			s.start(ctx)
		}
		s.mu.Unlock()
		return tok, nil
	}
	c := s.call
	if c == nil {
		c = s.start(ctx)
	}
	c.waiters++
	s.mu.Unlock()

	select {
	case <-c.done:
		return c.tok, c.err
	case <-ctx.Done():
		s.mu.Lock()
		c.waiters--
		s.mu.Unlock()
		return "", ctx.Err()
	}
}

// start begins a fetch; s.mu is held. The fetch outlives the caller's ctx
// because later callers share its result.
func (s *Source) start(ctx context.Context) *call {
	c := &call{done: make(chan struct{})}
	s.call = c
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
	go func() {
		defer cancel()
		s.fetch(fctx, c)
	}()
	return c
}

// fetch asks the endpoint for a token and completes c. A failed early
// refresh still serves the cached token while it has not expired.
func (s *Source) fetch(ctx context.Context, c *call) {
	s.mu.Lock()
	refresh := s.refresh
	s.mu.Unlock()

	t, err := s.retrieve(ctx, refresh)
	// oauth2 reckons Expiry on time.Now; the cache reads it on cfg.Now,
	// so it keeps the lifetime and reckons that on cfg.Now.
	var lifetime time.Duration
	if err == nil && !t.Expiry.IsZero() {
		lifetime = time.Until(t.Expiry)
	}
	now := s.cfg.Now()

	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(c.done)
	s.call = nil
	s.status.LastFetch = now
	if err != nil {
		e := s.newError(err)
		s.status.OK, s.status.LastError, s.status.Err = false, e.Error(), e
		if s.tok != "" && now.Before(s.expiry) {
			c.tok = s.tok
			s.retryAt = now.Add(retryAfterFailure)
			return
		}
		c.err = e
		return
	}
	s.tok, s.expiry, s.retryAt = t.AccessToken, now.Add(lifetime), time.Time{}
	if t.Expiry.IsZero() {
		s.expiry = now.Add(assumedLifetime)
	}
	if t.RefreshToken != "" {
		s.refresh = t.RefreshToken
	}
	s.status = Status{LastFetch: now, ExpiresAt: s.expiry, OK: true}
	c.tok = s.tok
}

// Invalidate drops the cached token, when it is still rejected, so the
// next Token fetches a new one. Call it with the token the upstream
// answered 535 to XOAUTH2. A token fetched since (by another session
// that met the same 535 first) is newer and stays, and so is a fetch
// already in flight.
func (s *Source) Invalidate(rejected string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != rejected {
		return
	}
	s.tok, s.expiry, s.retryAt = "", time.Time{}, time.Time{}
	s.status.ExpiresAt = time.Time{}
}

// Status reports the source's state.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}
