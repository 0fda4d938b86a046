package health_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/certtest"
	"github.com/sluice-relay/sluice/internal/health"
)

// issue makes a certificate for tmpl signed by parent (self-signed when
// parent is nil) and returns it with its key.
func issue(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func caTemplate(name string, notAfter time.Time) *x509.Certificate {
	return &x509.Certificate{Subject: pkix.Name{CommonName: name}, NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
}

// chainFiles writes a CA's usual delivery: the leaf for names, then the
// intermediate that issued it, with the leaf's key; the intermediate
// runs out at interNotAfter.
func chainFiles(t *testing.T, interNotAfter time.Time, names ...string) *certtest.Cert {
	t.Helper()
	root, rootKey := issue(t, caTemplate("Test Root", time.Now().Add(10*365*24*time.Hour)), nil, nil)
	inter, interKey := issue(t, caTemplate("Test Intermediate", interNotAfter), root, rootKey)
	leaf, leafKey := issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotAfter: time.Now().Add(365 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, inter, interKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &certtest.Cert{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem")}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw})...)
	if err := os.WriteFile(c.CertFile, chain, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// Clients verify the whole chain Sluice sends, so an intermediate that
// has expired, or is about to, stops them as surely as the leaf would.
func TestIntermediateExpiry(t *testing.T) {
	now := time.Now()
	const day = 24 * time.Hour
	c := chainFiles(t, now.Add(10*day), "relay.contoso.com")
	cfg := load(t, receiveTLS(c, "relay.contoso.com"))
	check(t, health.Evaluate(health.Input{Config: cfg, Now: now}), health.RuleCertExpiring, "warning: Test Intermediate")
	check(t, health.Evaluate(health.Input{Config: cfg, Now: now.Add(20 * day)}), health.RuleCertExpired, "error: Test Intermediate")

	fine := load(t, receiveTLS(chainFiles(t, now.Add(5*365*day), "relay.contoso.com"), "relay.contoso.com"))
	fs := health.Evaluate(health.Input{Config: fine, Now: now})
	check(t, fs, health.RuleCertExpiring, "")
	check(t, fs, health.RuleCertMissing, "")
}

// A chain file whose second certificate did not issue the first (the
// leaf renewed under a new intermediate, the old one left in the file)
// cannot be verified by any client.
func TestChainMismatch(t *testing.T) {
	leaf := certtest.New(t, "relay.contoso.com")  // leaf, then the CA that issued it
	other := certtest.New(t, "relay.contoso.com") // another CA
	b, err := os.ReadFile(leaf.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	ca, err := os.ReadFile(other.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leaf.CertFile, append(pem.EncodeToMemory(block), ca...), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := load(t, receiveTLS(leaf, "relay.contoso.com"))
	fs := health.Evaluate(health.Input{Config: cfg})
	check(t, fs, health.RuleCertMissing, "error: did not issue")
	check(t, health.Evaluate(health.Input{Config: load(t, receiveTLS(certtest.New(t, "relay.contoso.com"), "relay.contoso.com"))}), health.RuleCertMissing, "")
}
