package e2edoctor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
	"github.com/kubemetrics/metrics-server/test/fleet"
)

// The server's words for a kubelet certificate it refuses (package
// kubelet), which the doctor repeats as the fix.
const kubeletTLSFix = "have the kubelets serve certificates for their addresses signed by the cluster's CA " +
	"(serverTLSBootstrap: true in the KubeletConfiguration, then approve their CSRs) and give that CA with --kubelet-certificate-authority; " +
	"or, on a test cluster only, skip verification with --kubelet-insecure-tls; " +
	"or reach the kubelets at an address type their certificates name with --kubelet-preferred-address-types"

// crio is the fleet's failing summary: the kubelet's "Internal Error: "
// before the imageFs error cri-o's stats provider gives.
const crio = `Internal Error: failed to get imageFs stats: "unable to find data in memory cache"`

// breakNode puts fleet node i in mode m until the test ends, and returns
// its name and the address the server asks (InternalIP:10250).
func breakNode(t *testing.T, i int, m fleet.Mode) (name, addr string) {
	t.Helper()
	name = fleet.Config{Prefix: "doc"}.NodeName(i)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := e.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			addr = a.Address
		}
	}
	if err := e.fleet.SetMode(name, m); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.fleet.SetMode(name, fleet.ModeNormal); err != nil {
			t.Error(err)
		}
	})
	return name, addr
}

// TestNodeCertWithoutIPSAN: a kubelet whose certificate names only its host
// name is refused for the IP address the server asks; the other nodes are
// fine.
func TestNodeCertWithoutIPSAN(t *testing.T) {
	name, ip := breakNode(t, 1, fleet.ModeHostnameOnlyCert)
	r := runDoctor(t)
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
	expect(t, r, want{"node-tls", "node/" + name, doctor.StatusFail,
		fmt.Sprintf("node %s, %s:10250: the kubelet's serving certificate has no IP SAN for the address asked, %s (its SANs: DNS:%s)", name, ip, ip, name),
		kubeletTLSFix})
	expect(t, r, want{"node-tls", "nodes", doctor.StatusOK,
		"3 of 4 nodes: the kubelet's serving certificate is valid for the address the server asks (doc-00000, doc-00002, doc-00003)", ""})
	// No request went to the refused kubelet: no endpoint finding for it.
	for _, f := range r.findings {
		if f.Target == "node/"+name && (f.Check == "node-authz" || f.Check == "node-endpoint") {
			t.Errorf("the refused kubelet was asked: %s %s: %s", f.Check, f.Status, f.Message)
		}
	}
}

// TestNodeRefusesToken: a kubelet that authenticates no token answers 401
// on both endpoints; the doctor names webhook token authentication.
func TestNodeRefusesToken(t *testing.T) {
	name, _ := breakNode(t, 2, fleet.ModeRefuseToken)
	r := runDoctor(t)
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
	const fix = "enable it on the node: authentication.webhook.enabled: true in the KubeletConfiguration (kubelet flag --authentication-token-webhook), then restart the kubelet"
	for _, path := range []string{"/metrics/resource", "/stats/summary?only_cpu_and_memory=true"} {
		expect(t, r, want{"node-authz", "node/" + name, doctor.StatusFail,
			fmt.Sprintf("the kubelet of node %s answered 401 Unauthorized to %s with the token of ServiceAccount kube-system/metrics-server: its webhook token authentication is off or cannot reach the API server; the other endpoint fails too, so the server gets no metrics from this node", name, path),
			fix})
	}
	expect(t, r, want{"node-authz", "nodes", doctor.StatusOK,
		"3 of 4 nodes: the kubelet accepts the server's credentials (doc-00000, doc-00001, doc-00003)", ""})
}

// TestNodeSummaryFails: cri-o's summary error is a warning while
// /metrics/resource works (exit 0), and a failure once both endpoints
// fail (exit 1), quoting the kubelet's error text each time.
func TestNodeSummaryFails(t *testing.T) {
	name, _ := breakNode(t, 3, fleet.ModeSummary500)
	r := runDoctor(t)
	if r.code != 0 {
		t.Errorf("exit status %d with /metrics/resource working, want 0: %v", r.code, r)
	}
	const summaryFix = "see the kubelet's log on the node (journalctl -u kubelet) for this error (a container runtime's stats failing, such as cri-o's imageFs error); the server can use /metrics/resource instead (--kubelet-endpoint=auto or resource)"
	expect(t, r, want{"node-endpoint", "node/" + name, doctor.StatusWarn,
		fmt.Sprintf("node %s: /stats/summary fails: http status 500: %s; the server uses /metrics/resource, which works, and falls back to /stats/summary only when it fails", name, crio),
		summaryFix})

	if err := e.fleet.SetMode(name, fleet.ModeError500); err != nil {
		t.Fatal(err)
	}
	r = runDoctor(t)
	if r.code != 1 {
		t.Errorf("exit status %d with both endpoints failing, want 1", r.code)
	}
	expect(t, r, want{"node-endpoint", "node/" + name, doctor.StatusFail,
		fmt.Sprintf("node %s: /metrics/resource fails: http status 500: %s; the other endpoint fails too, so the server gets no metrics from this node", name, crio),
		"see the kubelet's log on the node (journalctl -u kubelet) for this error; with --kubelet-endpoint=auto the server falls back to /stats/summary"})
	expect(t, r, want{"node-endpoint", "node/" + name, doctor.StatusFail,
		fmt.Sprintf("node %s: /stats/summary fails: http status 500: %s; the other endpoint fails too, so the server gets no metrics from this node", name, crio),
		summaryFix})
}

// TestNodeClockSkew: a kubelet clock five minutes ahead is a warning that
// names the seconds; the server copes, so the doctor exits 0.
func TestNodeClockSkew(t *testing.T) {
	name := fleet.Config{Prefix: "doc"}.NodeName(0)
	if err := e.fleet.SetClockSkew(name, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.fleet.SetClockSkew(name, 0) })
	r := runDoctor(t)
	if r.code != 0 {
		t.Errorf("exit status %d, want 0: %v", r.code, r)
	}
	prefix := fmt.Sprintf("the newest sample of node %s's kubelet (/metrics/resource) is ", name)
	const suffix = " s ahead of this machine's clock (warned above 30s): the node's clock or this machine's is off (a sample far behind can also be stale stats)"
	found := false
	for _, f := range r.find("node-clock", "node/"+name) {
		secs, ok := strings.CutPrefix(f.Message, prefix)
		if secs, ok = strings.CutSuffix(secs, suffix); !ok || f.Status != doctor.StatusWarn {
			continue
		}
		// The fleet samples every second: the newest sample is at most a
		// second (and the request's time) old.
		if n, err := strconv.Atoi(secs); err != nil || n < 297 || n > 300 {
			t.Errorf("skew of %q s, want 298 to 300", secs)
		}
		found = true
	}
	if !found {
		t.Errorf("no node-clock warning for %s in %v", name, r)
	}
}
