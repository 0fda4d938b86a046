package tokentest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/token"
)

const rt = "1//0gRefreshTokenForTests-abcdef"

// post sends form to u and decodes the JSON answer.
func post(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, resp)
}

func decode(t *testing.T, resp *http.Response) (int, map[string]any) {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("HTTP %d, body %q is not JSON: %v", resp.StatusCode, body, err)
	}
	return resp.StatusCode, m
}

func keys(m map[string]any) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

func msForm() url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID},
		"client_secret": {DefaultClientSecret}, "scope": {token.MicrosoftScope}}
}

func TestMicrosoftSuccess(t *testing.T) {
	s := NewServer(t, Options{})
	status, m := post(t, s.URL(), msForm())
	if want := []string{"access_token", "expires_in", "ext_expires_in", "token_type"}; status != 200 || !slices.Equal(keys(m), want) {
		t.Fatalf("HTTP %d %v, want 200 with exactly %v", status, m, want)
	}
	if m["token_type"] != "Bearer" || m["expires_in"] != 3600.0 || m["ext_expires_in"] != 3600.0 {
		t.Errorf("answer %v, want Bearer, 3600s", m)
	}
	tok := m["access_token"].(string)
	if !s.Valid(tok) || s.Valid(tok+"x") || s.Requests() != 1 {
		t.Errorf("Valid(issued) = %v, Valid(other) = %v, Requests = %d", s.Valid(tok), s.Valid(tok+"x"), s.Requests())
	}
	s.Revoke()
	if s.Valid(tok) {
		t.Error("Valid after Revoke = true")
	}
	s.SetExpiresIn(90 * time.Second)
	if _, m := post(t, s.URL(), msForm()); m["expires_in"] != 90.0 {
		t.Errorf("expires_in after SetExpiresIn(90s) = %v", m["expires_in"])
	}
}

// RFC 6749 §2.3.1: a server must also take the credentials as HTTP Basic.
func TestMicrosoftBasicAuth(t *testing.T) {
	s := NewServer(t, Options{})
	f := msForm()
	f.Del("client_id")
	f.Del("client_secret")
	req, _ := http.NewRequest("POST", s.URL(), strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(DefaultClientID), url.QueryEscape(DefaultClientSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if status, m := decode(t, resp); status != 200 || !s.Valid(m["access_token"].(string)) {
		t.Errorf("HTTP %d %v, want a token", status, m)
	}
}

func TestMicrosoftErrors(t *testing.T) {
	s := NewServer(t, Options{})
	for _, tc := range []struct {
		name   string
		url    string
		edit   func(url.Values)
		status int
		code   string
		aadsts float64
	}{
		{"wrong secret", "", func(f url.Values) { f.Set("client_secret", "nope-nope") }, 401, "invalid_client", 7000215},
		{"no secret", "", func(f url.Values) { f.Del("client_secret") }, 401, "invalid_client", 7000218},
		{"unknown client id", "", func(f url.Values) { f.Set("client_id", "other") }, 400, "unauthorized_client", 700016},
		{"no client id", "", func(f url.Values) { f.Del("client_id") }, 400, "invalid_request", 900144},
		{"wrong scope", "", func(f url.Values) { f.Set("scope", "https://graph.microsoft.com/.default") }, 400, "invalid_scope", 70011},
		{"no scope", "", func(f url.Values) { f.Del("scope") }, 400, "invalid_scope", 70011},
		{"unknown tenant", s.TenantURL("fabrikam.example"), func(url.Values) {}, 400, "invalid_request", 90002},
		{"no grant type", "", func(f url.Values) { f.Del("grant_type") }, 400, "invalid_request", 900144},
		{"password grant", "", func(f url.Values) { f.Set("grant_type", "password") }, 400, "unsupported_grant_type", 70003},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := msForm()
			tc.edit(f)
			u := tc.url
			if u == "" {
				u = s.URL()
			}
			status, m := post(t, u, f)
			want := []string{"correlation_id", "error", "error_codes", "error_description", "error_uri", "timestamp", "trace_id"}
			if !slices.Equal(keys(m), want) {
				t.Errorf("fields %v, want %v", keys(m), want)
			}
			codes, _ := m["error_codes"].([]any)
			desc, _ := m["error_description"].(string)
			if status != tc.status || m["error"] != tc.code || len(codes) != 1 || codes[0] != tc.aadsts ||
				!strings.HasPrefix(desc, "AADSTS") || !strings.Contains(desc, "\r\nTrace ID: ") {
				t.Errorf("HTTP %d %v, want %d %s AADSTS%.0f", status, m, tc.status, tc.code, tc.aadsts)
			}
		})
	}
}

func TestMethodAndBody(t *testing.T) {
	s := NewServer(t, Options{RefreshToken: rt})
	for _, u := range []string{s.TenantURL(DefaultTenant), s.RefreshURL()} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := decode(t, resp); status != 405 || resp.Header.Get("Allow") == "" {
			t.Errorf("GET %s: HTTP %d, Allow %q; want 405 with Allow", u, status, resp.Header.Get("Allow"))
		}
	}
	// JSON is not a form: the endpoint sees no grant_type.
	resp, err := http.Post(s.TenantURL(DefaultTenant), "application/json", strings.NewReader(`{"grant_type":"client_credentials"}`))
	if err != nil {
		t.Fatal(err)
	}
	if status, m := decode(t, resp); status != 400 || !strings.Contains(m["error_description"].(string), "'grant_type'") {
		t.Errorf("JSON body: HTTP %d %v, want 400 asking for grant_type", status, m)
	}
	if n := s.Requests(); n != 3 {
		t.Errorf("Requests = %d, want 3", n)
	}
}

func googleForm() url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "client_id": {DefaultClientID},
		"client_secret": {DefaultClientSecret}, "refresh_token": {rt}}
}

func TestGoogle(t *testing.T) {
	s := NewServer(t, Options{RefreshToken: rt})
	if s.URL() != s.RefreshURL() {
		t.Fatalf("URL() = %s, want the refresh endpoint %s", s.URL(), s.RefreshURL())
	}
	status, m := post(t, s.URL(), googleForm())
	if want := []string{"access_token", "expires_in", "scope", "token_type"}; status != 200 || !slices.Equal(keys(m), want) ||
		m["scope"] != token.GoogleScope || !s.Valid(m["access_token"].(string)) {
		t.Fatalf("HTTP %d %v, want 200 with exactly %v and a valid token", status, m, want)
	}
	for _, tc := range []struct {
		name   string
		edit   func(url.Values)
		status int
		code   string
		desc   string
	}{
		{"revoked refresh token", func(f url.Values) { f.Set("refresh_token", "1//other") }, 400, "invalid_grant", "Token has been expired or revoked."},
		{"no refresh token", func(f url.Values) { f.Del("refresh_token") }, 400, "invalid_request", "Missing required parameter: refresh_token"},
		{"wrong secret", func(f url.Values) { f.Set("client_secret", "nope") }, 401, "invalid_client", "Unauthorized"},
		{"unknown client", func(f url.Values) { f.Set("client_id", "other") }, 401, "invalid_client", "The OAuth client was not found."},
		{"client credentials grant", func(f url.Values) { f.Set("grant_type", "client_credentials") }, 400, "unsupported_grant_type", "Invalid grant_type: client_credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := googleForm()
			tc.edit(f)
			status, m := post(t, s.URL(), f)
			if status != tc.status || m["error"] != tc.code || m["error_description"] != tc.desc || len(m) != 2 {
				t.Errorf("HTTP %d %v, want %d {error: %s, error_description: %s}", status, m, tc.status, tc.code, tc.desc)
			}
		})
	}
	s.SetRefreshToken("1//rotated")
	if status, m := post(t, s.URL(), googleForm()); status != 400 || m["error"] != "invalid_grant" {
		t.Errorf("old refresh token after SetRefreshToken: HTTP %d %v, want invalid_grant", status, m)
	}
}

func TestSetSecretAndOutage(t *testing.T) {
	s := NewServer(t, Options{})
	s.SetSecret("rotated-secret-value")
	if status, m := post(t, s.URL(), msForm()); status != 401 || m["error"] != "invalid_client" {
		t.Errorf("old secret after SetSecret: HTTP %d %v, want 401 invalid_client", status, m)
	}
	if c := s.Config(); c.ClientSecret != "rotated-secret-value" {
		t.Errorf("Config().ClientSecret = %q, want the rotated one", c.ClientSecret)
	}
	s.SetOutage(503)
	resp, err := http.PostForm(s.URL(), msForm())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("during outage: HTTP %d %s, want 503 HTML", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
