// Package certs loads TLS certificates and keys from files and describes
// them: whether the key matches, which names they cover, when they expire.
// config checks them at load, smtpd serves them, health watches them, so a
// certificate problem is found before mail gets stuck behind it (seed 003).
package certs

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"
)

// Info describes a certificate for people: what `sluice test connect` and
// health findings print.
type Info struct {
	Subject     string
	Issuer      string
	DNSNames    []string
	IPs         []string
	NotBefore   time.Time
	NotAfter    time.Time
	SHA256      string // fingerprint of the DER, hex
	SelfSigned  bool
	ChainLength int
}

// Describe summarises the leaf of a chain.
func Describe(chain []*x509.Certificate) Info {
	if len(chain) == 0 {
		return Info{}
	}
	c := chain[0]
	sum := sha256.Sum256(c.Raw)
	info := Info{
		Subject:     c.Subject.String(),
		Issuer:      c.Issuer.String(),
		DNSNames:    c.DNSNames,
		NotBefore:   c.NotBefore,
		NotAfter:    c.NotAfter,
		SHA256:      hex.EncodeToString(sum[:]),
		SelfSigned:  c.CheckSignatureFrom(c) == nil && c.Subject.String() == c.Issuer.String(),
		ChainLength: len(chain),
	}
	for _, ip := range c.IPAddresses {
		info.IPs = append(info.IPs, ip.String())
	}
	return info
}

// Covers reports whether the certificate is valid for host name or IP.
func Covers(c *x509.Certificate, host string) bool { return c.VerifyHostname(host) == nil }

// ErrKey is matched (errors.Is) by Load's errors that are the key file's
// own fault (missing, unreadable, encrypted, no key in it), so that config
// can report them under the key's own setting and line rather than the
// certificate's.
var ErrKey = errors.New("the key file is at fault")

// keyError is a Load error about the key file.
type keyError struct{ error }

func (e keyError) Is(target error) bool { return target == ErrKey }
func (e keyError) Unwrap() error        { return e.error }

// Load reads a PEM certificate chain and its private key and checks that
// they belong together. Errors say which file is at fault and how. The
// certificate file is judged first; when it is at fault, CheckKey tells
// whether the key file is too.
func Load(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fileError("certificate", certFile, err)
	}
	switch types := pemTypes(certPEM); {
	case slices.Contains(types, "CERTIFICATE"):
	case slices.Contains(types, "CERTIFICATE REQUEST") || slices.Contains(types, "NEW CERTIFICATE REQUEST"):
		return nil, fmt.Errorf("certificate file %s holds a certificate signing request, not a certificate; give the certificate the CA issued for it, with its chain, in PEM form", certFile)
	default:
		return nil, fmt.Errorf("certificate file %s has no PEM \"CERTIFICATE\" block; give the certificate chain in PEM form", certFile)
	}
	keyPEM, err := readKey(keyFile)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		if strings.Contains(err.Error(), "does not match") {
			// Either file may be the wrong one; this stays with the
			// certificate, which the pair is known by.
			return nil, fmt.Errorf("key %s does not belong to certificate %s; give the key that was generated with this certificate", keyFile, certFile)
		}
		return nil, fmt.Errorf("certificate %s / key %s: %v", certFile, keyFile, err)
	}
	return &pair, nil
}

// CheckKey reports the key file's own faults (missing, unreadable,
// encrypted, no key in it) as Load would, without the certificate: so
// that a config whose certificate and key are both wrong is told both at
// once, not the key's fault only once the certificate is fixed.
func CheckKey(keyFile string) error {
	_, err := readKey(keyFile)
	return err
}

// readKey reads a key file and checks it holds an unencrypted private key;
// its errors match ErrKey.
func readKey(keyFile string) ([]byte, error) {
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, keyError{fileError("key", keyFile, err)}
	}
	switch types, encrypted := pemTypes(keyPEM), bytes.Contains(keyPEM, []byte("Proc-Type: 4,ENCRYPTED")); {
	case slices.Contains(types, "ENCRYPTED PRIVATE KEY") || encrypted:
		return nil, keyError{fmt.Errorf("key file %s is encrypted with a passphrase, which Sluice cannot ask for; give it unencrypted (openssl pkey -in %s -out KEY.pem) and readable only by the account Sluice runs as", keyFile, keyFile)}
	case !slices.ContainsFunc(types, isKeyType):
		return nil, keyError{fmt.Errorf("key file %s has no PEM private key block; give the unencrypted private key in PEM form", keyFile)}
	}
	return keyPEM, nil
}

// fileError phrases a read failure as what to do about it.
func fileError(what, path string, err error) error {
	if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
		return fmt.Errorf("%s file %s is a directory; give the path of the PEM file itself", what, path)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s file %s does not exist; check the path", what, path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s file %s cannot be read by this process (permission denied); grant read access to the user Sluice runs as", what, path)
	}
	return fmt.Errorf("%s file %s cannot be read: %v", what, path, err)
}

// pemTypes lists the types of the PEM blocks in data.
func pemTypes(data []byte) []string {
	var types []string
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return types
		}
		types = append(types, b.Type)
	}
}

// isKeyType: PKCS #8, PKCS #1 (RSA) and SEC 1 (EC) private keys.
func isKeyType(t string) bool {
	return t == "PRIVATE KEY" || t == "RSA PRIVATE KEY" || t == "EC PRIVATE KEY"
}
