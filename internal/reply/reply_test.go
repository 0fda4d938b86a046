package reply

import "testing"

func TestRendering(t *testing.T) {
	cases := []struct {
		r                   Reply
		errText, enh, lines string
	}{
		{Reply{Code: 250, Enhanced: [3]int{2, 6, 0}, Text: "Queued as 06h0s7sbfk004of0"},
			"250 2.6.0 Queued as 06h0s7sbfk004of0", "2.6.0", "250 2.6.0 Queued as 06h0s7sbfk004of0\r\n"},
		{Reply{Code: 354, Text: "Start mail input; end with <CRLF>.<CRLF>"},
			"354 Start mail input; end with <CRLF>.<CRLF>", "", "354 Start mail input; end with <CRLF>.<CRLF>\r\n"},
		{Reply{Code: 550, Enhanced: [3]int{5, 7, 54}, Text: "SMTP; Unable to relay recipient in non-accepted domain"},
			"550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain", "5.7.54", "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain\r\n"},
		{Reply{Code: 451, Enhanced: [3]int{4, 4, 1}, Text: "first\r\nsecond\nthird"},
			"451 4.4.1 first\r\nsecond\nthird", "4.4.1", "451-4.4.1 first\r\n451-4.4.1 second\r\n451 4.4.1 third\r\n"},
		{Reply{Code: 221, Enhanced: [3]int{2, 0, 0}, Text: ""}, "221 2.0.0 ", "2.0.0", "221 2.0.0 \r\n"},
		{Reply{Code: 220, Text: "relay.contoso.com ESMTP\r"}, "220 relay.contoso.com ESMTP\r", "", "220 relay.contoso.com ESMTP\r\n"},
	}
	for _, c := range cases {
		if got := c.r.Error(); got != c.errText {
			t.Errorf("Error() = %q, want %q", got, c.errText)
		}
		if got := c.r.EnhancedString(); got != c.enh {
			t.Errorf("EnhancedString() = %q, want %q", got, c.enh)
		}
		if got := c.r.Lines(); got != c.lines {
			t.Errorf("Lines() = %q, want %q", got, c.lines)
		}
	}
}

func BenchmarkLines(b *testing.B) {
	r := Reply{Code: 250, Enhanced: [3]int{2, 6, 0}, Text: "Queued as 06h0s7sbfk004of0"}
	for b.Loop() {
		_ = r.Lines()
		_ = r.Error()
	}
}
