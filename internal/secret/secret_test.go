package secret

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	k, err := NewKey("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"", "s3cret", "päss wörd with ünicode", strings.Repeat("x", 5000)} {
		enc := k.Encrypt(plain)
		if !strings.HasPrefix(enc, "enc:v1:"+k.ID()+":") || strings.Contains(enc, plain) && plain != "" {
			t.Fatalf("Encrypt(%q) = %q", plain, enc)
		}
		got, err := k.Decrypt(enc)
		if err != nil || got != plain {
			t.Fatalf("Decrypt = %q, %v", got, err)
		}
	}
	if a, b := k.Encrypt("x"), k.Encrypt("x"); a == b {
		t.Error("two encryptions of the same secret are equal (nonce reuse)")
	}
}

func TestSameKeyOnEveryNode(t *testing.T) {
	a, _ := NewKey("correct horse battery staple\n") // a key file with a newline
	b, _ := NewKey("correct horse battery staple")
	if a.ID() != b.ID() {
		t.Fatalf("the same passphrase gives key ids %s and %s", a.ID(), b.ID())
	}
	if got, err := b.Decrypt(a.Encrypt("s3cret")); err != nil || got != "s3cret" {
		t.Fatalf("node b cannot read node a's secret: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	a, _ := NewKey("correct horse battery staple")
	b, _ := NewKey("another passphrase entirely")
	_, err := b.Decrypt(a.Encrypt("s3cret"))
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), a.ID()) || !strings.Contains(err.Error(), b.ID()) {
		t.Fatalf("decrypting with another key: %v", err)
	}
}

func TestDamaged(t *testing.T) {
	k, _ := NewKey("correct horse battery staple")
	enc := k.Encrypt("s3cret")
	for _, bad := range []string{"s3cret", "enc:v1:", "enc:v1:" + k.ID() + ":!!!", "enc:v1:" + k.ID() + ":AAAA",
		enc[:len(enc)-2] + "AA", strings.Replace(enc, k.ID(), "zzzzzzzz", 1)} {
		if _, err := k.Decrypt(bad); err == nil {
			t.Errorf("Decrypt(%q) succeeded", bad)
		}
	}
}

func TestShortKey(t *testing.T) {
	_, err := NewKey("short")
	if err == nil {
		t.Fatal("a 5-character key was accepted")
	}
	// The advice works on every OS Sluice runs on, Windows included.
	if !strings.Contains(err.Error(), "sluice secret new-key") {
		t.Errorf("error %q does not say how to make a key", err)
	}
}

func TestLoadKey(t *testing.T) {
	t.Setenv(EnvKey, "")
	if k, err := LoadKey(""); k != nil || err != nil {
		t.Fatalf("no key configured: %v, %v", k, err)
	}
	t.Setenv(EnvKey, "correct horse battery staple")
	fromEnv, err := LoadKey("")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "key")
	os.WriteFile(f, []byte("correct horse battery staple\n"), 0o600)
	fromFile, err := LoadKey(f)
	if err != nil || fromFile.ID() != fromEnv.ID() {
		t.Fatalf("key file and environment differ: %v", err)
	}
	if _, err := LoadKey(f + ".missing"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestValueNeverPrints(t *testing.T) {
	v := New("hunter2")
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "password", v)
	s := fmt.Sprintf("%v %s %+v %#v", v, v, struct{ P Value }{v}, v) + b.String()
	if strings.Contains(s, "hunter2") {
		t.Fatalf("secret printed: %s", s)
	}
	if v.Reveal() != "hunter2" {
		t.Fatal("Reveal")
	}
}

func FuzzDecrypt(f *testing.F) {
	k, _ := NewKey("correct horse battery staple")
	f.Add(k.Encrypt("s3cret"))
	f.Add("enc:v1:00000000:")
	f.Fuzz(func(t *testing.T, s string) {
		k.Decrypt(s) // must not panic
	})
}
