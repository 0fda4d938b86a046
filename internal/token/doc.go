// Package token owns the OAuth2 access tokens a send connector needs for
// AUTH XOAUTH2: Microsoft 365's client-credentials flow (an app
// registration's client id and secret) and Google's refresh-token flow.
//
// A Source serves one connector. It caches the access token, fetches a new
// one when there is none or the cached one has expired, and lets
// concurrent callers share a single request to the token endpoint. Within
// RefreshBefore of expiry the cached token is still handed out while its
// replacement is fetched in the background, so no delivery waits for the
// endpoint while it holds a token the upstream accepts. When an early refresh fails but the cached token has not yet
// expired, the cached token is still served and the failure is recorded in
// Status, so a short outage of the identity platform costs no mail. After
// the upstream answers 535 to XOAUTH2 (Microsoft revokes tokens before
// their expiry), delivery calls Invalidate and the next Token fetches anew.
//
// Every failure is an *Error naming the endpoint host, the OAuth2 error
// code and description (Microsoft's AADSTS text) and, for the codes admins
// meet, a hint saying what to change. Neither errors nor Status ever carry
// the client secret, the refresh token or an access token. The package
// does not log; health and the admin API read Status.
//
// The HTTP exchange itself is golang.org/x/oauth2 (clientcredentials for
// Microsoft, oauth2.Config's refresh for Google); caching, early refresh,
// invalidation and the error wording are this package's. What to do with
// the token — the SASL exchange — is smtpclient's; XOAuth2 only builds the
// initial response. Package tokentest is an in-process token endpoint that
// answers like Microsoft's and Google's, for tests.
package token
