package cnpgitest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// KeyPair is a self-signed certificate as cert-manager issues them for the
// plugin: the server one (CN and DNS name "barman-cloud", server auth)
// and the operator's client one (CN "barman-cloud-client", client auth).
type KeyPair struct {
	CertPEM, KeyPEM []byte
	CertFile        string
	KeyFile         string
}

// TLS returns the key pair for tls.Config.Certificates.
func (k KeyPair) TLS(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(k.CertPEM, k.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewKeyPair makes a self-signed certificate for cn, written to dir.
func NewKeyPair(t testing.TB, dir, cn string, usage x509.ExtKeyUsage) KeyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	k := KeyPair{
		CertPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		CertFile: filepath.Join(dir, cn+".crt"),
		KeyFile:  filepath.Join(dir, cn+".key"),
	}
	if err := os.WriteFile(k.CertFile, k.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.KeyFile, k.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// ClientTLS is the operator's client configuration for a plugin Service:
// the server Secret's tls.crt as root CA, its own key pair, TLS 1.3.
func ClientTLS(serverName string, serverCertPEM []byte, client tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(serverCertPEM)
	return &tls.Config{ServerName: serverName, RootCAs: pool, Certificates: []tls.Certificate{client}, MinVersion: tls.VersionTLS13}
}
