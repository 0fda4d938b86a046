package delivery

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/reply"
	"github.com/sluice-relay/sluice/internal/smtpclient"
	"github.com/sluice-relay/sluice/internal/token"
)

// auth logs in to the upstream as the connector says. For XOAUTH2 a
// rejected token is dropped and a fresh one tried once: Microsoft revokes
// tokens before their expiry (password change, consent withdrawn).
func (d *Deliverer) auth(ctx context.Context, c *smtpclient.Client, sc *config.SendConnector) error {
	a := sc.Auth
	if a.Mechanism != "XOAUTH2" {
		return c.Auth(ctx, a.Mechanism, smtpclient.Credentials{Username: a.Username, Password: a.Password.Value().Reveal()})
	}
	src := d.tokenSource(sc)
	for try := 0; ; try++ {
		tok, err := src.Token(ctx)
		if err != nil {
			return reply.Reply{Code: 454, Enhanced: [3]int{4, 7, 0},
				Text: fmt.Sprintf("cannot get an OAuth2 token for send connector %q: %v", sc.Name, err)}
		}
		err = c.Auth(ctx, "XOAUTH2", smtpclient.Credentials{Username: a.Username, Token: tok})
		var se *smtpclient.Error
		if err == nil || try > 0 || !errors.As(err, &se) || se.Reply.Code != 535 {
			return err
		}
		src.Invalidate(tok)
	}
}

// tokenSource returns the connector's token source, made anew when its
// OAuth2 settings changed in a reload.
func (d *Deliverer) tokenSource(sc *config.SendConnector) *token.Source {
	d.mu.Lock()
	defer d.mu.Unlock()
	o := sc.Auth.OAuth2
	if ts := d.tokens[sc.Name]; ts != nil && equalOAuth2(ts.cfg, o) {
		return ts.src
	}
	src := token.New(token.Config{
		Flow:         o.Flow,
		TokenURL:     o.TokenURL,
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret.Value().Reveal(),
		RefreshToken: o.RefreshToken.Value().Reveal(),
		Scopes:       o.Scopes,
	})
	d.tokens[sc.Name] = &tokenSource{src: src, cfg: o}
	return src
}

func equalOAuth2(a, b config.OAuth2) bool {
	return a.Flow == b.Flow && a.TokenURL == b.TokenURL && a.ClientID == b.ClientID &&
		a.ClientSecret.Raw == b.ClientSecret.Raw && a.RefreshToken.Raw == b.RefreshToken.Raw && fmt.Sprint(a.Scopes) == fmt.Sprint(b.Scopes)
}

// TokenStatus reports each XOAUTH2 connector's token state, for health.
func (d *Deliverer) TokenStatus() map[string]token.Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]token.Status{}
	for name, ts := range d.tokens {
		out[name] = ts.src.Status()
	}
	return out
}
