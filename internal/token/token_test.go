package token_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/testclock"
	"github.com/sluice-relay/sluice/internal/token"
	"github.com/sluice-relay/sluice/internal/tokentest"
)

func TestFetchAndCache(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{})
	src := token.New(srv.Config())
	if st := src.Status(); st.OK || !st.LastFetch.IsZero() {
		t.Errorf("Status before any fetch = %+v, want zero", st)
	}
	tok1 := mustToken(t, src)
	if !srv.Valid(tok1) {
		t.Errorf("server does not know token %q", tok1)
	}
	tok2 := mustToken(t, src)
	if tok2 != tok1 {
		t.Errorf("second Token() = %q, want the cached %q", tok2, tok1)
	}
	if n := srv.Requests(); n != 1 {
		t.Errorf("token requests = %d, want 1", n)
	}
	st := src.Status()
	if !st.OK || st.LastError != "" || st.Err != nil || st.LastFetch.IsZero() || !st.ExpiresAt.After(st.LastFetch) {
		t.Errorf("Status = %+v, want OK with ExpiresAt after LastFetch", st)
	}
}

// TestEarlyRefresh drives refresh by the token's lifetime, not the clock:
// a token living less than RefreshBefore is replaced after every call (in
// the background, so each call gets the one the previous refresh brought),
// one living much longer never.
func TestEarlyRefresh(t *testing.T) {
	for _, tc := range []struct {
		name          string
		expiresIn     time.Duration
		refreshBefore time.Duration
		wantRequests  int
		wantTokens    int
	}{
		{name: "lifetime inside the refresh window", expiresIn: time.Minute, refreshBefore: 5 * time.Minute, wantRequests: 3, wantTokens: 2},
		{name: "default window is 5m", expiresIn: 2 * time.Minute, wantRequests: 3, wantTokens: 2},
		{name: "lifetime well outside the window", expiresIn: time.Hour, refreshBefore: 5 * time.Minute, wantRequests: 1, wantTokens: 1},
		{name: "default window, Microsoft's hour", expiresIn: 3599 * time.Second, wantRequests: 1, wantTokens: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tokentest.NewServer(t, tokentest.Options{ExpiresIn: tc.expiresIn})
			c := srv.Config()
			c.RefreshBefore = tc.refreshBefore
			src := token.New(c)
			seen := map[string]bool{}
			for range 3 {
				seen[mustToken(t, src)] = true
				waitIdle(t, src)
			}
			if n := srv.Requests(); n != tc.wantRequests {
				t.Errorf("token requests = %d, want %d", n, tc.wantRequests)
			}
			if len(seen) != tc.wantTokens {
				t.Errorf("distinct tokens = %d, want %d", len(seen), tc.wantTokens)
			}
		})
	}
}

// A refresh that fails while the cached token is still valid serves the
// cached token and records the failure for health; the next try waits
// 30 seconds, however many sessions ask meanwhile.
func TestEarlyRefreshFailureKeepsToken(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{ExpiresIn: time.Minute})
	clock := testclock.New(time.Now())
	c := srv.Config()
	c.Now = clock.Now
	src := token.New(c) // default window 5m: every call refreshes
	tok := mustToken(t, src)
	srv.SetOutage(http.StatusServiceUnavailable)
	for range 5 {
		got, err := src.Token(context.Background())
		if err != nil || got != tok {
			t.Fatalf("Token() during outage = %q, %v; want the cached token", got, err)
		}
		waitIdle(t, src)
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("token requests = %d after five calls in the outage, want 2 (the first fetch, one failed refresh)", n)
	}
	st := src.Status()
	if st.OK || !strings.Contains(st.LastError, "HTTP 503") {
		t.Errorf("Status = %+v, want not OK with the 503", st)
	}
	srv.SetOutage(0)
	if got := mustToken(t, src); got != tok {
		t.Error("a refresh was tried again within 30 seconds of the failed one")
	}
	clock.Add(31 * time.Second)
	if got := mustToken(t, src); got != tok {
		t.Error("the first call after the pause did not get the cached token while the refresh ran")
	}
	waitIdle(t, src)
	if got := mustToken(t, src); got == tok {
		t.Error("after the outage Token() kept the old token, want a new one")
	}
	if st := src.Status(); !st.OK || st.LastError != "" {
		t.Errorf("Status after recovery = %+v, want OK", st)
	}
}

// turnstile lets one request to the token endpoint through per value on
// pass; entered tells the test a request is held there.
type turnstile struct {
	pass    chan struct{}
	entered chan struct{}
}

func (g turnstile) RoundTrip(r *http.Request) (*http.Response, error) {
	g.entered <- struct{}{}
	<-g.pass
	return http.DefaultTransport.RoundTrip(r)
}

// Inside the refresh window a session gets the cached token at once, not
// after the endpoint answers: with an endpoint that hangs, every session
// in the token's last minutes would otherwise wait up to 30s.
func TestRefreshInBackground(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{})
	g := turnstile{pass: make(chan struct{}, 1), entered: make(chan struct{}, 3)}
	clock := testclock.New(time.Now())
	c := srv.Config()
	c.HTTPClient = &http.Client{Transport: g}
	c.Now = clock.Now
	src := token.New(c)

	g.pass <- struct{}{}
	old := mustToken(t, src)
	<-g.entered
	clock.Add(56 * time.Minute) // 4 minutes left: inside the default 5m window

	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 1)
	go func() {
		tok, err := src.Token(ctx)
		if err != nil {
			tok = "error: " + err.Error()
		}
		got <- tok
	}()
	<-g.entered // the refresh is held at the endpoint
	// A caller waiting for the refresh would now see its ctx end.
	cancel()
	if tok := <-got; tok != old {
		t.Fatalf("Token() while the refresh was held = %q, want the cached token at once", tok)
	}
	if tok := mustToken(t, src); tok != old {
		t.Errorf("second Token() while the refresh was held = %q, want the cached token", tok)
	}
	if n := token.Waiters(src); n != 0 {
		t.Errorf("%d callers wait on the refresh, want none", n)
	}

	g.pass <- struct{}{}
	waitIdle(t, src)
	fresh := mustToken(t, src)
	if fresh == old || !srv.Valid(fresh) {
		t.Errorf("after the refresh Token() = %q (old %q, valid %v), want the new token", fresh, old, srv.Valid(fresh))
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("token requests = %d, want 2 (the first fetch, one refresh)", n)
	}

	// An expired token is never served: the caller waits for a new one.
	clock.Add(time.Hour)
	g.pass <- struct{}{}
	if tok := mustToken(t, src); tok == fresh || !srv.Valid(tok) {
		t.Errorf("Token() after expiry = %q, want a new valid token", tok)
	}
	<-g.entered
}

// A token's expiry is reckoned on the Source's clock from expires_in.
// oauth2 reckons Token.Expiry on time.Now: with any other clock (a test's,
// here ten hours behind) the Source saw a token expire hours early or
// late, and TestRefreshInBackground hung now and then: a refresh it did
// not expect took the pass meant for the next.
func TestExpiryOnTheSourcesClock(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{ExpiresIn: 30 * time.Minute})
	clock := testclock.New(time.Now().Add(-10 * time.Hour))
	c := srv.Config()
	c.Now = clock.Now
	src := token.New(c)
	mustToken(t, src)
	if got, want := src.Status().ExpiresAt, clock.Now().Add(30*time.Minute); got.Sub(want).Abs() > 5*time.Second {
		t.Errorf("ExpiresAt = %v; want %v, 30 minutes after the Source's now", got, want)
	}
}

func TestInvalidate(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{})
	src := token.New(srv.Config())
	old := mustToken(t, src)
	srv.Revoke() // the upstream now answers 535 to old
	if srv.Valid(old) {
		t.Fatal("revoked token still valid")
	}
	src.Invalidate(old)
	if st := src.Status(); !st.ExpiresAt.IsZero() {
		t.Errorf("Status after Invalidate has ExpiresAt %v, want zero", st.ExpiresAt)
	}
	tok := mustToken(t, src)
	if tok == old || !srv.Valid(tok) {
		t.Errorf("after Invalidate Token() = %q (old %q, valid %v), want a new valid token", tok, old, srv.Valid(tok))
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

// Two sessions meet a 535 with the same token: the first invalidates it
// and fetches a new one; the second's Invalidate must not throw that
// new one away.
func TestInvalidateKeepsANewerToken(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{})
	src := token.New(srv.Config())
	old := mustToken(t, src)
	srv.Revoke()
	src.Invalidate(old) // the first session
	fresh := mustToken(t, src)
	src.Invalidate(old) // the second, late
	if got := mustToken(t, src); got != fresh {
		t.Errorf("after a late Invalidate of the old token, Token() = %q, want the fresh %q kept", got, fresh)
	}
	if n := srv.Requests(); n != 2 {
		t.Errorf("token requests = %d, want 2", n)
	}
}

// gate holds every request to the token endpoint until released.
type gate struct {
	release chan struct{}
}

func (g gate) RoundTrip(r *http.Request) (*http.Response, error) {
	<-g.release
	return http.DefaultTransport.RoundTrip(r)
}

func TestConcurrentCallersShareOneFetch(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{})
	g := gate{release: make(chan struct{})}
	c := srv.Config()
	c.HTTPClient = &http.Client{Transport: g}
	src := token.New(c)

	const n = 20
	toks := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { toks[i], errs[i] = src.Token(context.Background()) })
	}
	waitFor(t, "all callers waiting on one fetch", func() bool { return token.Waiters(src) == n })
	close(g.release)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || toks[i] != toks[0] {
			t.Errorf("caller %d: Token() = %q, %v; want %q", i, toks[i], errs[i], toks[0])
		}
	}
	if r := srv.Requests(); r != 1 {
		t.Errorf("token requests = %d, want 1", r)
	}
}

// A caller that gives up does not spoil the fetch for the others.
func TestCallerCancelled(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{})
	g := gate{release: make(chan struct{})}
	c := srv.Config()
	c.HTTPClient = &http.Client{Transport: g}
	src := token.New(c)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := src.Token(ctx)
		done <- err
	}()
	waitFor(t, "the fetch to start", func() bool { return token.Waiters(src) == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Token() error = %v, want context.Canceled", err)
	}
	close(g.release)
	tok := mustToken(t, src)
	if !srv.Valid(tok) {
		t.Errorf("token %q not valid", tok)
	}
	if r := srv.Requests(); r != 1 {
		t.Errorf("token requests = %d, want 1 (the abandoned fetch's token is reused)", r)
	}
}

func TestRefreshTokenFlow(t *testing.T) {
	const rt = "1//0gRefreshTokenForTests-abcdef"
	srv := tokentest.NewServer(t, tokentest.Options{RefreshToken: rt})
	c := srv.Config()
	if c.Flow != token.FlowRefreshToken || c.TokenURL != srv.RefreshURL() {
		t.Fatalf("Config() = flow %q url %q, want the refresh flow at %s", c.Flow, c.TokenURL, srv.RefreshURL())
	}
	src := token.New(c)
	tok := mustToken(t, src)
	if !srv.Valid(tok) || mustToken(t, src) != tok || srv.Requests() != 1 {
		t.Fatalf("token %q valid=%v, requests %d; want one cached valid token", tok, srv.Valid(tok), srv.Requests())
	}
	src.Invalidate(tok)
	if tok2 := mustToken(t, src); tok2 == tok || !srv.Valid(tok2) {
		t.Errorf("after Invalidate got %q, want a new valid token", tok2)
	}
}

func TestErrors(t *testing.T) {
	const wrongSecret = "Wr0ng~SecretValue.9x"
	ms := tokentest.NewServer(t, tokentest.Options{})
	const rt = "1//0gRefreshTokenForTests-abcdef"
	goog := tokentest.NewServer(t, tokentest.Options{RefreshToken: rt})
	for _, tc := range []struct {
		name       string
		srv        *tokentest.Server
		edit       func(*token.Config)
		status     int
		code       string
		aadsts     int
		hint       string
		notSecrets []string // besides both servers' client secrets
	}{
		{name: "wrong client secret", srv: ms, edit: func(c *token.Config) { c.ClientSecret = wrongSecret },
			status: 401, code: "invalid_client", aadsts: 7000215, hint: "(the secret VALUE, not its ID) and that it has not expired",
			notSecrets: []string{wrongSecret}},
		{name: "no client secret", srv: ms, edit: func(c *token.Config) { c.ClientSecret = "" },
			status: 401, code: "invalid_client", aadsts: 7000218, hint: "check client_id and client_secret"},
		{name: "unknown client id", srv: ms, edit: func(c *token.Config) { c.ClientID = "00000000-1111-2222-3333-444444444444" },
			status: 400, code: "unauthorized_client", aadsts: 700016, hint: "no application with this client_id was found in the tenant"},
		{name: "wrong scope", srv: ms, edit: func(c *token.Config) { c.Scopes = []string{"https://graph.microsoft.com/.default"} },
			status: 400, code: "invalid_scope", aadsts: 70011, hint: "the scope must be https://outlook.office365.com/.default"},
		{name: "no scope", srv: ms, edit: func(c *token.Config) { c.Scopes = nil },
			status: 400, code: "invalid_scope", aadsts: 70011, hint: "the scope must be https://outlook.office365.com/.default"},
		{name: "unknown tenant", srv: ms, edit: func(c *token.Config) { c.TokenURL = ms.TenantURL("fabrikam.onmicrosoft.com") },
			status: 400, code: "invalid_request", aadsts: 90002, hint: "tenant not found"},
		{name: "google refresh token revoked", srv: goog, edit: func(c *token.Config) { c.RefreshToken = "1//0gRevokedRefreshToken-zzz" },
			status: 400, code: "invalid_grant", hint: "refresh token has expired or was revoked: create a new one",
			notSecrets: []string{"1//0gRevokedRefreshToken-zzz", rt}},
		{name: "google wrong client secret", srv: goog, edit: func(c *token.Config) { c.ClientSecret = wrongSecret },
			status: 401, code: "invalid_client", hint: "check client_id and client_secret", notSecrets: []string{wrongSecret, rt}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.srv.Config()
			tc.edit(&c)
			src := token.New(c)
			_, err := src.Token(context.Background())
			var e *token.Error
			if !errors.As(err, &e) {
				t.Fatalf("Token() error = %v (%T), want *token.Error", err, err)
			}
			if e.HTTPStatus != tc.status || e.Code != tc.code || e.MicrosoftCode != tc.aadsts || !strings.Contains(e.Hint, tc.hint) {
				t.Errorf("Error = {status %d code %q AADSTS %d hint %q}, want {%d %q %d %q}",
					e.HTTPStatus, e.Code, e.MicrosoftCode, e.Hint, tc.status, tc.code, tc.aadsts, tc.hint)
			}
			msg := err.Error()
			t.Log(msg)
			wantPrefix := "token endpoint " + e.Endpoint + ": " + tc.code + ": "
			if !strings.HasPrefix(msg, wantPrefix) || !strings.HasPrefix(e.Endpoint, "127.0.0.1:") {
				t.Errorf("message %q does not start with %q (endpoint host)", msg, wantPrefix)
			}
			if tc.aadsts != 0 && !strings.Contains(msg, ": AADSTS") {
				t.Errorf("message %q lacks the AADSTS code", msg)
			}
			if !strings.HasSuffix(msg, "; "+e.Hint) {
				t.Errorf("message %q does not end with the hint", msg)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("message %q spans lines", msg)
			}
			for _, s := range append(tc.notSecrets, tokentest.DefaultClientSecret) {
				if strings.Contains(msg, s) {
					t.Errorf("message contains secret %q: %s", s, msg)
				}
			}
			if e.Temporary() {
				t.Error("Temporary() = true for a rejection, want false")
			}
			st := src.Status()
			var se *token.Error
			if st.OK || st.LastError != msg || !errors.As(st.Err, &se) || st.LastFetch.IsZero() {
				t.Errorf("Status = %+v, want not OK with the error", st)
			}
		})
	}
}

func TestEndpointDown(t *testing.T) {
	srv := tokentest.NewServer(t, tokentest.Options{})
	srv.SetOutage(http.StatusInternalServerError)
	_, err := token.New(srv.Config()).Token(context.Background())
	e := mustError(t, err)
	if e.HTTPStatus != 500 || e.Code != "" || !e.Temporary() ||
		!strings.Contains(err.Error(), ": HTTP 500 Internal Server Error; the identity platform is failing") {
		t.Errorf("error = %v (%+v), want a temporary HTTP 500 with a hint", err, e)
	}
	if strings.Contains(err.Error(), "<html>") {
		t.Errorf("error quotes the HTML page: %v", err)
	}
}

func TestEndpointUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = token.New(token.Config{
		TokenURL: "http://" + addr + "/contoso.onmicrosoft.com/oauth2/v2.0/token", ClientID: "id",
		ClientSecret: tokentest.DefaultClientSecret, Scopes: []string{token.MicrosoftScope},
	}).Token(context.Background())
	e := mustError(t, err)
	want := "token endpoint " + addr + ": no answer: "
	if e.HTTPStatus != 0 || !e.Temporary() || !strings.HasPrefix(err.Error(), want) ||
		!strings.HasSuffix(err.Error(), "; check DNS, firewall and proxy settings: Sluice must reach https://"+addr) {
		t.Errorf("error = %v, want it to start with %q and end with the reachability hint", err, want)
	}
	if strings.Contains(err.Error(), tokentest.DefaultClientSecret) {
		t.Errorf("error contains the secret: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    token.Config
		want string
	}{
		{name: "unknown flow", c: token.Config{Flow: "password", TokenURL: token.GoogleTokenURL},
			want: `token endpoint oauth2.googleapis.com: flow "password" is neither client_credentials nor refresh_token; fix the send connector's auth.oauth2 settings`},
		{name: "no token URL", c: token.Config{},
			want: "token endpoint (invalid token URL): no token URL is set; fix the send connector's auth.oauth2 settings"},
		{name: "refresh flow without refresh token", c: token.Config{Flow: token.FlowRefreshToken, TokenURL: token.GoogleTokenURL},
			want: "token endpoint oauth2.googleapis.com: the refresh_token flow needs a refresh token; fix the send connector's auth.oauth2 settings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := token.New(tc.c).Token(context.Background())
			e := mustError(t, err)
			if err.Error() != tc.want || e.Temporary() {
				t.Errorf("error = %q (temporary %v), want %q (not temporary)", err, e.Temporary(), tc.want)
			}
		})
	}
}

func TestMicrosoftTokenURL(t *testing.T) {
	got := token.MicrosoftTokenURL("contoso.onmicrosoft.com")
	if want := "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"; got != want {
		t.Errorf("MicrosoftTokenURL = %q, want %q", got, want)
	}
}

func TestXOAuth2(t *testing.T) {
	got := string(token.XOAuth2("relay@contoso.com", "tok.en"))
	if want := "user=relay@contoso.com\x01auth=Bearer tok.en\x01\x01"; got != want {
		t.Errorf("XOAuth2 = %q, want %q", got, want)
	}
}

func mustToken(t *testing.T, src *token.Source) string {
	t.Helper()
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("Token(): %v", err)
	}
	if tok == "" {
		t.Fatal("Token() returned an empty token")
	}
	return tok
}

func mustError(t *testing.T, err error) *token.Error {
	t.Helper()
	var e *token.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *token.Error", err, err)
	}
	return e
}

// waitIdle waits for a background refresh, if any, to land.
func waitIdle(t *testing.T, src *token.Source) {
	t.Helper()
	waitFor(t, "the token fetch to finish", func() bool { return !token.Fetching(src) })
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
