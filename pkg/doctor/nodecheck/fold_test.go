package nodecheck

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubemetrics/metrics-server/pkg/doctor"
)

const noIPSAN = "the kubelet's serving certificate has no IP SAN for the address asked"

// fleetResults makes the TLS results of n nodes, of which those whose
// index bad says are refused for lacking the IP SAN.
func fleetResults(n int, bad func(i int) bool) [][]result {
	out := make([][]result, n)
	for i := range out {
		name := fmt.Sprintf("pool-a-%05d", i)
		r := result{node: name, cause: "valid", Finding: doctor.Finding{Check: CheckTLS, Target: "node/" + name, Status: doctor.StatusOK, Message: "fine"}}
		if bad(i) {
			r.cause, r.Status = noIPSAN, doctor.StatusFail
			r.Message, r.Fix = fmt.Sprintf("node %s: no IP SAN for 10.1.%d.%d", name, i/250, i%250), "serverTLSBootstrap"
		}
		out[i] = []result{r}
	}
	return out
}

// TestFold: thousands of nodes fold into one finding per check and cause,
// counted and with the first few names; a few nodes are listed one by one;
// Detail lists everything.
func TestFold(t *testing.T) {
	every := func(k int) func(int) bool { return func(i int) bool { return i%k == 3 } }
	for _, tt := range []struct {
		name   string
		n      int
		bad    func(int) bool
		detail bool
		want   []doctor.Finding
	}{
		{
			name: "5,000 nodes, 500 without the IP SAN", n: 5000, bad: every(10),
			want: []doctor.Finding{
				{Check: CheckTLS, Target: "nodes", Status: doctor.StatusFail,
					Message: "500 of 5,000 nodes: " + noIPSAN + " (pool-a-00003, pool-a-00013, pool-a-00023, pool-a-00033, pool-a-00043 and 495 more)",
					Fix:     "serverTLSBootstrap", Detail: "node/pool-a-00003: node pool-a-00003: no IP SAN for 10.1.0.3"},
				{Check: CheckTLS, Target: "nodes", Status: doctor.StatusOK, Message: "4,500 of 5,000 nodes: valid (pool-a-00000, pool-a-00001, pool-a-00002, pool-a-00004, pool-a-00005 and 4,495 more)"},
			},
		},
		{
			name: "four nodes, one failing: listed by node, the ok ones folded", n: 4, bad: every(10),
			want: []doctor.Finding{
				{Check: CheckTLS, Target: "node/pool-a-00003", Status: doctor.StatusFail, Message: "node pool-a-00003: no IP SAN for 10.1.0.3", Fix: "serverTLSBootstrap"},
				{Check: CheckTLS, Target: "nodes", Status: doctor.StatusOK, Message: "3 of 4 nodes: valid (pool-a-00000, pool-a-00001, pool-a-00002)"},
			},
		},
		{
			name: "one node: its own finding", n: 1, bad: func(int) bool { return false },
			want: []doctor.Finding{{Check: CheckTLS, Target: "node/pool-a-00000", Status: doctor.StatusOK, Message: "fine"}},
		},
		{
			name: "detail: every node", n: 2, bad: func(i int) bool { return i == 1 }, detail: true,
			want: []doctor.Finding{
				{Check: CheckTLS, Target: "node/pool-a-00001", Status: doctor.StatusFail, Message: "node pool-a-00001: no IP SAN for 10.1.0.1", Fix: "serverTLSBootstrap"},
				{Check: CheckTLS, Target: "node/pool-a-00000", Status: doctor.StatusOK, Message: "fine"},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := fold(fleetResults(tt.n, tt.bad), tt.n, Input{Detail: tt.detail}.withDefaults())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fold (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFoldOrder: check order first, then failures before warnings before
// ok.
func TestFoldOrder(t *testing.T) {
	r := func(node, check string, s doctor.Status) []result {
		return []result{{node: node, cause: check + string(s), Finding: doctor.Finding{Check: check, Target: "node/" + node, Status: s}}}
	}
	got := fold([][]result{
		r("a", CheckClock, doctor.StatusWarn),
		r("b", CheckEndpoint, doctor.StatusOK),
		r("c", CheckTLS, doctor.StatusOK),
		r("d", CheckTLS, doctor.StatusWarn),
		r("e", CheckTLS, doctor.StatusFail),
		r("f", CheckAddress, doctor.StatusFail),
	}, 6, Input{}.withDefaults())
	var order []string
	for _, f := range got {
		order = append(order, f.Check+"/"+string(f.Status))
	}
	want := []string{"node-address/fail", "node-tls/fail", "node-tls/warn", "node-tls/ok", "node-endpoint/ok", "node-clock/warn"}
	if diff := cmp.Diff(want, order); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestClockHint: every node off in the same direction points at this
// machine's clock; a mix does not.
func TestClockHint(t *testing.T) {
	clockOf := func(node, cause string, s doctor.Status) []result {
		return []result{{node: node, cause: cause, Finding: doctor.Finding{Check: CheckClock, Target: "node/" + node, Status: s}}}
	}
	ahead := "the kubelet's clock is more than 30s ahead of this machine's"
	behind := "the kubelet's clock is more than 30s behind this machine's"
	for _, tt := range []struct {
		name    string
		results [][]result
		want    string
	}{
		{name: "all ahead", results: [][]result{clockOf("a", ahead, doctor.StatusWarn), clockOf("b", ahead, doctor.StatusWarn), clockOf("c", ahead, doctor.StatusWarn)},
			want: "the clocks of all 3 nodes compared are more than 30s ahead of this machine's"},
		{name: "all behind", results: [][]result{clockOf("a", behind, doctor.StatusWarn), clockOf("b", behind, doctor.StatusWarn)},
			want: "the clocks of all 2 nodes compared are more than 30s behind this machine's"},
		{name: "one node only", results: [][]result{clockOf("a", ahead, doctor.StatusWarn)}},
		{name: "mixed", results: [][]result{clockOf("a", ahead, doctor.StatusWarn), clockOf("b", "fine", doctor.StatusOK)}},
		{name: "both ways", results: [][]result{clockOf("a", ahead, doctor.StatusWarn), clockOf("b", behind, doctor.StatusWarn)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := clockHint(tt.results, Input{}.withDefaults())
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("hint %+v, want none", got)
			case tt.want != "" && (len(got) != 1 || !containsAll(got[0].Message, []string{tt.want}) || got[0].Target != "this machine"):
				t.Errorf("hint %+v, want one saying %q", got, tt.want)
			}
		})
	}
}

// TestConnectHint: no node accepting a connection points at where doctor
// runs; one node accepting does not.
func TestConnectHint(t *testing.T) {
	dial := func(node string, s doctor.Status) []result {
		return []result{{node: node, Finding: doctor.Finding{Check: CheckConnect, Target: "node/" + node, Status: s}}}
	}
	for _, tt := range []struct {
		name    string
		results [][]result
		want    bool
	}{
		{name: "none accepts", results: [][]result{dial("a", doctor.StatusFail), dial("b", doctor.StatusFail), dial("c", doctor.StatusFail)}, want: true},
		{name: "one accepts", results: [][]result{dial("a", doctor.StatusFail), dial("b", doctor.StatusOK)}},
		{name: "one node only", results: [][]result{dial("a", doctor.StatusFail)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := connectHint(tt.results)
			if has := len(got) == 1 && got[0].Target == "this machine" && containsAll(got[0].Message, []string{"not one of the 3 kubelets dialled accepts connections from this machine"}); has != tt.want {
				t.Errorf("hint %+v, want one: %v", got, tt.want)
			}
		})
	}
}

func TestCount(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 5000: "5,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestSample: beyond the limit, an even spread over the names.
func TestSample(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 5000 {
		nodes = append(nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pool-a-%05d", i)}})
	}
	got := sample(nodes, 1000)
	if len(got) != 1000 {
		t.Fatalf("%d nodes sampled, want 1000", len(got))
	}
	for i, n := range got {
		if want := fmt.Sprintf("pool-a-%05d", 5*i); n.Name != want {
			t.Fatalf("sample[%d] = %s, want %s", i, n.Name, want)
		}
	}
	if got := sample(nodes[:10], 1000); len(got) != 10 {
		t.Errorf("%d of 10 nodes sampled under the limit", len(got))
	}
}
