package app

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestReadyBackend: which pod and port the port-forward of metrics-server
// status goes to. (The forward itself needs a kubelet and a container
// runtime, which the tests here do not have.)
func TestReadyBackend(t *testing.T) {
	svc := func(target intstr.IntOrString) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "metrics-server"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"k8s-app": "metrics-server"},
				Ports: []corev1.ServicePort{{Name: "metrics", Port: 8080}, {Name: "https", Port: 443, TargetPort: target}}}}
	}
	pod := func(name string, ready bool, deleting bool) *corev1.Pod {
		cond := corev1.ConditionFalse
		if ready {
			cond = corev1.ConditionTrue
		}
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name, Labels: map[string]string{"k8s-app": "metrics-server"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "metrics-server",
				Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 10250}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: cond}}},
		}
		if deleting {
			now := metav1.NewTime(time.Now())
			p.DeletionTimestamp = &now
		}
		return p
	}
	tests := []struct {
		name     string
		objects  []corev1.Pod
		target   intstr.IntOrString
		wantPod  string
		wantPort int
		wantErr  string
	}{
		{name: "named target port", objects: []corev1.Pod{*pod("ms-a", false, false), *pod("ms-b", true, false)},
			target: intstr.FromString("https"), wantPod: "ms-b", wantPort: 10250},
		{name: "numbered target port", objects: []corev1.Pod{*pod("ms-a", true, false)}, target: intstr.FromInt32(4443), wantPod: "ms-a", wantPort: 4443},
		{name: "no target port: the port", objects: []corev1.Pod{*pod("ms-a", true, false)}, wantPod: "ms-a", wantPort: 443},
		{name: "a terminating pod is passed over", objects: []corev1.Pod{*pod("ms-a", true, true), *pod("ms-b", true, false)},
			target: intstr.FromString("https"), wantPod: "ms-b", wantPort: 10250},
		{name: "none ready", objects: []corev1.Pod{*pod("ms-a", false, false)}, wantErr: "no ready pod behind Service kube-system/metrics-server (1 selected: kubectl -n kube-system get pods -l k8s-app=metrics-server); when metrics-server runs outside the cluster (a process, as in the local playground), pass --server https://host:port of it"},
		{name: "unknown port name", objects: []corev1.Pod{*pod("ms-a", true, false)}, target: intstr.FromString("secure"), wantErr: `no container port named "secure"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kube := fake.NewClientset(svc(tt.target))
			for i := range tt.objects {
				if _, err := kube.CoreV1().Pods("kube-system").Create(context.Background(), &tt.objects[i], metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			p, port, err := readyBackend(context.Background(), kube, "kube-system", "metrics-server")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Name != tt.wantPod || port != tt.wantPort {
				t.Errorf("pod %s port %d, want %s port %d", p.Name, port, tt.wantPod, tt.wantPort)
			}
		})
	}
	if _, _, err := readyBackend(context.Background(), fake.NewClientset(), "kube-system", "metrics-server"); err == nil || !strings.Contains(err.Error(), "--server") {
		t.Errorf("no Service: %v, want the error to name --server", err)
	}
	// The local playground's Service (manifests/overlays/local): the
	// base's selector and ports, type ExternalName for localhost, and no
	// pod, since the server runs as a process.
	local := svc(intstr.FromString("https"))
	local.Spec.Type, local.Spec.ExternalName = corev1.ServiceTypeExternalName, "localhost"
	const want = "service kube-system/metrics-server is of type ExternalName (localhost): metrics-server runs outside the cluster, with no pod to port-forward to; pass --server https://host:port of it"
	if _, _, err := readyBackend(context.Background(), fake.NewClientset(local), "kube-system", "metrics-server"); err == nil || err.Error() != want {
		t.Errorf("the playground's Service: %v, want %q", err, want)
	}
}

// TestStatusArgs: the command's arguments and the path they ask.
func TestStatusArgs(t *testing.T) {
	tests := []struct {
		args    []string
		failing bool
		want    string
		wantPod bool
		wantErr string
	}{
		{want: "/status/nodes?limit=500"},
		{failing: true, want: "/status/nodes?failing=true&limit=500"},
		{args: []string{"ip-10-0-3-7.ec2.internal"}, want: "/status/nodes/ip-10-0-3-7.ec2.internal"},
		{args: []string{"pod", "kube-system/coredns-7db6d8ff4d-x2vzq"}, want: "/status/pods/kube-system/coredns-7db6d8ff4d-x2vzq", wantPod: true},
		{args: []string{"pod", "coredns"}, wantErr: "NAMESPACE/NAME"},
		{args: []string{"pod", "a/b/c"}, wantErr: "NAMESPACE/NAME"},
		{args: []string{"pod"}, wantErr: "unexpected arguments"},
		{args: []string{"worker-1", "worker-2"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, pod, err := statusPath(tt.args, tt.failing, 500)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want || pod != tt.wantPod {
				t.Errorf("path %q pod %v err %v, want %q %v", got, pod, err, tt.want, tt.wantPod)
			}
		})
	}
}

// TestStatusUsageErrors: flags and arguments refused before anything is
// asked, with exit status 2.
func TestStatusUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		wantText string
	}{
		{[]string{"-o", "yaml"}, `--output="yaml"`},
		{[]string{"--limit", "0"}, "--limit=0"},
		{[]string{"--limit", "5001"}, "--limit=5001"},
		{[]string{"--insecure-skip-tls-verify", "--certificate-authority", "/etc/ca.crt"}, "contradict"},
		{[]string{"--timeout", "0s"}, "--timeout=0s"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag; see metrics-server status --help"},
		{[]string{"pod", "web-0"}, "NAMESPACE/NAME"},
		// The kubeconfig is the operator's input too.
		{[]string{"--kubeconfig", "/nonexistent/kubeconfig"}, `--kubeconfig "/nonexistent/kubeconfig"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := runStatus(t, tt.args...)
			var exit *ExitError
			if !errors.As(err, &exit) || exit.Code != statusExitUsage || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %v, want exit status %d saying %q", err, statusExitUsage, tt.wantText)
			}
		})
	}
}

// TestStatusUnreachableAPIServer: when the kube-apiserver does not answer,
// status says so and names its address, instead of pointing at a CA flag
// that would not help; it is a failure (exit 1), not a usage error.
func TestStatusUnreachableAPIServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://" + addr, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: operatorToken}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	_, err = runStatus(t, "--kubeconfig", path, "--server", "https://127.0.0.1:1", "--timeout", "5s")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != statusExitFailed {
		t.Fatalf("error %v, want exit status %d", err, statusExitFailed)
	}
	msg := err.Error()
	if !strings.Contains(msg, "the kube-apiserver at https://"+addr+" did not answer") || strings.Contains(msg, "--certificate-authority") {
		t.Errorf("error %q, want it to say the kube-apiserver at https://%s did not answer, without the CA flag", msg, addr)
	}
}
