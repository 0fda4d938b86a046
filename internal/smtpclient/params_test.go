package smtpclient

import (
	"testing"

	"github.com/sluice-relay/sluice/internal/mail"
)

func TestXtext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bob@example.com", "bob@example.com"},
		{"a+b@example.com", "a+2Bb@example.com"},
		{"a=b c", "a+3Db+20c"},
		{"already+2Bencoded", "already+2Bencoded"},
		{"lower+2bhex", "lower+2Bhex"},
		{"plus at end+", "plus+20at+20end+2B"},
		{"plus+4", "plus+2B4"},
		{"jörg", "j+C3+B6rg"},
		{"\x01~!", "+01~!"},
	}
	for _, tt := range tests {
		if got := xtext(tt.in); got != tt.want {
			t.Errorf("xtext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNotify(t *testing.T) {
	tests := []struct {
		n    mail.Notify
		want string
	}{
		{mail.NotifyDefault, ""},
		{mail.NotifyNever, "NEVER"},
		{mail.NotifySuccess, "SUCCESS"},
		{mail.NotifyDelay | mail.NotifyFailure, "FAILURE,DELAY"},
		{mail.NotifySuccess | mail.NotifyFailure | mail.NotifyDelay, "SUCCESS,FAILURE,DELAY"},
	}
	for _, tt := range tests {
		if got := notify(tt.n); got != tt.want {
			t.Errorf("notify(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
