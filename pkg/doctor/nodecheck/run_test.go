package nodecheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

// serverArgs are the base manifests' kubelet flags, among others the
// node checks ignore (one with its value as a separate word).
var serverArgs = []string{"/metrics-server", "--cert-dir=/tmp", "--secure-port", "10250",
	"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname", "--kubelet-use-node-status-port", "--metric-resolution=15s"}

// want is a finding expected of node/worker-3 (or of Target when set).
type want struct {
	check  string
	status doctor.Status
	// says are in the message, fix in the fix.
	says []string
	fix  string
	// target defaults to node/worker-3.
	target string
}

// TestRun: one node broken in one way at a time, through the fake API and
// a TLS kubelet on loopback; each case names the findings it expects (the
// finding of every other check of the node must be ok or absent), and
// whether the kubelet may be asked at all.
func TestRun(t *testing.T) {
	ca := newTestCA(t, "kubernetes-kubelet-ca")
	other := newTestCA(t, "some-other-ca")
	loop := []net.IP{net.ParseIP("127.0.0.1")}
	good := certSpec{cn: "system:node:worker-3", dns: []string{"worker-3"}, ips: loop, ca: ca}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts/token"}, "metrics-server", errors.New("no"))
	crio := `Internal Error: failed to get imageFs stats: "unable to find data in memory cache"`

	for _, tt := range []struct {
		name string
		k    *fakeKubelet
		cert certSpec
		// args replace serverArgs; in changes the input.
		args     []string
		in       func(*Input)
		tokenErr error
		allow    map[string]bool
		want     []want
		// asked: whether the kubelet may see a request.
		asked bool
	}{
		{
			name: "healthy", k: &fakeKubelet{token: saToken}, cert: good, asked: true,
			want: []want{
				{check: CheckAddress, status: doctor.StatusOK, says: []string{"the server asks the kubelet at 127.0.0.1:", "(InternalIP)"}},
				{check: CheckConnect, status: doctor.StatusOK},
				{check: CheckTLS, status: doctor.StatusOK, says: []string{"names 127.0.0.1", "signed by the kubelet CA given to doctor"}},
				{check: CheckAuthz, status: doctor.StatusOK, says: []string{"the token of ServiceAccount kube-system/metrics-server"}},
				{check: CheckEndpoint, status: doctor.StatusOK, says: []string{"/metrics/resource answers: 2 pods, 2 containers"}},
				{check: CheckEndpoint, status: doctor.StatusOK, says: []string{"/stats/summary?only_cpu_and_memory=true answers: 1 pods, 1 containers"}},
				{check: CheckClock, status: doctor.StatusOK},
			},
		},
		{
			name: "certificate without the IP SAN", k: &fakeKubelet{token: saToken},
			cert: certSpec{cn: "worker-3@1764470000", dns: []string{"worker-3"}, ca: ca},
			want: []want{{check: CheckTLS, status: doctor.StatusFail,
				says: []string{"has no IP SAN for the address asked, 127.0.0.1 (its SANs: DNS:worker-3)"},
				fix:  "--kubelet-certificate-authority"}},
		},
		{
			name: "self-signed kubelet certificate", k: &fakeKubelet{token: saToken},
			cert: certSpec{cn: "worker-3@1764470000", dns: []string{"worker-3"}, ips: loop},
			want: []want{{check: CheckTLS, status: doctor.StatusFail,
				says: []string{`issued by "CN=worker-3@1764470000" (a self-signed certificate`, "which the kubelet CA given to doctor does not verify"},
				fix:  "serverTLSBootstrap: true"}},
		},
		{
			name: "signed by another CA", k: &fakeKubelet{token: saToken},
			cert: certSpec{cn: "system:node:worker-3", ips: loop, ca: other},
			want: []want{{check: CheckTLS, status: doctor.StatusFail,
				says: []string{`issued by "CN=some-other-ca", which the kubelet CA given to doctor does not verify`}, fix: "--kubelet-certificate-authority"}},
		},
		{
			name: "expired", k: &fakeKubelet{token: saToken},
			cert: certSpec{cn: "system:node:worker-3", ips: loop, ca: ca, notBefore: time.Now().Add(-400 * 24 * time.Hour), notAfter: time.Now().Add(-50 * time.Hour)},
			want: []want{{check: CheckTLS, status: doctor.StatusFail, says: []string{"serving certificate expired at 20", ", 2d2h ago by this machine's clock"}, fix: "kubectl get csr"}},
		},
		{
			name: "not valid yet", k: &fakeKubelet{token: saToken},
			cert: certSpec{cn: "system:node:worker-3", ips: loop, ca: ca, notBefore: time.Now().Add(3 * time.Hour)},
			want: []want{{check: CheckTLS, status: doctor.StatusFail, says: []string{"not valid before 20", ", 2h59m from now"}, fix: "NTP"}},
		},
		{
			name: "cluster CA from kube-root-ca.crt", k: &fakeKubelet{token: saToken}, cert: good, asked: true,
			in:   func(in *Input) { in.KubeletCA = nil },
			want: []want{{check: CheckTLS, status: doctor.StatusOK, says: []string{"signed by the cluster CA (ConfigMap kube-system/kube-root-ca.crt: the server verifies kubelets with it"}}},
		},
		{
			name: "server CA file unreadable here", k: &fakeKubelet{token: saToken}, cert: good,
			args: append(append([]string{}, serverArgs...), "--kubelet-certificate-authority=/etc/kubernetes/pki/no-such-ca.crt"),
			in:   func(in *Input) { in.KubeletCA = nil },
			want: []want{
				{check: CheckTLS, status: doctor.StatusWarn, says: []string{"names 127.0.0.1", "--kubelet-certificate-authority=/etc/kubernetes/pki/no-such-ca.crt, a file this machine cannot read"}, fix: "--kubelet-certificate-authority=<file>"},
				{check: CheckEndpoint, status: doctor.StatusWarn, says: []string{"were not asked: no credential goes to a kubelet whose certificate cannot be verified"}},
			},
		},
		{
			name: "kubelet refuses the token", k: &fakeKubelet{token: "only-the-kubelet-knows"}, cert: good, asked: true,
			want: []want{
				{check: CheckAuthz, status: doctor.StatusFail, says: []string{"answered 401 Unauthorized to /metrics/resource with the token of ServiceAccount kube-system/metrics-server", "the other endpoint fails too"}, fix: "--authentication-token-webhook"},
				{check: CheckAuthz, status: doctor.StatusFail, says: []string{"answered 401 Unauthorized to /stats/summary?only_cpu_and_memory=true", "the server gets no metrics from this node"}, fix: "authentication.webhook.enabled: true"},
			},
		},
		{
			name: "RBAC lacks nodes/metrics: summary still works", k: &fakeKubelet{token: saToken, refuse: map[string]bool{"metrics": true}}, cert: good, asked: true,
			allow: map[string]bool{"stats": true},
			want: []want{
				{check: CheckAuthz, status: doctor.StatusWarn, says: []string{"403 Forbidden to /metrics/resource: RBAC does not allow system:serviceaccount:kube-system:metrics-server to get nodes/metrics", "the server falls back to /stats/summary, which works"}, fix: "kubectl auth can-i get nodes --subresource=metrics --as=system:serviceaccount:kube-system:metrics-server"},
				{check: CheckEndpoint, status: doctor.StatusOK, says: []string{"/stats/summary?only_cpu_and_memory=true answers"}},
			},
		},
		{
			name: "kubelet authorization not Webhook", k: &fakeKubelet{token: saToken, refuse: map[string]bool{"metrics": true, "stats": true}}, cert: good, asked: true,
			allow: map[string]bool{"metrics": true, "stats": true},
			want: []want{
				{check: CheckAuthz, status: doctor.StatusFail, says: []string{"although RBAC allows system:serviceaccount:kube-system:metrics-server to get nodes/metrics", "its authorization mode is not Webhook"}, fix: "--authorization-mode=Webhook"},
				{check: CheckAuthz, status: doctor.StatusFail, says: []string{"to get nodes/stats"}, fix: "authorization.mode: Webhook"},
			},
		},
		{
			name: "summary fails as cri-o's does; resource works", k: &fakeKubelet{token: saToken, fail: map[string]answerSpec{"/stats/summary": {500, crio}}}, cert: good, asked: true,
			want: []want{
				{check: CheckEndpoint, status: doctor.StatusWarn, says: []string{"/stats/summary fails: http status 500: " + crio, "the server uses /metrics/resource, which works"}, fix: "cri-o's imageFs error"},
				{check: CheckEndpoint, status: doctor.StatusOK, says: []string{"/metrics/resource answers"}},
			},
		},
		{
			name: "resource answer that does not decode", k: &fakeKubelet{token: saToken, fail: map[string]answerSpec{"/metrics/resource": {200, "<html><body>502 Bad Gateway</body></html>"}}}, cert: good, asked: true,
			want: []want{{check: CheckEndpoint, status: doctor.StatusWarn, says: []string{"/metrics/resource fails: the answer does not decode: ", "the server falls back to /stats/summary, which works"}, fix: "this is not the kubelet's format"}},
		},
		{
			name: "both endpoints fail", k: &fakeKubelet{token: saToken, fail: map[string]answerSpec{"/stats/summary": {500, crio}, "/metrics/resource": {503, "kubelet is shutting down"}}}, cert: good, asked: true,
			want: []want{
				{check: CheckEndpoint, status: doctor.StatusFail, says: []string{"/metrics/resource fails: http status 503: kubelet is shutting down", "the other endpoint fails too"}},
				{check: CheckEndpoint, status: doctor.StatusFail, says: []string{"/stats/summary fails: http status 500: " + crio}},
			},
		},
		{
			name: "summary pinned and failing", k: &fakeKubelet{token: saToken, fail: map[string]answerSpec{"/stats/summary": {500, crio}}}, cert: good, asked: true,
			args: append(append([]string{}, serverArgs...), "--kubelet-endpoint=summary"),
			want: []want{{check: CheckEndpoint, status: doctor.StatusFail, says: []string{"/stats/summary fails: http status 500", "the server gets no metrics from this node"}, fix: "--kubelet-endpoint=auto or resource"}},
		},
		{
			name: "clock five minutes ahead", k: &fakeKubelet{token: saToken, skew: 5 * time.Minute}, cert: good, asked: true,
			want: []want{{check: CheckClock, status: doctor.StatusWarn, says: []string{"is 298 s ahead of this machine's clock"}, fix: "chrony"}},
		},
		{
			name: "clock two minutes behind", k: &fakeKubelet{token: saToken, skew: -2 * time.Minute}, cert: good, asked: true,
			want: []want{{check: CheckClock, status: doctor.StatusWarn, says: []string{"is 122 s behind this machine's clock"}}},
		},
		{
			name: "token request forbidden: own credentials, with a warning", k: &fakeKubelet{token: "operator-token"}, cert: good, asked: true,
			tokenErr: forbidden,
			want: []want{
				{check: CheckCredentials, status: doctor.StatusWarn, target: "serviceaccount/kube-system/metrics-server", says: []string{"you may not request a token of ServiceAccount kube-system/metrics-server", "your own credentials"}, fix: "create serviceaccounts/token"},
				{check: CheckAuthz, status: doctor.StatusOK, says: []string{"accepts your own credentials"}},
			},
		},
		{
			// TestRunSendsNoCredentialUnverified tries it as an attacker.
			name: "insecure server, no kubelet CA: TLS checked, nothing sent", k: &fakeKubelet{token: saToken}, cert: certSpec{cn: "worker-3@1", dns: []string{"worker-3"}},
			args: append(append([]string{}, serverArgs...), "--kubelet-insecure-tls"), in: func(in *Input) { in.KubeletCA = nil },
			want: []want{
				{check: CheckTLS, status: doctor.StatusWarn, says: []string{"not verified: the server runs with --kubelet-insecure-tls", "has no IP SAN for the address asked", "doctor sent no credential to it"}},
				{check: CheckEndpoint, status: doctor.StatusWarn, says: []string{"were not asked", "doctor sent no credential"}},
			},
		},
		{
			name: "host name that does not resolve", k: &fakeKubelet{token: saToken}, cert: good,
			args: []string{"--kubelet-use-node-status-port"}, // the server's default: Hostname first
			want: []want{
				{check: CheckAddress, status: doctor.StatusOK, says: []string{"the server asks the kubelet at worker-3:", "(Hostname)"}},
				{check: CheckResolve, status: doctor.StatusFail, says: []string{"worker-3 (Hostname), does not resolve from this machine", "no such host"}, fix: "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname"},
			},
		},
		{
			name: "no address of the types asked", k: &fakeKubelet{token: saToken}, cert: good,
			args: []string{"--kubelet-preferred-address-types=ExternalIP,ExternalDNS"},
			want: []want{{check: CheckAddress, status: doctor.StatusFail, says: []string{"node has none of the address types [ExternalIP ExternalDNS] (it has [InternalIP Hostname])"}, fix: "(now ExternalIP,ExternalDNS)"}},
		},
		{
			name: "flags the server refuses", k: &fakeKubelet{token: saToken}, cert: good, asked: true,
			args: []string{"--kubelet-use-node-status-port", "--kubelet-preferred-address-types=InternalIP", "--kubelet-max-concurrency=0"},
			want: []want{{check: CheckSettings, status: doctor.StatusFail, target: "deployment-args", says: []string{"--kubelet-max-concurrency must be at least 1, got 0", "the server cannot start with them"}}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			node := startKubelet(t, "worker-3", tt.k, tt.cert.make(t))
			args := serverArgs
			if tt.args != nil {
				args = tt.args
			}
			c := newCluster(t, []*corev1.Node{node}, ca.pem(), tt.tokenErr, tt.allow)
			in := Input{Client: c, Rest: &rest.Config{BearerToken: "operator-token"}, ServerArgs: args, KubeletCA: ca.pem(),
				Resolver: fakeResolver{}, NodeTimeout: 3 * time.Second}
			if tt.in != nil {
				tt.in(&in)
			}
			got := Run(context.Background(), in)
			if t.Failed() {
				return
			}
			checkFindings(t, got, tt.want)
			if asked := tt.k.hitCount() > 0; asked != tt.asked {
				t.Errorf("the kubelet was asked: %v, want %v", asked, tt.asked)
			}
		})
	}
}

// checkFindings: every wanted finding is there (matched in order of the
// wants, each finding used once), and every other finding is ok.
func checkFindings(t *testing.T, got []doctor.Finding, wants []want) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range wants {
		target := w.target
		if target == "" {
			target = "node/worker-3"
		}
		found := false
		for i, f := range got {
			if used[i] || f.Check != w.check || f.Target != target || f.Status != w.status || !containsAll(f.Message, w.says) || !strings.Contains(f.Fix, w.fix) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			t.Errorf("no %s finding %s of %s saying %q with fix %q; got:\n%s", w.status, w.check, target, w.says, w.fix, dump(got))
		}
	}
	for i, f := range got {
		if !used[i] && f.Status != doctor.StatusOK {
			t.Errorf("unexpected finding %s %s %s: %s (fix: %s)", f.Check, f.Target, f.Status, f.Message, f.Fix)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

func dump(fs []doctor.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + string(f.Status) + " " + f.Check + " " + f.Target + ": " + f.Message + " | fix: " + f.Fix + "\n")
	}
	return b.String()
}

// TestRunConnectionRefused: a node whose kubelet does not listen, and one
// that is NotReady; nothing else of them is checked.
func TestRunConnectionRefused(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	node := nodeAt(t, "worker-3", addr)
	node.Status.Conditions[0] = corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", Message: "Kubelet stopped posting node status."}
	c := newCluster(t, []*corev1.Node{node}, nil, nil, nil)
	got := Run(context.Background(), Input{Client: c, Rest: &rest.Config{}, ServerArgs: serverArgs, KubeletCA: newTestCA(t, "ca").pem(), NodeTimeout: 3 * time.Second})
	checkFindings(t, got, []want{{check: CheckConnect, status: doctor.StatusFail,
		says: []string{"cannot connect to the kubelet of node worker-3 at " + addr + " from this machine: connection refused", "the node is NotReady (Ready=Unknown, NodeStatusUnknown: Kubelet stopped posting node status.)"},
		fix:  "systemctl status kubelet"}})
}

// TestRunIsBounded: kubelets that accept connections and never answer
// the handshake cost a node timeout each, and the run ends at its own
// timeout with the nodes it did not reach reported as not checked.
func TestRunIsBounded(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 6 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = lis.Close() })
		go func() {
			for {
				conn, err := lis.Accept()
				if err != nil {
					return
				}
				t.Cleanup(func() { _ = conn.Close() })
			}
		}()
		nodes = append(nodes, nodeAt(t, "hung-"+string(rune('a'+i)), lis.Addr().String()))
	}
	c := newCluster(t, nodes, nil, nil, nil)
	start := time.Now()
	got := Run(context.Background(), Input{Client: c, Rest: &rest.Config{}, ServerArgs: serverArgs, KubeletCA: newTestCA(t, "ca").pem(),
		Parallel: 2, NodeTimeout: 600 * time.Millisecond, Timeout: time.Second})
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Run took %v with a 1s timeout", took)
	}
	var timedOut, unchecked int
	for _, f := range got {
		switch {
		case f.Check == CheckTLS && f.Status == doctor.StatusFail && strings.Contains(f.Message, "did not complete the TLS handshake in time"):
			timedOut++
		case f.Check == CheckUnchecked && f.Status == doctor.StatusWarn && strings.Contains(f.Message, "was not checked within doctor's time limit (1s)"):
			unchecked++
		}
	}
	if timedOut < 2 || unchecked < 1 || timedOut+unchecked != len(nodes) {
		t.Errorf("%d TLS timeouts and %d unchecked nodes of %d; got:\n%s", timedOut, unchecked, len(nodes), dump(got))
	}
}

// TestRunRefusesRedirects: a kubelet that redirects is not followed, and
// the credentials do not go where it points.
func TestRunRefusesRedirects(t *testing.T) {
	ca := newTestCA(t, "kubernetes-kubelet-ca")
	elsewhere := &fakeKubelet{}
	target := startKubelet(t, "elsewhere", elsewhere, certSpec{cn: "x", ips: []net.IP{net.ParseIP("127.0.0.1")}, ca: ca}.make(t))
	loc := "https://127.0.0.1:" + portOfNode(target) + "/metrics/resource"
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, loc, http.StatusFound) })
	node := startKubelet(t, "worker-3", redirect, certSpec{cn: "system:node:worker-3", ips: []net.IP{net.ParseIP("127.0.0.1")}, ca: ca}.make(t))
	c := newCluster(t, []*corev1.Node{node}, nil, nil, nil)
	got := Run(context.Background(), Input{Client: c, Rest: &rest.Config{}, ServerArgs: serverArgs, KubeletCA: ca.pem(), NodeTimeout: 3 * time.Second})
	checkFindings(t, got, []want{
		{check: CheckEndpoint, status: doctor.StatusFail, says: []string{"/metrics/resource fails: redirect 302 to \"" + loc + "\", which the server never follows"}},
		{check: CheckEndpoint, status: doctor.StatusFail, says: []string{"/stats/summary fails: redirect 302"}},
	})
	if n := elsewhere.hitCount(); n != 0 {
		t.Errorf("the redirect's target was asked %d times", n)
	}
}

func portOfNode(n *corev1.Node) string {
	return strconv.Itoa(int(n.Status.DaemonEndpoints.KubeletEndpoint.Port))
}

// TestRunFoldsManyNodes: 120 kubelets, every tenth serving a certificate
// without the IP SAN and every fifteenth a summary that fails: beyond
// ListUpTo nodes the findings fold into one per check and cause, counted.
func TestRunFoldsManyNodes(t *testing.T) {
	const n = 120
	ca := newTestCA(t, "kubernetes-kubelet-ca")
	good := certSpec{cn: "system:node:pool-a", ips: []net.IP{net.ParseIP("127.0.0.1")}, ca: ca}.make(t)
	noIP := certSpec{cn: "pool-a@1764470000", dns: []string{"pool-a"}, ca: ca}.make(t)
	crio := &fakeKubelet{token: saToken, fail: map[string]answerSpec{"/stats/summary": {500, `Internal Error: failed to get imageFs stats: "unable to find data in memory cache"`}}}
	var nodes []*corev1.Node
	for i := range n {
		name := fmt.Sprintf("pool-a-%05d", i)
		switch {
		case i%10 == 3:
			nodes = append(nodes, startKubelet(t, name, &fakeKubelet{token: saToken}, noIP))
		case i%15 == 7:
			nodes = append(nodes, startKubelet(t, name, crio, good))
		default:
			nodes = append(nodes, startKubelet(t, name, &fakeKubelet{token: saToken}, good))
		}
	}
	c := newCluster(t, nodes, nil, nil, nil)
	start := time.Now()
	got := Run(context.Background(), Input{Client: c, Rest: &rest.Config{}, ServerArgs: serverArgs, KubeletCA: ca.pem(), NodeTimeout: 5 * time.Second})
	t.Logf("%d nodes checked in %v", n, time.Since(start))
	checkFindings(t, got, []want{
		{check: CheckTLS, status: doctor.StatusFail, target: "nodes",
			says: []string{"12 of 120 nodes: the kubelet's serving certificate has no IP SAN for the address asked (pool-a-00003, pool-a-00013, pool-a-00023, pool-a-00033, pool-a-00043 and 7 more)"},
			fix:  "serverTLSBootstrap: true"},
		{check: CheckEndpoint, status: doctor.StatusWarn, target: "nodes",
			says: []string{"8 of 120 nodes: /stats/summary fails with http status 500 (pool-a-00007, pool-a-00022, pool-a-00037, pool-a-00052, pool-a-00067 and 3 more)"},
			fix:  "journalctl -u kubelet"},
	})
	if len(got) > 12 {
		t.Errorf("%d findings for %d nodes, want them folded:\n%s", len(got), n, dump(got))
	}
}
