package health

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/internal/token"
)

// tokens reports send connectors whose OAuth2 token cannot be obtained. A
// refusal by the identity platform (wrong or expired client secret, unknown
// app, revoked grant) is an error: an admin has to change something. A
// passing failure (no answer, 5xx, throttling) is a warning while the
// cached token still works, an error once it does not.
func tokens(ts map[string]token.Status, now time.Time) []Finding {
	names := make([]string, 0, len(ts))
	for name := range ts {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []Finding
	for _, name := range names {
		st := ts[name]
		if st.OK || st.LastError == "" {
			continue
		}
		f := Finding{Rule: RuleOAuth2Token, Severity: Error, Subject: "send connector " + name,
			Problem: "cannot get an OAuth2 token: " + st.LastError}
		var te *token.Error
		temporary := errors.As(st.Err, &te) && te.Temporary()
		if te != nil && te.Hint != "" {
			f.Problem = "cannot get an OAuth2 token: " + strings.TrimSuffix(st.LastError, "; "+te.Hint)
		}
		cached := st.ExpiresAt.After(now)
		switch {
		case cached && temporary:
			f.Severity = Warning
			f.Problem += fmt.Sprintf("; Sluice still uses the token it has, valid until %s UTC", st.ExpiresAt.UTC().Format("15:04"))
		case cached:
			f.Problem += fmt.Sprintf("; the token Sluice has runs out at %s UTC, then mail through this connector stops", st.ExpiresAt.UTC().Format("15:04"))
		}
		f.Fix = tokenFix(st.LastError, te)
		out = append(out, f)
	}
	return out
}

// tokenFix says what to change for the errors admins meet; the AADSTS
// numbers are from Microsoft's "Microsoft Entra authentication and
// authorization error codes" reference.
func tokenFix(lastErr string, te *token.Error) string {
	l := strings.ToLower(lastErr)
	ms, code := 0, ""
	if te != nil {
		ms, code = te.MicrosoftCode, te.Code
	}
	if m := aadsts.FindStringSubmatch(lastErr); ms == 0 && m != nil {
		ms, _ = strconv.Atoi(m[1])
	}
	has := func(aadsts int, codes ...string) bool {
		if aadsts != 0 && ms == aadsts {
			return true
		}
		for _, c := range codes {
			if code == c || strings.Contains(l, c) {
				return true
			}
		}
		return false
	}
	const newSecret = "create a new client secret for the app registration in Entra ID (Certificates & secrets), encrypt its VALUE (not its ID) with sluice secret encrypt, put it in the send connector's auth.oauth2.client_secret and reload Sluice"
	switch {
	case has(7000222):
		return "the client secret has expired: " + newSecret
	case has(7000215, "invalid_client"):
		return "the client secret is wrong: " + newSecret
	case has(700016, "unauthorized_client"):
		return "no app with this client_id exists in the tenant: check auth.oauth2.client_id and tenant against the app registration, and that an admin of the tenant has consented to it"
	case has(90002) || has(900023):
		return "the tenant is not known: set auth.oauth2.tenant to the Microsoft 365 organisation's directory (tenant) id or a verified domain"
	case has(70011, "invalid_scope"):
		return "the scope is wrong: for Microsoft 365 use " + token.MicrosoftScope + ", for Google " + token.GoogleScope
	case has(0, "invalid_grant"):
		return "the refresh token was revoked or has expired: sign in again to get a new one and put it, encrypted with sluice secret encrypt, in auth.oauth2.refresh_token"
	case te != nil && te.Temporary():
		return "the identity platform does not answer or is failing; Sluice tries again by itself. If it persists, check DNS, firewall and proxy settings for https://" + te.Endpoint
	case te != nil && te.Hint != "":
		return te.Hint
	}
	return "check the send connector's auth.oauth2 settings (tenant, client_id, client_secret) against the app registration"
}

var aadsts = regexp.MustCompile(`\bAADSTS(\d+)\b`)
