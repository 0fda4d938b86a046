package token

// XOAuth2 returns the SASL XOAUTH2 initial client response for user and an
// access token, not base64-encoded (the SMTP client encodes it):
// "user=" user ^A "auth=Bearer " token ^A ^A. Microsoft's and Google's
// XOAUTH2 documentation give this format.
func XOAuth2(user, token string) []byte {
	b := make([]byte, 0, len("user=\x01auth=Bearer \x01\x01")+len(user)+len(token))
	b = append(b, "user="...)
	b = append(b, user...)
	b = append(b, "\x01auth=Bearer "...)
	b = append(b, token...)
	b = append(b, "\x01\x01"...)
	return b
}
