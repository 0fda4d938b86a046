// Package certtest makes certificates for tests, in the style of
// net/http/httptest: a throwaway CA and leaf certificates signed by it,
// written as PEM files into the test's temporary directory.
package certtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Cert is a leaf certificate and its key, as files and in memory.
type Cert struct {
	CertFile string // PEM chain: leaf then CA
	KeyFile  string // PEM private key
	CAFile   string // PEM CA certificate that signed it
	Pool     *x509.CertPool
	Pair     tls.Certificate
	Leaf     *x509.Certificate
}

// Options shape a certificate; the zero value is a valid one-year
// certificate for the given names.
type Options struct {
	NotAfter time.Time // default: a year from now
	RSA      bool      // RSA 2048 instead of ECDSA P-256, for TLS 1.0 clients with RSA-only suites
}

// New makes a CA and a leaf for names (DNS names or IP addresses) in
// t.TempDir().
func New(t testing.TB, names ...string) *Cert { return NewWith(t, Options{}, names...) }

// NewWith is New with options.
func NewWith(t testing.TB, o Options, names ...string) *Cert {
	t.Helper()
	dir := t.TempDir()
	caKey, caDER := mustCA(t)
	caCert, _ := x509.ParseCertificate(caDER)
	var key any
	var pub any
	if o.RSA {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key, pub = k, &k.PublicKey
	} else {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		key, pub = k, &k.PublicKey
	}
	notAfter := o.NotAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: first(names), Organization: []string{"Sluice test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := &Cert{
		CertFile: filepath.Join(dir, "cert.pem"),
		KeyFile:  filepath.Join(dir, "key.pem"),
		CAFile:   filepath.Join(dir, "ca.pem"),
		Pool:     x509.NewCertPool(),
	}
	chain := append(pemBlock("CERTIFICATE", der), pemBlock("CERTIFICATE", caDER)...)
	write(t, c.CertFile, chain)
	write(t, c.KeyFile, pemBlock("PRIVATE KEY", keyDER))
	write(t, c.CAFile, pemBlock("CERTIFICATE", caDER))
	c.Pool.AddCert(caCert)
	c.Leaf, _ = x509.ParseCertificate(der)
	c.Pair, err = tls.X509KeyPair(chain, pemBlock("PRIVATE KEY", keyDER))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ClientConfig returns a TLS client configuration that trusts the CA.
func (c *Cert) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: c.Pool, ServerName: serverName}
}

func mustCA(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Sluice test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func write(t testing.TB, path string, data []byte) {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func first(names []string) string {
	if len(names) == 0 {
		return "localhost"
	}
	return names[0]
}
