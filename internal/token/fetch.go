package token

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// retrieve makes one request to the token endpoint with x/oauth2.
//
// Credentials go in the form body (client_secret_post), as Microsoft's and
// Google's documentation show. x/oauth2's auto-detection would first try
// HTTP Basic and, on any error, repeat the request: two requests per
// failure, and a confusing second error.
func (s *Source) retrieve(ctx context.Context, refresh string) (*oauth2.Token, error) {
	if s.cfg.TokenURL == "" {
		return nil, errConfig("no token URL is set")
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	switch s.cfg.Flow {
	case "", FlowClientCredentials:
		cc := clientcredentials.Config{
			ClientID:     s.cfg.ClientID,
			ClientSecret: s.cfg.ClientSecret,
			TokenURL:     s.cfg.TokenURL,
			Scopes:       s.cfg.Scopes,
			AuthStyle:    oauth2.AuthStyleInParams,
		}
		return cc.Token(ctx)
	case FlowRefreshToken:
		if refresh == "" {
			return nil, errConfig("the refresh_token flow needs a refresh token")
		}
		oc := oauth2.Config{
			ClientID:     s.cfg.ClientID,
			ClientSecret: s.cfg.ClientSecret,
			Endpoint:     oauth2.Endpoint{TokenURL: s.cfg.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
			Scopes:       s.cfg.Scopes,
		}
		// A token without an access token is invalid, so this refreshes.
		return oc.TokenSource(ctx, &oauth2.Token{RefreshToken: refresh}).Token()
	default:
		return nil, errConfig(fmt.Sprintf("flow %q is neither %s nor %s", s.cfg.Flow, FlowClientCredentials, FlowRefreshToken))
	}
}

// configError is a Config that cannot work, found before any request.
type configError string

func errConfig(s string) error      { return configError(s) }
func (e configError) Error() string { return string(e) }

// endpointHost is the host (and port, if any) of the token URL, the name
// errors give the endpoint.
func endpointHost(tokenURL string) string {
	u, err := url.Parse(tokenURL)
	if err != nil || u.Host == "" {
		return "(invalid token URL)"
	}
	return u.Host
}

// newError turns whatever retrieve returned into an *Error an admin can
// act on, with the secrets taken out of every text that reaches it.
func (s *Source) newError(err error) *Error {
	e := &Error{Endpoint: s.host, Err: err}
	var re *oauth2.RetrieveError
	var ue *url.Error
	var ce configError
	switch {
	case errors.As(err, &ce):
		e.Description = string(ce)
	case errors.As(err, &re):
		if re.Response != nil {
			e.HTTPStatus = re.Response.StatusCode
		}
		e.Code = re.ErrorCode
		e.Description = oneLine(re.ErrorDescription)
		e.MicrosoftCode = microsoftCode(re.Body, re.ErrorDescription)
		if e.Code == "" && e.HTTPStatus != 0 {
			e.Description = bodySnippet(re.Response.Header.Get("Content-Type"), re.Body)
		}
	case errors.As(err, &ue):
		// url.Error repeats the method and URL; the host is already said.
		e.Description = oneLine(ue.Err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		e.Description = fmt.Sprintf("no answer within %s", fetchTimeout)
	default:
		e.Description = oneLine(err.Error())
	}
	e.Description = s.redact(e.Description)
	e.Hint = hint(e)
	return e
}
