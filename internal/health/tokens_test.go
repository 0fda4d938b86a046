package health_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/health"
	"github.com/sluice-relay/sluice/internal/token"
	"github.com/sluice-relay/sluice/internal/tokentest"
)

func TestOAuth2Token(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		status func(t *testing.T) token.Status
		want   string
		fix    string
	}{
		{name: "token obtained", want: "", status: func(t *testing.T) token.Status {
			src := token.New(tokentest.NewServer(t, tokentest.Options{}).Config())
			if _, err := src.Token(ctx); err != nil {
				t.Fatal(err)
			}
			return src.Status()
		}},
		{name: "no fetch yet", want: "", status: func(t *testing.T) token.Status { return token.Status{} }},
		{name: "wrong client secret (AADSTS7000215)", want: "error: invalid_client: AADSTS7000215: Invalid client secret provided.", fix: "the client secret is wrong: create a new client secret for the app registration in Entra ID",
			status: func(t *testing.T) token.Status {
				srv := tokentest.NewServer(t, tokentest.Options{})
				cfg := srv.Config()
				cfg.ClientSecret = "the secret's ID, not its value"
				src := token.New(cfg)
				src.Token(ctx)
				return src.Status()
			}},
		{name: "wrong client id", want: "error: unauthorized_client: AADSTS700016", fix: "check auth.oauth2.client_id and tenant",
			status: func(t *testing.T) token.Status {
				srv := tokentest.NewServer(t, tokentest.Options{})
				cfg := srv.Config()
				cfg.ClientID = "00000000-0000-0000-0000-000000000000"
				src := token.New(cfg)
				src.Token(ctx)
				return src.Status()
			}},
		{name: "expired client secret, text only", want: "error: AADSTS7000222", fix: "the client secret has expired",
			status: func(t *testing.T) token.Status {
				return token.Status{LastError: "token endpoint login.microsoftonline.com: invalid_client: AADSTS7000222: The provided client secret keys for app '7a1b' are expired. (HTTP 401)"}
			}},
		{name: "outage, cached token still valid", want: "warning: HTTP 503", fix: "tries again by itself",
			status: func(t *testing.T) token.Status {
				srv := tokentest.NewServer(t, tokentest.Options{})
				cfg := srv.Config()
				cfg.RefreshBefore = 2 * time.Hour
				src := token.New(cfg)
				if _, err := src.Token(ctx); err != nil {
					t.Fatal(err)
				}
				srv.SetOutage(http.StatusServiceUnavailable)
				if _, err := src.Token(ctx); err != nil {
					t.Fatalf("the cached token should still be served: %v", err)
				}
				// The refresh runs in the background; its failure lands in Status.
				for deadline := time.Now().Add(5 * time.Second); src.Status().OK && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
				return src.Status()
			}},
		{name: "outage, no token", want: "error: HTTP 503",
			status: func(t *testing.T) token.Status {
				srv := tokentest.NewServer(t, tokentest.Options{})
				srv.SetOutage(http.StatusServiceUnavailable)
				src := token.New(srv.Config())
				src.Token(ctx)
				return src.Status()
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := c.status(t)
			fs := check(t, health.Evaluate(health.Input{Config: load(t, minimal), Tokens: map[string]token.Status{"Office 365": st}}), health.RuleOAuth2Token, c.want)
			if c.want == "" {
				return
			}
			if fs[0].Subject != "send connector Office 365" {
				t.Errorf("subject %q", fs[0].Subject)
			}
			if c.fix != "" && !strings.Contains(fs[0].Fix, c.fix) {
				t.Errorf("fix lacks %q: %q", c.fix, fs[0].Fix)
			}
		})
	}
}

func TestOAuth2TokenOrder(t *testing.T) {
	bad := token.Status{LastError: "token endpoint login.microsoftonline.com: invalid_client: AADSTS7000215: Invalid client secret provided. (HTTP 401)"}
	fs := health.Evaluate(health.Input{Config: load(t, minimal), Tokens: map[string]token.Status{"C": bad, "A": bad, "B": {OK: true}, "D": bad}})
	var got []string
	for _, f := range fs {
		got = append(got, f.Subject)
	}
	if strings.Join(got, "|") != "send connector A|send connector C|send connector D" {
		t.Errorf("want the failing connectors by name, got %q", got)
	}
}
