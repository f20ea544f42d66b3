package nodecheck

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// testCA is a CA that signs kubelet serving certificates.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newTestCA(t *testing.T, cn string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
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

func (ca *testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// certSpec describes a kubelet serving certificate.
type certSpec struct {
	cn                  string
	dns                 []string
	ips                 []net.IP
	notBefore, notAfter time.Time
	// ca signs it; nil makes it self-signed, as a kubelet without
	// serverTLSBootstrap makes its own.
	ca *testCA
}

var serial int64 = 100

func (s certSpec) make(t *testing.T) tls.Certificate {
	t.Helper()
	if s.notBefore.IsZero() {
		s.notBefore = time.Now().Add(-time.Hour)
	}
	if s.notAfter.IsZero() {
		s.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	key := newKey(t)
	serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: s.cn},
		NotBefore: s.notBefore, NotAfter: s.notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: s.dns, IPAddresses: s.ips,
	}
	parent, signer := tmpl, crypto.Signer(key)
	if s.ca != nil {
		parent, signer = s.ca.cert, s.ca.key
	} else {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// fakeKubelet answers /metrics/resource and /stats/summary as a kubelet
// with webhook authentication does: a bearer token it does not accept
// gets 401; refuse makes it answer 403 for a subresource; fail makes an
// endpoint answer an error status with a body.
type fakeKubelet struct {
	token  string // accepted; "" accepts any
	refuse map[string]bool
	fail   map[string]answerSpec
	// skew shifts every sample time, as a kubelet clock off by it.
	skew time.Duration

	mu   sync.Mutex
	hits map[string]int
}

type answerSpec struct {
	status int
	body   string
}

func (k *fakeKubelet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	if k.hits == nil {
		k.hits = map[string]int{}
	}
	k.hits[r.URL.Path]++
	k.mu.Unlock()
	sub := "stats"
	if r.URL.Path == "/metrics/resource" {
		sub = "metrics"
	}
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" || k.token != "" && tok != k.token {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	if k.refuse[sub] {
		http.Error(w, fmt.Sprintf("Forbidden (user=system:serviceaccount:kube-system:metrics-server, verb=get, resource=nodes, subresource=%s)", sub), http.StatusForbidden)
		return
	}
	if a, ok := k.fail[r.URL.Path]; ok {
		http.Error(w, a.body, a.status)
		return
	}
	now := time.Now().Add(k.skew)
	switch r.URL.Path {
	case "/metrics/resource":
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write([]byte(resourceBody(now)))
	case "/stats/summary":
		if r.URL.Query().Get("only_cpu_and_memory") != "true" {
			http.Error(w, "Internal Error: failed to get imageFs stats: ask with only_cpu_and_memory=true", 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(summaryBody(now))
	default:
		http.NotFound(w, r)
	}
}

func (k *fakeKubelet) hitCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, v := range k.hits {
		n += v
	}
	return n
}

// resourceBody is a 48-core node's /metrics/resource with a database pod
// of 18 GiB, sampled a few seconds before now, in the kubelet's format.
func resourceBody(now time.Time) string {
	ms := func(back time.Duration) string { return strconv.FormatInt(now.Add(-back).UnixMilli(), 10) }
	return `# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="postgres",namespace="billing",pod="pg-0"} 310000.123456 ` + ms(3*time.Second) + `
container_cpu_usage_seconds_total{container="api",namespace="shop",pod="api-7d9f8c6b5-x2k4p"} 28512.000123 ` + ms(4*time.Second) + `
# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes
# TYPE container_memory_working_set_bytes gauge
container_memory_working_set_bytes{container="postgres",namespace="billing",pod="pg-0"} 1.9327352832e+10 ` + ms(3*time.Second) + `
container_memory_working_set_bytes{container="api",namespace="shop",pod="api-7d9f8c6b5-x2k4p"} 2.68435456e+09 ` + ms(4*time.Second) + `
# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds
# TYPE container_start_time_seconds gauge
container_start_time_seconds{container="postgres",namespace="billing",pod="pg-0"} ` + strconv.FormatFloat(float64(now.Add(-72*time.Hour).UnixNano())/1e9, 'g', -1, 64) + `
container_start_time_seconds{container="api",namespace="shop",pod="api-7d9f8c6b5-x2k4p"} ` + strconv.FormatFloat(float64(now.Add(-5*time.Hour).UnixNano())/1e9, 'g', -1, 64) + `
# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds
# TYPE node_cpu_usage_seconds_total counter
node_cpu_usage_seconds_total 1.0368000123456787e+07 ` + ms(2*time.Second) + `
# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes
# TYPE node_memory_working_set_bytes gauge
node_memory_working_set_bytes 2.14748364800e+11 ` + ms(2*time.Second) + `
`
}

// summaryBody is the same node's /stats/summary?only_cpu_and_memory=true,
// built from the kubelet's own type (k8s.io/kubelet stats/v1alpha1), so
// it marshals as the kubelet does (whole-second times).
func summaryBody(now time.Time) []byte {
	at := func(back time.Duration) metav1.Time { return metav1.NewTime(now.Add(-back)) }
	u64 := func(v uint64) *uint64 { return &v }
	cpu := func(back time.Duration, coreNanos uint64) *statsv1alpha1.CPUStats {
		return &statsv1alpha1.CPUStats{Time: at(back), UsageNanoCores: u64(coreNanos / 1000), UsageCoreNanoSeconds: u64(coreNanos)}
	}
	mem := func(back time.Duration, ws uint64) *statsv1alpha1.MemoryStats {
		return &statsv1alpha1.MemoryStats{Time: at(back), WorkingSetBytes: u64(ws), UsageBytes: u64(ws + ws/4)}
	}
	b, _ := json.Marshal(statsv1alpha1.Summary{
		Node: statsv1alpha1.NodeStats{NodeName: "worker-3", StartTime: at(400 * time.Hour),
			CPU: cpu(2*time.Second, 10368000123456787), Memory: mem(2*time.Second, 214748364800)},
		Pods: []statsv1alpha1.PodStats{{
			PodRef:    statsv1alpha1.PodReference{Name: "pg-0", Namespace: "billing", UID: "4b6e1c2a-3f0d-4d8e-9a51-0c2f7e9b1d23"},
			StartTime: at(72 * time.Hour),
			Containers: []statsv1alpha1.ContainerStats{{Name: "postgres", StartTime: at(72 * time.Hour),
				CPU: cpu(3*time.Second, 310000123456000), Memory: mem(3*time.Second, 19327352832)}},
		}},
	})
	return b
}

// startKubelet serves k over TLS with cert on 127.0.0.1 and returns a
// node whose InternalIP and kubelet port point at it.
func startKubelet(t *testing.T, name string, k http.Handler, cert tls.Certificate) *corev1.Node {
	t.Helper()
	srv := httptest.NewUnstartedServer(k)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	// Handshakes refused by the checks are expected, not news.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return nodeAt(t, name, srv.Listener.Addr().String())
}

// nodeAt is a Ready node named name whose kubelet is at addr.
func nodeAt(t *testing.T, name, addr string) *corev1.Node {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: host}, {Type: corev1.NodeHostName, Address: name}}
	n.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(p)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	return n
}

// cluster is a fake API: nodes, the ConfigMap kube-root-ca.crt, token
// requests for the server's ServiceAccount (refused when tokenErr is set)
// and access reviews answered by allow.
type cluster struct {
	*fake.Clientset
	tokens int
}

const saToken = "sa-token-of-metrics-server"

func newCluster(t *testing.T, nodes []*corev1.Node, rootCA []byte, tokenErr error, allow map[string]bool) *cluster {
	t.Helper()
	var objs []runtime.Object
	for _, n := range nodes {
		objs = append(objs, n)
	}
	if rootCA != nil {
		objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": string(rootCA)}})
	}
	c := &cluster{Clientset: fake.NewClientset(objs...)}
	c.PrependReactor("create", "serviceaccounts", func(a clienttesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		c.tokens++
		if tokenErr != nil {
			return true, nil, tokenErr
		}
		if a.GetNamespace() != "kube-system" || a.(clienttesting.CreateAction).GetObject() == nil {
			return true, nil, fmt.Errorf("unexpected token request %v", a)
		}
		return true, &authenticationv1.TokenRequest{Status: authenticationv1.TokenRequestStatus{Token: saToken}}, nil
	})
	c.PrependReactor("create", "subjectaccessreviews", func(a clienttesting.Action) (bool, runtime.Object, error) {
		sar := a.(clienttesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		out := sar.DeepCopy()
		out.Status.Allowed = sar.Spec.User == "system:serviceaccount:kube-system:metrics-server" && allow[sar.Spec.ResourceAttributes.Subresource]
		return true, out, nil
	})
	return c
}

// fakeResolver resolves the names in hosts and no other.
type fakeResolver map[string][]string

func (r fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}
