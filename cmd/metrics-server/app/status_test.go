package app

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/pkg/nodeevents"
	"github.com/kubemetrics/metrics-server/pkg/status"
)

// Users of the status tests.
const (
	operatorToken = "operator-token-3a9c1e7b5d2f4a6c8e0b1d3f"
	userOperator  = "operator"      // granted get on /status/*, by token
	userCertOps   = "operator-cert" // the same, by a client certificate of the cluster CA
)

// statusCluster is a secure server among two nodes, one of which refuses
// connections, and a fake kube-apiserver for the operator's kubeconfig
// (pods and the APIService's caBundle).
type statusCluster struct {
	*secureServer
	kube *fake.Clientset
	// operatorAPI is the operator's kube-apiserver URL and ca its CA.
	operatorAPI string
	operatorCA  []byte
	refusedAddr string
}

func startStatusCluster(t *testing.T) *statusCluster {
	t.Helper()
	files, err := pki.GenerateCluster(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	auth := &fakeAuthAPI{
		clientToken: authAPIToken,
		tokens: map[string]authenticationv1.UserInfo{
			operatorToken: {Username: userOperator, Groups: []string{"system:authenticated"}},
			nobodyToken:   {Username: userNobody, Groups: []string{"system:authenticated"}},
		},
		grants: map[string][]accessRule{
			userOperator: {{"get", "/status/*"}},
			userCertOps:  {{"get", "/status/*"}},
		},
	}
	authSrv := auth.serve()
	t.Cleanup(authSrv.Close)
	authKubeconfig := writeAuthKubeconfig(t, authSrv)

	kubeletSrv := startDBKubelet(t)
	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	kube := fake.NewClientset(loopbackNode("worker-1", mustPort(t, kubeletSrv.URL)), loopbackNode("worker-2", int32(refused)))
	// The Running pods: db-0 on worker-1, web-0 on worker-2.
	meta := fakeMetadata(t, podMeta("ns1", "db-0", nil), podMeta("ns1", "web-0", nil))
	opts := secureOptions(files, authKubeconfig)
	addr, stop := runServer(t, opts, kubeletSecretToken, kube, meta)

	ca, err := os.ReadFile(files.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewTLSServer(operatorAPI(ca))
	t.Cleanup(api.Close)
	return &statusCluster{
		secureServer: &secureServer{addr: addr, files: files, auth: auth, Stop: stop},
		kube:         kube, operatorAPI: api.URL, operatorCA: pki.CertPEM(api.Certificate()),
		refusedAddr: fmt.Sprintf("127.0.0.1:%d", refused),
	}
}

// operatorAPI is what metrics-server status reads from the kube-apiserver:
// pods (db-0 and web-0 Running, job-1 Succeeded) and the APIService whose
// caBundle is ca.
func operatorAPI(ca []byte) http.Handler {
	pod := func(name, node string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns1", Name: name},
			Spec:       corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase}}
	}
	objects := map[string]any{
		"/api/v1/namespaces/ns1/pods/db-0":  pod("db-0", "worker-1", corev1.PodRunning),
		"/api/v1/namespaces/ns1/pods/web-0": pod("web-0", "worker-2", corev1.PodRunning),
		"/api/v1/namespaces/ns1/pods/job-1": pod("job-1", "worker-1", corev1.PodSucceeded),
		"/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io": &apiregv1.APIService{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apiregistration.k8s.io/v1", Kind: "APIService"},
			ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.metrics.k8s.io"},
			Spec:       apiregv1.APIServiceSpec{CABundle: ca, Group: "metrics.k8s.io", Version: "v1beta1"},
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obj, ok := objects[r.URL.Path]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(&metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
				Status: metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound, Message: r.URL.Path + " not found"})
			return
		}
		writeJSON(w, obj)
	})
}

// kubeconfig writes the operator's kubeconfig for the fake kube-apiserver,
// with a token or a client certificate.
func (c *statusCluster) kubeconfig(t *testing.T, token string, cert []byte, key []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "operator.kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: c.operatorAPI, CertificateAuthorityData: c.operatorCA}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token, ClientCertificateData: cert, ClientKeyData: key}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// runStatus runs metrics-server status with args and returns its output.
func runStatus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newStatusCommand(&out)
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// squash makes runs of white space one space: tabwriter pads columns to
// their widest cell.
func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestStatusBehindDelegatedAuthorization: /status/* answers only a user
// granted get on it, by token or client certificate; anonymous gets 401.
func TestStatusBehindDelegatedAuthorization(t *testing.T) {
	c := startStatusCluster(t)
	certUser := issue(t, c.files, pki.ClusterCA, nil, userCertOps)
	tests := []struct {
		name     string
		who      caller
		path     string
		wantCode int
	}{
		{"anonymous", caller{}, "/status/nodes", http.StatusUnauthorized},
		{"anonymous, a pod", caller{}, "/status/pods/ns1/db-0", http.StatusUnauthorized},
		{"unknown token", caller{token: unknownToken}, "/status/nodes", http.StatusUnauthorized},
		{"authenticated, not granted", caller{token: nobodyToken}, "/status/nodes", http.StatusForbidden},
		{"authenticated, not granted, one node", caller{token: nobodyToken}, "/status/nodes/worker-1", http.StatusForbidden},
		{"granted by token", caller{token: operatorToken}, "/status/nodes", http.StatusOK},
		{"granted by token, a pod", caller{token: operatorToken}, "/status/pods/ns1/db-0", http.StatusOK},
		{"granted by client certificate", caller{cert: certUser}, "/status/nodes/worker-2", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := c.call(t, tt.who, http.MethodGet, tt.path, "")
			if code != tt.wantCode {
				t.Errorf("GET %s: %d, want %d: %s", tt.path, code, tt.wantCode, body)
			}
		})
	}
	var asked []string
	c.auth.mu.Lock()
	for _, r := range c.auth.reviews {
		if r.NonResourceAttributes != nil {
			asked = append(asked, r.User+" "+r.NonResourceAttributes.Verb+" "+r.NonResourceAttributes.Path)
		}
	}
	c.auth.mu.Unlock()
	for _, want := range []string{"nobody get /status/nodes", "operator get /status/pods/ns1/db-0", "operator-cert get /status/nodes/worker-2"} {
		if !strings.Contains(strings.Join(asked, "\n"), want) {
			t.Errorf("no access review %q among:\n%s", want, strings.Join(asked, "\n"))
		}
	}
}

// TestStatusCommand: the server's node statuses, a pod's reason and the
// node events, read as an operator would, with metrics-server status.
func TestStatusCommand(t *testing.T) {
	c := startStatusCluster(t)
	server := "--server=https://" + c.addr
	caFile := "--certificate-authority=" + c.files.Path(pki.ClusterCA+".crt")
	kc := "--kubeconfig=" + c.kubeconfig(t, operatorToken, nil, nil)

	// Rates for db-0 need two scrapes of worker-1; worker-2 fails each.
	waitFor(t, 30*time.Second, func() error {
		out, err := runStatus(t, "pod", "ns1/db-0", kc, server, caFile)
		if err != nil || !strings.Contains(squash(out), "Served: yes") {
			return fmt.Errorf("db-0 not served yet: %v\n%s", err, out)
		}
		return nil
	})

	t.Run("table of nodes", func(t *testing.T) {
		out, err := runStatus(t, kc, server, caFile)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(out, "\n")
		if len(lines) < 3 || !strings.HasPrefix(lines[1], "worker-2") || !strings.HasPrefix(lines[2], "worker-1") {
			t.Fatalf("want the failing worker-2 first, then worker-1:\n%s", out)
		}
		for _, want := range []string{"failing (connection)", c.refusedAddr, "/metrics/resource", "connection refused", "2 nodes scraped, 1 failing"} {
			if !strings.Contains(lines[1]+lines[len(lines)-2], want) {
				t.Errorf("worker-2's row or the summary does not say %q:\n%s", want, out)
			}
		}
		if !strings.Contains(lines[2], " ok ") || !strings.Contains(lines[2], " fast ") {
			t.Errorf("worker-1 is not ok in the fast lane:\n%s", out)
		}
	})

	t.Run("failing nodes, as JSON, verified with the APIService's caBundle", func(t *testing.T) {
		// Through the name a port-forward would verify.
		out, err := runStatus(t, kc, server, "--tls-server-name="+pki.MetricsServerDNS, "--failing", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var list status.NodeList
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		if list.Total != 2 || list.Failing != 1 || len(list.Nodes) != 1 || list.Nodes[0].Node != "worker-2" ||
			list.Nodes[0].ConsecutiveFailures < 2 || list.Nodes[0].LastSuccess != nil || list.Nodes[0].Address != c.refusedAddr {
			t.Errorf("failing nodes: %s", out)
		}
	})

	t.Run("one node", func(t *testing.T) {
		out, err := runStatus(t, "worker-1", kc, server, caFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"State: ok", "Endpoint: /metrics/resource", "Failures in a row: 0", "Last success:"} {
			if !strings.Contains(squash(out), want) {
				t.Errorf("does not say %q:\n%s", want, out)
			}
		}
		if _, err := runStatus(t, "worker-9", kc, server, caFile); err == nil || !strings.Contains(err.Error(), `node "worker-9" is not scraped`) {
			t.Errorf("unknown node: %v", err)
		}
	})

	t.Run("pods", func(t *testing.T) {
		tests := []struct {
			pod       string
			wantWords []string
		}{
			{"ns1/db-0", []string{"Served: yes", "Node: worker-1"}},
			// Its node fails, so no kubelet reports it: the command adds
			// the node it is bound to.
			{"ns1/web-0", []string{"Served: no", "Reason: NotReported", "Node: worker-2", "failing (connection)", "connection refused"}},
			{"ns1/job-1", []string{"Served: no", "Reason: NotRunning", "Succeeded"}},
		}
		for _, tt := range tests {
			t.Run(tt.pod, func(t *testing.T) {
				out, err := runStatus(t, "pod", tt.pod, kc, server, caFile)
				if err != nil {
					t.Fatal(err)
				}
				for _, want := range tt.wantWords {
					if !strings.Contains(squash(out), want) {
						t.Errorf("does not say %q:\n%s", want, out)
					}
				}
			})
		}
	})

	t.Run("a client certificate", func(t *testing.T) {
		cert := issue(t, c.files, pki.ClusterCA, nil, userCertOps)
		key, err := pki.KeyPEM(cert.PrivateKey.(crypto.Signer))
		if err != nil {
			t.Fatal(err)
		}
		byCert := "--kubeconfig=" + c.kubeconfig(t, "", pki.CertPEM(cert.Leaf), key)
		out, err := runStatus(t, "worker-2", byCert, server, caFile)
		if err != nil || !strings.Contains(squash(out), "State: failing (connection)") {
			t.Errorf("worker-2 by client certificate: %v\n%s", err, out)
		}
	})

	t.Run("refusals say what to do", func(t *testing.T) {
		nobody := "--kubeconfig=" + c.kubeconfig(t, nobodyToken, nil, nil)
		if _, err := runStatus(t, nobody, server, caFile); err == nil || !strings.Contains(err.Error(), "system:metrics-server-status-reader") {
			t.Errorf("not granted: %v", err)
		}
		stranger := "--kubeconfig=" + c.kubeconfig(t, unknownToken, nil, nil)
		if _, err := runStatus(t, stranger, server, caFile); err == nil || !strings.Contains(err.Error(), "did not accept your credentials (401)") {
			t.Errorf("unknown token: %v", err)
		}
		// The front-proxy CA did not sign the serving certificate.
		wrongCA := "--certificate-authority=" + c.files.Path(pki.FrontProxyCA+".crt")
		if _, err := runStatus(t, kc, server, wrongCA); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("wrong CA: %v", err)
		}
		if _, err := runStatus(t, kc, server, "pod", "db-0"); err == nil || !strings.Contains(err.Error(), "NAMESPACE/NAME") {
			t.Errorf("pod without namespace: %v", err)
		}
	})

	t.Run("node events", func(t *testing.T) {
		waitFor(t, 10*time.Second, func() error {
			list, err := c.kube.EventsV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				return err
			}
			var seen []string
			for _, e := range list.Items {
				seen = append(seen, e.Regarding.Name+" "+e.Type+" "+e.Reason)
			}
			if len(seen) != 1 || seen[0] != "worker-2 Warning "+nodeevents.ReasonFailed {
				return fmt.Errorf("events %q, want worker-2's one Warning", seen)
			}
			if !strings.Contains(list.Items[0].Note, "connection refused") {
				return fmt.Errorf("the event's note does not give the error: %s", list.Items[0].Note)
			}
			return nil
		})
	})
}
