package localcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// KwokVersion is the kwok release run as a second kubelet implementation;
// test/tools/build-k8s.sh builds it into test/.cache/bin/kwok-<version>/.
const KwokVersion = "v0.8.0"

// KwokNodeAnnotation, set to "fake", marks the nodes a kwok started by
// StartKwok manages; it leaves every other node alone.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// KwokOptions say how to run kwok against the cluster.
type KwokOptions struct {
	// Binary is the kwok executable (test/.cache/bin/kwok-<KwokVersion>/kwok).
	Binary string
	// IP is the loopback address kwok serves its kubelet endpoints on. It
	// is shared by every node kwok manages and written as their
	// InternalIP; a node's metrics are at
	// /metrics/nodes/<node>/metrics/resource, the path of the node
	// annotation metrics.k8s.io/resource-metrics-path.
	IP net.IP
	// Port is kwok's kubelet port, written into the nodes' status
	// (daemonEndpoints.kubeletEndpoint.Port). Default 10250.
	Port int
}

// Kwok is a running kwok controller.
type Kwok struct {
	proc *process
	dir  string
}

// StartKwok runs kwok with the admin identity, managing the nodes annotated
// KwokNodeAnnotation=fake: it marks them Ready and renews their Leases,
// runs the pods bound to them, and serves their /metrics/resource over
// HTTPS on o.IP with a serving certificate from the cluster's kubelet CA,
// so a metrics server that trusts that CA scrapes kwok's nodes as it
// scrapes real kubelets, with no --kubelet-insecure-tls.
//
// Its configuration comes from the kwok module itself, rendered with
// kubectl kustomize: the stages of kustomize/stage/fast and the Metric
// metrics-resource with the ClusterResourceUsage usage-from-annotation of
// kustomize/metrics/usage (pod annotations kwok.x-k8s.io/usage-cpu and
// kwok.x-k8s.io/usage-memory, default 1m and 1Mi a container). A node's
// usage is the sum of its pods'.
//
// StartKwok returns once kwok answers on its port; the caller stops it.
func (c *Cluster) StartKwok(ctx context.Context, o KwokOptions) (*Kwok, error) {
	if o.Port == 0 {
		o.Port = 10250
	}
	if o.IP == nil || !o.IP.IsLoopback() {
		return nil, fmt.Errorf("kwok must listen on a loopback address, not %v", o.IP)
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("kwok %s is missing (%w): build it with test/tools/build-k8s.sh kwok", KwokVersion, err)
	}
	dir := filepath.Join(c.opts.Dir, "kwok")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	config, err := c.writeKwokConfig(ctx, dir)
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadCA(c.PKI.Path(pki.KubeletCA+".crt"), c.PKI.Path(pki.KubeletCA+".key"))
	if err != nil {
		return nil, fmt.Errorf("reading the kubelet CA for kwok's serving certificate: %w", err)
	}
	kp, err := ca.Issue(pki.Request{CommonName: "kwok", IPs: []net.IP{o.IP}, Server: true})
	if err != nil {
		return nil, err
	}
	if err := pki.WritePair(dir, "serving", kp.Cert, kp.Key); err != nil {
		return nil, err
	}
	address := net.JoinHostPort(o.IP.String(), strconv.Itoa(o.Port))
	// KWOK_WORKDIR keeps kwok from reading a user's ~/.kwok/kwok.yaml.
	p, err := startWithEnv(c.opts.Dir, "kwok", o.Binary, []string{"KWOK_WORKDIR=" + dir},
		"--kubeconfig", c.AdminKubeconfig,
		"--config", config,
		"--manage-nodes-with-annotation-selector", KwokNodeAnnotation+"=fake",
		"--node-ip", o.IP.String(), "--node-port", strconv.Itoa(o.Port),
		"--server-address", address,
		"--tls-cert-file", filepath.Join(dir, "serving.crt"), "--tls-private-key-file", filepath.Join(dir, "serving.key"),
	)
	if err != nil {
		return nil, err
	}
	k := &Kwok{proc: p, dir: c.opts.Dir}
	if err := k.waitHealthy(ctx, "https://"+address+"/healthz", ca.Cert); err != nil {
		k.Stop()
		return nil, err
	}
	return k, nil
}

// writeKwokConfig renders kwok's stages and metrics from its module into
// dir/config.yaml and returns that path.
func (c *Cluster) writeKwokConfig(ctx context.Context, dir string) (string, error) {
	module, err := kwokModuleDir(ctx)
	if err != nil {
		return "", err
	}
	var config bytes.Buffer
	for _, k := range []string{"kustomize/stage/fast", "kustomize/metrics/usage"} {
		out, err := c.Kubectl(ctx, "kustomize", filepath.Join(module, k))
		if err != nil {
			return "", fmt.Errorf("rendering kwok's %s: %w", k, err)
		}
		config.WriteString("---\n")
		config.WriteString(out)
	}
	path := filepath.Join(dir, "config.yaml")
	return path, os.WriteFile(path, config.Bytes(), 0o644)
}

// kwokModuleDir is the folder of the sigs.k8s.io/kwok module at
// KwokVersion in the Go module cache, downloaded if needed (building kwok
// has already put it there).
func kwokModuleDir(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "sigs.k8s.io/kwok@"+KwokVersion)
	// Outside any module, so no go.mod or go.sum is touched.
	cmd.Dir = os.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m.Error != "" || m.Dir == "" || runErr != nil {
		return "", fmt.Errorf("locating the kwok %s module with go mod download: %v %s %s %s", KwokVersion, runErr, err, m.Error, errb.String())
	}
	return m.Dir, nil
}

// waitHealthy polls kwok's /healthz, trusting only ca, until it answers 200.
func (k *Kwok) waitHealthy(ctx context.Context, url string, ca *x509.Certificate) error {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer hc.CloseIdleConnections()
	return poll(ctx, "kwok at "+url, 250*time.Millisecond, time.Minute, func() error {
		if done, err := k.proc.exited(); done {
			return permanent{fmt.Errorf("kwok exited (%v); see %s", err, filepath.Join(k.dir, "logs", "kwok.log"))}
		}
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// Stop ends kwok. The nodes and pods it managed stay in the API.
func (k *Kwok) Stop() {
	k.proc.stop()
	_ = os.Remove(filepath.Join(k.dir, "pids", "kwok"))
}
