package mail

// ASCII reports whether b has no octet outside ASCII: text that needs no
// SMTPUTF8, no RFC 2047 or RFC 6533 form.
func ASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
