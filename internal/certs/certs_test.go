package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
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
	for _, tc := range []struct {
		name, cert, key, want string
	}{
		{"the CSR instead of the certificate", write("csr.pem", &pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), good.KeyFile,
			"holds a certificate signing request, not a certificate"},
		{"a PKCS #8 key with a passphrase", good.CertFile, write("enc.key", &pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}),
			"is encrypted with a passphrase"},
		{"an OpenSSL-encrypted RSA key", good.CertFile, write("legacy.key", &pem.Block{Type: "RSA PRIVATE KEY",
			Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: der}),
			"is encrypted with a passphrase"},
		{"a certificate where the key belongs", good.CertFile, good.CertFile, "has no PEM private key block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.cert, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := Load(good.CertFile, good.KeyFile); err != nil {
		t.Errorf("Load of a good pair: %v", err)
	}
}
