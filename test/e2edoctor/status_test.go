package e2edoctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/pkg/status"
	"github.com/kubemetrics/metrics-server/test/fleet"
)

// resolution is the healthy server's --metric-resolution (setUp).
const resolution = 15 * time.Second

// statusRun is one run of `metrics-server status`.
type statusRun struct {
	code           int
	stdout, stderr string
}

func (r statusRun) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runStatusAs runs `metrics-server status` as an operator would against our
// server's secure port, verifying it with the cluster CA that signed its
// serving certificate, with the credentials of kubeconfig, plus args.
func runStatusAs(t *testing.T, kubeconfig string, args ...string) statusRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	all := append([]string{"status", "--server", fmt.Sprintf("https://127.0.0.1:%d", e.port),
		"--certificate-authority", e.cluster.PKI.Path(pki.ClusterCA + ".crt"),
		"--kubeconfig", kubeconfig, "--timeout", "20s"}, args...)
	cmd := exec.CommandContext(ctx, e.binary, all...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := statusRun{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running %s %v: %v", e.binary, all, err)
	}
	return r
}

// statusJSON runs `status args -o json` as the admin, wants exit 0 and
// decodes the answer into v.
func statusJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	r := runStatusAs(t, e.cluster.AdminKubeconfig, append(args, "-o", "json")...)
	if r.code != 0 {
		t.Fatalf("status %v: %v", args, r)
	}
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("status %v -o json: %v\n%v", args, err, r)
	}
}

// waitFailures asks the server about node once a second until it has
// failed at least n times in a row, for at most limit.
func waitFailures(t *testing.T, node string, n int, limit time.Duration) status.Node {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var got status.Node
		statusJSON(t, &got, node)
		if got.ConsecutiveFailures >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s has %d failures in a row after %v, want %d: %+v", node, got.ConsecutiveFailures, limit, n, got)
		}
		time.Sleep(time.Second)
	}
}

// kubeletAddr is the host:port the server asks for a fleet node whose
// InternalIP is ip.
func kubeletAddr(ip string) string { return net.JoinHostPort(ip, "10250") }

// TestStatusNamesFailingNode: with one kubelet refusing the server's token,
// `metrics-server status` lists it first with its address, endpoint and
// error, the healthy nodes with a recent success; one node, --failing, the
// exit statuses, and who may read it (the status reader role, 403
// without).
func TestStatusNamesFailingNode(t *testing.T) {
	name, ip := breakNode(t, 1, fleet.ModeRefuseToken)
	began := time.Now()
	waitFailures(t, name, 2, 3*resolution)
	t.Logf("node %s failed twice %v after it broke", name, time.Since(began).Round(time.Second))
	const cause = "http status 401: Unauthorized"
	// Both endpoints refuse the token: the server tried each.
	bothRefused := regexp.MustCompile(`^resource /metrics/resource: http status 401: Unauthorized\s*; summary /stats/summary: http status 401: Unauthorized$`)

	var list status.NodeList
	statusJSON(t, &list)
	if list.Total != nodes || list.Failing != 1 || len(list.Nodes) != nodes || list.Truncated {
		t.Fatalf("list: total %d, failing %d, %d shown, truncated %v; want %d, 1, %d, false: %+v", list.Total, list.Failing, len(list.Nodes), list.Truncated, nodes, nodes, list)
	}
	broken := list.Nodes[0]
	if broken.Node != name || broken.Address != kubeletAddr(ip) || broken.Reason != "http_status" ||
		broken.ConsecutiveFailures < 2 || !strings.Contains(broken.LastError, cause) {
		t.Errorf("first node %+v, want %s at %s failing (http_status) twice or more with %q", broken, name, kubeletAddr(ip), cause)
	}
	if broken.Endpoint != "/metrics/resource" && broken.Endpoint != "/stats/summary" {
		t.Errorf("broken node's endpoint %q, want a kubelet metrics path", broken.Endpoint)
	}
	for _, n := range list.Nodes[1:] {
		if n.Failing() || n.LastSuccess == nil || time.Since(*n.LastSuccess) > resolution+10*time.Second || n.Endpoint != "/metrics/resource" {
			t.Errorf("healthy node %+v: want ok, /metrics/resource, a success within %v", n, resolution+10*time.Second)
		}
	}

	// The table people read: the broken row first, with what the JSON says.
	r := runStatusAs(t, e.cluster.AdminKubeconfig)
	t.Logf("metrics-server status with %s broken:\n%s", name, r.stdout)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != nodes+3 {
		t.Fatalf("table: want exit 0 and %d lines: %v", nodes+3, r)
	}
	row := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `\s+failing \(http_status\)\s+(\d+)\s+\S+ ago\s+\S+\s+fast\s+` +
		regexp.QuoteMeta(broken.Address) + `\s+` + regexp.QuoteMeta(broken.Endpoint) + `\s+(.+)$`)
	if m := row.FindStringSubmatch(lines[1]); m == nil {
		t.Errorf("first row %q does not match %s", lines[1], row)
	} else if f, _ := strconv.Atoi(m[1]); f < 2 || !bothRefused.MatchString(m[2]) {
		t.Errorf("first row counts %d failures and says %q; want 2 or more, and %s", f, m[2], bothRefused)
	}
	// A healthy row ends with its ENDPOINT: no padding for the empty LAST ERROR.
	healthy := regexp.MustCompile(`^doc-\d{5}\s+ok\s+0\s+\d+s ago\s+\S+\s+fast\s+127\.42\.\S+:10250\s+/metrics/resource$`)
	for _, l := range lines[2 : nodes+1] {
		if !healthy.MatchString(l) {
			t.Errorf("healthy row %q does not match %s", l, healthy)
		}
	}
	if want := fmt.Sprintf("%d nodes scraped, 1 failing; %d nodes shown", nodes, nodes); lines[len(lines)-1] != want {
		t.Errorf("table ends with %q, want %q", lines[len(lines)-1], want)
	}

	// One node: its whole error, naming the node, address and endpoint.
	r = runStatusAs(t, e.cluster.AdminKubeconfig, name)
	for _, want := range []string{
		`Node:\s+` + regexp.QuoteMeta(name), `State:\s+failing \(http_status\)`, `Address:\s+` + regexp.QuoteMeta(broken.Address),
		`Endpoint:\s+` + regexp.QuoteMeta(broken.Endpoint), `Last success:\s+\d{4}-\d\d-\d\dT\S+Z \(\S+ ago\)`, `Failures in a row:\s+([2-9]|\d\d)$`,
		`Last error:\s+` + regexp.QuoteMeta(fmt.Sprintf("scraping node %q at %s", name, broken.Address)) + `.*` + regexp.QuoteMeta(cause),
	} {
		if r.code != 0 || !regexp.MustCompile(`(?m)^`+want).MatchString(r.stdout) {
			t.Errorf("status %s has no line %s: %v", name, want, r)
		}
	}

	// --failing: the broken node alone.
	var failing status.NodeList
	statusJSON(t, &failing, "--failing")
	if len(failing.Nodes) != 1 || failing.Nodes[0].Node != name || failing.Total != nodes {
		t.Errorf("--failing lists %+v, want %s alone of %d", failing.Nodes, name, nodes)
	}
	r = runStatusAs(t, e.cluster.AdminKubeconfig, "--failing")
	if want := fmt.Sprintf("\n\n%d nodes scraped, 1 failing; 1 failing node shown\n", nodes); r.code != 0 || !strings.HasSuffix(r.stdout, want) ||
		strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("status --failing: want one row and %q: %v", want, r)
	}

	closed := closedPort(t)
	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown node", []string{"doc-99999"}, 1, `metrics-server answered 404: node "doc-99999" is not scraped`},
		{"nothing listens", []string{"--server", "https://127.0.0.1:" + closed}, 1, "asking metrics-server at https://127.0.0.1:" + closed},
		{"bad output", []string{"-o", "yaml"}, 2, `--output="yaml": use table or json`},
		{"bad pod", []string{"pod", "web"}, 2, `pod "web": give NAMESPACE/NAME`},
	} {
		r := runStatusAs(t, e.cluster.AdminKubeconfig, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.stderr) {
			t.Errorf("%s: want exit %d and %q: %v", c.name, c.code, c.stderr, r)
		}
	}

	checkStatusAccess(t)
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	_ = l.Close()
	return port
}
