package nodecheck

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

// caDated is a kubelet CA named cn valid from notBefore to notAfter.
func caDated(t *testing.T, cn string, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: notBefore, NotAfter: notAfter,
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, key: key}
}

// TestRunNamesTheExpiredKubeletCA: the chain is verified at now, as the
// server verifies it. A kubelet CA that expired while the kubelet's
// serving certificate is within its dates fails node-tls naming the CA
// and when it expired, and no request goes to the kubelet; the leaf is
// not blamed. (Issue 15, defect 9: the chain was verified at the leaf's
// mid-life, so such a node was ok.)
func TestRunNamesTheExpiredKubeletCA(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	loop := []net.IP{net.ParseIP("127.0.0.1")}
	for _, tt := range []struct {
		name string
		// ca's dates, the leaf's dates, and the local clock.
		caFrom, caTo, leafFrom, leafTo, clock time.Time
		says                                  []string
		fix                                   string
		// leafBlamed: the leaf's own dates are a problem too.
		leafBlamed bool
	}{
		{
			name: "CA expired two days ago, leaf valid", caFrom: now.Add(-3650 * day), caTo: now.Add(-2 * day),
			leafFrom: now.Add(-400 * day), leafTo: now.Add(30 * day), clock: now,
			says: []string{`the kubelet CA "CN=kubernetes-kubelet-ca" (of the kubelet CA given to doctor) expired at ` + stamp(now.Add(-2*day)) + ", 2d0h ago by this machine's clock", "the server refuses every certificate it signed"},
		},
		{
			name: "fake clock past the CA's end, leaf still valid", caFrom: now.Add(-day), caTo: now.Add(100 * day),
			leafFrom: now.Add(-day), leafTo: now.Add(300 * day), clock: now.Add(101 * day),
			says: []string{`the kubelet CA "CN=kubernetes-kubelet-ca"`, "expired at " + stamp(now.Add(100*day)), "1d0h ago"},
		},
		{
			name: "CA not valid yet", caFrom: now.Add(5 * time.Hour), caTo: now.Add(3650 * day),
			leafFrom: now.Add(-day), leafTo: now.Add(300 * day), clock: now,
			says: []string{`the kubelet CA "CN=kubernetes-kubelet-ca"`, "is not valid before " + stamp(now.Add(5*time.Hour))},
		},
		{
			name: "both expired: each named", caFrom: now.Add(-3650 * day), caTo: now.Add(-2 * day),
			leafFrom: now.Add(-400 * day), leafTo: now.Add(-day), clock: now, leafBlamed: true, fix: "kubectl get csr",
			says: []string{"the kubelet's serving certificate expired at " + stamp(now.Add(-day)), `the kubelet CA "CN=kubernetes-kubelet-ca"`, "expired at " + stamp(now.Add(-2*day))},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ca := caDated(t, "kubernetes-kubelet-ca", tt.caFrom, tt.caTo)
			k := &fakeKubelet{token: saToken}
			node := startKubelet(t, "worker-3", k, certSpec{cn: "system:node:worker-3", ips: loop, ca: ca, notBefore: tt.leafFrom, notAfter: tt.leafTo}.make(t))
			c := newCluster(t, []*corev1.Node{node}, nil, nil, nil)
			got := Run(context.Background(), Input{Client: c, Rest: &rest.Config{}, ServerArgs: serverArgs, KubeletCA: ca.pem(),
				Resolver: fakeResolver{}, NodeTimeout: 3 * time.Second, Clock: clocktesting.NewFakePassiveClock(tt.clock)})
			fix := tt.fix
			if fix == "" {
				fix = "renew the kubelet CA"
			}
			checkFindings(t, got, []want{{check: CheckTLS, status: doctor.StatusFail, says: tt.says, fix: fix}})
			for _, f := range got {
				if f.Check == CheckTLS && strings.Contains(f.Message, "the kubelet's serving certificate expired") != tt.leafBlamed {
					t.Errorf("the leaf is blamed: %v, want %v: %s", !tt.leafBlamed, tt.leafBlamed, f.Message)
				}
			}
			if k.hitCount() > 0 {
				t.Errorf("the kubelet behind an out-of-date CA was asked %d times", k.hitCount())
			}
		})
	}
}
