package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/certtest"
)

// The files admins get wrong most, each with an error that says what to
// give instead of TLS's own words.
func TestLoadSaysWhatIsWrong(t *testing.T) {
	good := certtest.New(t, "relay.contoso.com")
	dir := t.TempDir()
	write := func(name string, blocks ...*pem.Block) string {
		var b strings.Builder
		for _, bl := range blocks {
			b.Write(pem.EncodeToMemory(bl))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "relay.contoso.com"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	other := certtest.New(t, "other.contoso.com")
	for _, tc := range []struct {
		name, cert, key, want string
		keyFault              bool // errors.Is(err, ErrKey): config reports it under the key's setting
	}{
		{"the CSR instead of the certificate", write("csr.pem", &pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), good.KeyFile,
			"holds a certificate signing request, not a certificate", false},
		{"no certificate file", filepath.Join(dir, "missing.pem"), good.KeyFile, "certificate file " + filepath.Join(dir, "missing.pem") + " does not exist", false},
		{"a PKCS #8 key with a passphrase", good.CertFile, write("enc.key", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}),
			"is encrypted with a passphrase", true},
		{"an OpenSSL-encrypted RSA key", good.CertFile, write("legacy.key", &pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: der}),
			"is encrypted with a passphrase", true},
		{"a certificate where the key belongs", good.CertFile, good.CertFile, "has no PEM private key block", true},
		{"no key file", good.CertFile, filepath.Join(dir, "missing.key"), "key file " + filepath.Join(dir, "missing.key") + " does not exist; check the path", true},
		{"a directory where the key belongs", good.CertFile, dir, "key file " + dir + " is a directory; give the path of the PEM file itself", true},
		{"another certificate's key", good.CertFile, other.KeyFile, "does not belong to certificate", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error saying %q", err, tc.want)
			}
			if errors.Is(err, ErrKey) != tc.keyFault {
				t.Errorf("errors.Is(%v, ErrKey) = %v, want %v", err, !tc.keyFault, tc.keyFault)
			}
			// CheckKey finds the key file's own faults without the
			// certificate, with Load's words, and nothing else.
			kerr := CheckKey(tc.key)
			switch {
			case tc.keyFault && (kerr == nil || kerr.Error() != err.Error() || !errors.Is(kerr, ErrKey)):
				t.Errorf("CheckKey = %v, want Load's %v", kerr, err)
			case !tc.keyFault && kerr != nil:
				t.Errorf("CheckKey = %v, want nil: the key file is not at fault", kerr)
			}
		})
	}
	if _, err := Load(good.CertFile, good.KeyFile); err != nil {
		t.Errorf("Load of a good pair: %v", err)
	}
}
