package certbootstrap

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

var testNames = DNSNames("metrics-server", "kube-system")

func TestDNSNames(t *testing.T) {
	want := []string{"metrics-server", "metrics-server.kube-system", "metrics-server.kube-system.svc", "metrics-server.kube-system.svc.cluster.local"}
	got := DNSNames("metrics-server", "kube-system")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("DNSNames = %v, want %v", got, want)
	}
}

// TestRenewReason: a serving certificate is renewed when less than a third
// of its lifetime is left, when it does not name the Service, or when
// another CA signed it.
func TestRenewReason(t *testing.T) {
	made := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	b, err := newBundle(made, testNames)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newBundle(made, testNames)
	if err != nil {
		t.Fatal(err)
	}
	foreign := *b
	foreign.cert = other.cert
	life := b.cert.NotAfter.Sub(b.cert.NotBefore)

	for _, tc := range []struct {
		name  string
		b     *bundle
		now   time.Time
		names []string
		want  string // a part of the reason; "" means no renewal
	}{
		{"new", b, made, testNames, ""},
		{"just over a third left", b, b.cert.NotAfter.Add(-life/3 - time.Minute), testNames, ""},
		{"just under a third left", b, b.cert.NotAfter.Add(-life/3 + time.Minute), testNames, "less than a third of its lifetime"},
		{"expired", b, b.cert.NotAfter.Add(time.Hour), testNames, "less than a third"},
		{"another service name", b, made, DNSNames("metrics", "kube-system"), "does not name metrics ("},
		{"another namespace", b, made, DNSNames("metrics-server", "monitoring"), "does not name metrics-server.monitoring"},
		{"signed by another CA", &foreign, made, testNames, "not signed by the CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.b.renewReason(tc.now, tc.names)
			if tc.want == "" && got != "" {
				t.Errorf("renewReason = %q, want none", got)
			}
			if tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("renewReason = %q, want it to say %q", got, tc.want)
			}
		})
	}
}

// TestNewBundle: the CA lives ten years, the serving certificate one, for
// the Service's names and server authentication only, and it verifies
// against ca.crt under its longest name.
func TestNewBundle(t *testing.T) {
	now := time.Date(2026, 11, 30, 5, 0, 0, 0, time.UTC)
	b, err := newBundle(now, testNames)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ca.NotAfter.Sub(now); got != CAValidity {
		t.Errorf("CA lifetime from now = %v, want %v", got, CAValidity)
	}
	if got := b.cert.NotAfter.Sub(now); got != ServingValidity {
		t.Errorf("serving lifetime from now = %v, want %v", got, ServingValidity)
	}
	if b.cert.IsCA || len(b.cert.IPAddresses) > 0 {
		t.Errorf("serving certificate: IsCA %v, IP SANs %v; want neither", b.cert.IsCA, b.cert.IPAddresses)
	}
	again, err := parseBundle(b.data())
	if err != nil {
		t.Fatalf("the bundle's own data does not parse: %v", err)
	}
	verify(t, again, "metrics-server.kube-system.svc", now)
}

// TestRenewed: a renewal keeps the CA while it outlives a new serving
// certificate; otherwise a new CA signs it and ca.crt keeps the old CA
// after the new one, so certificates the old one signed still verify.
func TestRenewed(t *testing.T) {
	made := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	b, err := newBundle(made, testNames)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("same CA", func(t *testing.T) {
		now := made.Add(300 * 24 * time.Hour)
		r, err := renewed(now, b, testNames)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.caPEM) != string(b.caPEM) || string(r.caKPEM) != string(b.caKPEM) {
			t.Error("the CA changed")
		}
		if r.cert.SerialNumber.Cmp(b.cert.SerialNumber) == 0 || string(r.keyPEM) == string(b.keyPEM) {
			t.Error("the serving certificate or key was not replaced")
		}
		verify(t, r, "metrics-server.kube-system.svc", now)
	})
	t.Run("CA near its end", func(t *testing.T) {
		now := b.ca.NotAfter.Add(-200 * 24 * time.Hour)
		// The serving certificate in use, issued 250 days ago.
		inUse, err := b.issue(now.Add(-250*24*time.Hour), testNames)
		if err != nil {
			t.Fatal(err)
		}
		r, err := renewed(now, inUse, testNames)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := parseCerts(r.caPEM)
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 2 || !certs[1].Equal(b.ca) || certs[0].Equal(b.ca) {
			t.Fatalf("ca.crt holds %d certificates; want the new CA, then the old", len(certs))
		}
		verify(t, r, "metrics-server.kube-system", now)
		if got := r.cert.NotAfter.Sub(now); got != ServingValidity {
			t.Errorf("the new serving certificate lives %v from now, want %v", got, ServingValidity)
		}
		// The serving certificate in use is still trusted by the new ca.crt.
		old := *inUse
		old.caPEM = r.caPEM
		verify(t, &old, "metrics-server", now)
	})
	t.Run("nothing readable", func(t *testing.T) {
		r, err := renewed(made, nil, testNames)
		if err != nil {
			t.Fatal(err)
		}
		verify(t, r, "metrics-server.kube-system.svc.cluster.local", made)
	})
}

// TestParseBundleErrors: damaged content is refused with the Secret key
// at fault named.
func TestParseBundleErrors(t *testing.T) {
	now := time.Now()
	a, err := newBundle(now, testNames)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBundle(now, testNames)
	if err != nil {
		t.Fatal(err)
	}
	with := func(key string, v []byte) map[string][]byte {
		d := a.data()
		if v == nil {
			delete(d, key)
		} else {
			d[key] = v
		}
		return d
	}
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string
	}{
		{"no ca.crt", with(KeyCA, nil), "ca.crt: no PEM certificate"},
		{"no ca.key", with(KeyCAKey, nil), "ca.key: no PEM key"},
		{"garbage tls.crt", with(KeyCert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")), "tls.crt:"},
		{"no tls.key", with(KeyKey, nil), "tls.key: no PEM key"},
		{"another CA's key", with(KeyCAKey, b.caKPEM), "ca.key is not the key of the CA"},
		{"another serving key", with(KeyKey, b.keyPEM), "tls.key is not the key of the certificate"},
		{"serving certificate as CA", with(KeyCA, a.certPEM), "is not a CA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBundle(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseBundle: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// verify checks that b's serving certificate chains to b's ca.crt for
// serverName at now.
func verify(t *testing.T, b *bundle, serverName string, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b.caPEM) {
		t.Fatal("ca.crt holds no certificate")
	}
	if _, err := b.cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: serverName, CurrentTime: now}); err != nil {
		t.Errorf("the serving certificate does not verify for %s: %v", serverName, err)
	}
}
