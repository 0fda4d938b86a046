package policy

import (
	"strings"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
)

// maySendAs reports whether u may use from: an exact entry of its send-as
// list (case-insensitive) or a *@domain pattern matching from's domain.
func maySendAs(u *config.User, from mail.Address) bool {
	if from.IsNull() {
		return false
	}
	for _, p := range u.SendAs {
		if d, ok := strings.CutPrefix(p, "*@"); ok {
			if strings.EqualFold(d, from.Domain()) {
				return true
			}
		} else if strings.EqualFold(p, string(from)) {
			return true
		}
	}
	return false
}
