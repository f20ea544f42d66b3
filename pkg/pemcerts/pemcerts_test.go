package pemcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

func certPEM(t *testing.T, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParse(t *testing.T) {
	a, b := certPEM(t, "ca-a"), certPEM(t, "ca-b")
	key := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not read")})
	broken := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")})
	join := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tt := range []struct {
		name    string
		data    []byte
		wantCNs []string
		// wantErr is in the error; "" wants none.
		wantErr string
		noCert  bool
	}{
		{name: "two certificates", data: join(a, b), wantCNs: []string{"ca-a", "ca-b"}},
		{name: "a key beside: skipped", data: join(key, a), wantCNs: []string{"ca-a"}},
		{name: "empty", data: nil, wantErr: "no PEM certificate", noCert: true},
		{name: "not PEM", data: []byte("hello"), wantErr: "no PEM certificate", noCert: true},
		{name: "only a key", data: key, wantErr: "no PEM certificate (found a PRIVATE KEY block)", noCert: true},
		{name: "a broken certificate among good ones", data: join(a, broken, b), wantCNs: []string{"ca-a", "ca-b"}, wantErr: "certificate 2: "},
		{name: "only a broken certificate", data: broken, wantErr: "certificate 1: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := Parse(tt.data)
			var cns []string
			for _, c := range certs {
				cns = append(cns, c.Subject.CommonName)
			}
			if strings.Join(cns, ",") != strings.Join(tt.wantCNs, ",") {
				t.Errorf("certificates %q, want %q", cns, tt.wantCNs)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want one saying %q", err, tt.wantErr)
			}
			if got := errors.Is(err, ErrNoCertificate); got != tt.noCert {
				t.Errorf("errors.Is(err, ErrNoCertificate) = %v, want %v", got, tt.noCert)
			}
		})
	}
}

// TestParseIsBounded: a bundle of more than MaxBlocks blocks is read up
// to MaxBlocks, and the error says so.
func TestParseIsBounded(t *testing.T) {
	a := certPEM(t, "ca-a")
	var data []byte
	for range MaxBlocks + 5 {
		data = append(data, a...)
	}
	certs, err := Parse(data)
	if len(certs) != MaxBlocks || err == nil || !strings.Contains(err.Error(), "more than 1000 PEM blocks") {
		t.Errorf("%d certificates, error %v; want %d and the bound named", len(certs), err, MaxBlocks)
	}
}
