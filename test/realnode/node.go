//go:build realnode

// Package realnode runs a real kubelet v1.37.2 on a real containerd on this
// machine, joined to a local control plane (test/localcluster), so the
// scraper and the server can be checked against the kubelet's own
// /metrics/resource and /stats/summary instead of an emulator.
//
// It needs root, containerd, runc and the CNI plugins, so it is built only
// with the `realnode` tag (`make real-node`); `go vet ./...` and `go test
// ./...` never compile it. Everything it starts lives under its Dir and a
// bridge of its own (10.45.0.1/24 on kmrn45): containerd with its own root,
// state and socket, a CNI config (bridge + host-local + loopback), the
// kubelet with its own root dir, webhook authentication and authorization
// and a serving certificate for the bridge IP signed by the cluster's
// kubelet CA. Stop undoes all of it: processes, mounts, pod cgroups, the
// bridge.
package realnode

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/localcluster"
	"github.com/kubemetrics/metrics-server/test/ociimage"
)

// Fixed names of this machine-wide setup; address base 45 of the test suite.
const (
	// Bridge is the Linux bridge the pods and the kubelet's address live on.
	Bridge = "kmrn45"
	// NodeIP is the kubelet's address: the bridge's. The kubelet refuses a
	// loopback --node-ip ("nodeIP can't be loopback address").
	NodeIP = "10.45.0.1"
	// PodCIDR is the host-local range of the pods.
	PodCIDR = "10.45.0.0/24"
	// NodeName is the Node the kubelet registers.
	NodeName = "realnode-45"
	// KubeletPort is the kubelet's HTTPS port, bound on NodeIP only.
	KubeletPort = 10250
	// PauseImage is containerd 1.6's default sandbox image.
	PauseImage = "registry.k8s.io/pause:3.6"
	// WorkloadImage runs cmd/workload.
	WorkloadImage = "kubemetrics.local/realnode-workload:v1"
)

// Options say where things are.
type Options struct {
	// Dir holds everything: the control plane, containerd root and state,
	// CNI config, kubelet root, certificates, logs.
	Dir string
	// BinDir holds the kubelet, kube-proxy and the control plane's
	// binaries (test/.cache/bin/v1.37.2).
	BinDir string
	// WorkloadBinary is the static cmd/workload binary for the pause and
	// workload images.
	WorkloadBinary string
	// ImageTars are more image tarballs (docker save format) to import,
	// such as our server's from `make image`.
	ImageTars []string
	// Cluster tunes the control plane; Dir, BinDir, Address and Logf are
	// set by Up.
	Cluster localcluster.Options
	Logf    func(format string, args ...any)
}

// ServingCert says where the kubelet's serving certificate comes from.
type ServingCert string

const (
	// ServingCertBootstrap is serverTLSBootstrap: the kubelet asks for a
	// kubernetes.io/kubelet-serving certificate with a CSR naming its
	// addresses, Up approves it as an operator does, and the controller
	// manager signs it with the cluster CA. Pods verify it with their
	// ServiceAccount's ca.crt, as on a kubeadm cluster that turned it on.
	ServingCertBootstrap ServingCert = "bootstrap"
	// ServingCertSelfSigned is the kubelet's default: with no certificate
	// and no bootstrap it makes its own, for its hostname only (no IP
	// SAN), signed by a CA of its own.
	ServingCertSelfSigned ServingCert = "self-signed"
)

// Node is a running control plane, containerd, kubelet and kube-proxy.
type Node struct {
	o       Options
	Cluster *localcluster.Cluster
	Socket  string
	// Serving is where the kubelet's serving certificate comes from now.
	Serving    ServingCert
	containerd *exec.Cmd
	kubelet    *exec.Cmd
	kubeProxy  *exec.Cmd
	// kubeletExited is closed when the current kubelet exits.
	kubeletExited chan struct{}
	// lock is the machine-wide lock of real-node runs, held until Stop.
	lock *os.File
	logs []*os.File
}

// Missing names what this machine lacks to run a real node, or "" when it
// has it all.
func Missing() string {
	if os.Geteuid() != 0 {
		return "not root (containerd and the kubelet need root)"
	}
	for _, b := range []string{"containerd", "runc", "ctr", "ip", "iptables"} {
		if _, err := exec.LookPath(b); err != nil {
			return "no " + b + " binary in PATH (apt-get install -y containerd runc containernetworking-plugins iproute2 iptables)"
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(CNIBinDir, p)); err != nil {
			return "no CNI plugin " + p + " in " + CNIBinDir + " (apt-get install -y containernetworking-plugins)"
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup/memory"); err != nil {
		if _, err2 := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err2 != nil {
			return "no cgroup filesystem at /sys/fs/cgroup"
		}
	}
	return ""
}

// CNIBinDir is where Debian's containernetworking-plugins puts the plugins.
const CNIBinDir = "/usr/lib/cni"

// Up brings up the bridge, the control plane bound on the bridge's
// address, containerd (with the images imported), the kubelet (its
// serving certificate bootstrapped) and kube-proxy, and waits until the
// Node is Ready. On error everything started is stopped again.
func Up(ctx context.Context, o Options) (n *Node, err error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	n = &Node{o: o, Socket: filepath.Join(o.Dir, "containerd.sock")}
	if n.lock, err = takeLock(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	// Holding the lock, anything of an earlier run is a leftover (a
	// killed test binary runs no deferred Stop): sweep it first.
	Sweep(o.Logf)
	for _, d := range []string{"containerd-root", "containerd-state", "cni", "kubelet", "pod-logs", "pki", "logs", "images"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return n, err
		}
	}
	if err := setUpBridge(ctx); err != nil {
		return n, err
	}
	co := o.Cluster
	co.BinDir, co.Dir, co.Address, co.Logf = o.BinDir, filepath.Join(o.Dir, "cluster"), NodeIP, o.Logf
	// kubectl logs and exec go through the kube-apiserver to the kubelet:
	// by the node's address (its host name resolves nowhere here), with
	// the kubelet's certificate verified and a client certificate the
	// kubelet's webhook authorizes (system:masters).
	pre := filepath.Join(co.Dir, "pki")
	co.APIServerArgs = append(co.APIServerArgs,
		"--kubelet-preferred-address-types", "InternalIP",
		"--kubelet-certificate-authority", filepath.Join(pre, pki.ClusterCA+".crt"),
		"--kubelet-client-certificate", filepath.Join(pre, pki.Admin+".crt"),
		"--kubelet-client-key", filepath.Join(pre, pki.Admin+".key"))
	if n.Cluster, err = localcluster.Start(ctx, co); err != nil {
		return n, fmt.Errorf("starting the control plane: %w", err)
	}
	if err := n.startContainerd(ctx); err != nil {
		return n, err
	}
	if err := n.importImages(ctx); err != nil {
		return n, err
	}
	if err := n.writeKubeletCredentials(); err != nil {
		return n, err
	}
	if err := n.StartKubelet(ctx, ServingCertBootstrap); err != nil {
		return n, err
	}
	if err := n.startKubeProxy(ctx); err != nil {
		return n, err
	}
	return n, nil
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// setUpBridge creates the bridge with the node IP, so the kubelet can bind
// and report it before the first pod exists; the CNI bridge plugin then
// finds it and adds the pods' veths.
func setUpBridge(ctx context.Context) error {
	if _, err := net.InterfaceByName(Bridge); err == nil {
		return fmt.Errorf("bridge %s already exists: a previous run left it (ip link del %s)", Bridge, Bridge)
	}
	for _, args := range [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", NodeIP + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	} {
		if err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

func (n *Node) logFile(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(n.o.Dir, "logs", name+".log"))
	if err != nil {
		return nil, err
	}
	n.logs = append(n.logs, f)
	return f, nil
}

func (n *Node) startContainerd(ctx context.Context) error {
	d := n.o.Dir
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "kubemetrics-realnode",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "isDefaultGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]],
              "dataDir": %q}},
    {"type": "loopback"}
  ]
}
`, Bridge, PodCIDR, NodeIP, filepath.Join(d, "cni-ipam"))
	if err := os.WriteFile(filepath.Join(d, "cni", "10-kubemetrics.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = %q
[ttrpc]
  address = %q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.45.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # This machine's root lacks CAP_SYS_RESOURCE (CapEff 0x1fffeffffff), so
  # runc cannot lower a process's oom_score_adj: the sandbox's -998 made
  # runc init fail ("can't get final child's PID from pipe: EOF"). Clamp
  # instead to containerd's own value.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
`, filepath.Join(d, "containerd-root"), filepath.Join(d, "containerd-state"), n.Socket, n.Socket+".ttrpc",
		PauseImage, CNIBinDir, filepath.Join(d, "cni"))
	path := filepath.Join(d, "containerd.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return err
	}
	log, err := n.logFile("containerd")
	if err != nil {
		return err
	}
	cmd := exec.Command("containerd", "--config", path)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting containerd: %w", err)
	}
	n.containerd = cmd
	n.o.Logf("containerd pid %d on %s", cmd.Process.Pid, n.Socket)
	return localcluster.Poll(ctx, "containerd answering on "+n.Socket, time.Second, 60*time.Second, func() error {
		return run(ctx, "ctr", "--address", n.Socket, "version")
	})
}

// importImages builds the pause and workload images from the workload
// binary and imports them into the CRI's namespace.
func (n *Node) importImages(ctx context.Context) error {
	img, err := ociimage.Build(ociimage.Options{Binary: n.o.WorkloadBinary, Version: "realnode", Revision: "realnode", Created: time.Unix(1, 0)})
	if err != nil {
		return err
	}
	for _, ref := range []string{PauseImage, WorkloadImage} {
		tar := filepath.Join(n.o.Dir, "images", strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		if err := ociimage.WriteFile(tar, ref, img); err != nil {
			return err
		}
		if err := run(ctx, "ctr", "--address", n.Socket, "-n", "k8s.io", "images", "import", tar); err != nil {
			return err
		}
		n.o.Logf("imported %s", ref)
	}
	for _, tar := range n.o.ImageTars {
		if err := n.ImportImage(ctx, tar); err != nil {
			return err
		}
	}
	return nil
}

// ImportImage imports an image tarball (docker save format) into the
// CRI's namespace of the node's containerd.
func (n *Node) ImportImage(ctx context.Context, tar string) error {
	if err := run(ctx, "ctr", "--address", n.Socket, "-n", "k8s.io", "images", "import", tar); err != nil {
		return err
	}
	n.o.Logf("imported %s", tar)
	return nil
}

// writeKubeletCredentials writes the kubelet's client certificate
// (system:node:<name>, as the kubelet's own TLS bootstrap would get) and
// its kubeconfig.
func (n *Node) writeKubeletCredentials() error {
	c := n.Cluster
	clusterCA, err := pki.LoadCA(c.PKI.Path(pki.ClusterCA+".crt"), c.PKI.Path(pki.ClusterCA+".key"))
	if err != nil {
		return err
	}
	pkiDir := filepath.Join(n.o.Dir, "pki")
	for _, id := range []struct{ file, cn, org string }{
		{"kubelet-client", "system:node:" + NodeName, "system:nodes"},
		// Bound to system:node-proxier by the default RBAC.
		{"kube-proxy-client", "system:kube-proxy", ""},
	} {
		req := pki.Request{CommonName: id.cn, Client: true}
		if id.org != "" {
			req.Organizations = []string{id.org}
		}
		kp, err := clusterCA.Issue(req)
		if err != nil {
			return err
		}
		if err := pki.WritePair(pkiDir, id.file, kp.Cert, kp.Key); err != nil {
			return err
		}
		if err := localcluster.WriteKubeconfig(filepath.Join(n.o.Dir, strings.TrimSuffix(id.file, "-client")+".kubeconfig"), c.APIServer,
			c.PKI.Path(pki.ClusterCA+".crt"), filepath.Join(pkiDir, id.file+".crt"), filepath.Join(pkiDir, id.file+".key"), ""); err != nil {
			return err
		}
	}
	return nil
}

// StartKubelet (re)starts the kubelet with its serving certificate from
// serving, and waits until the Node is Ready and the kubelet serves TLS
// with that certificate. A running kubelet is stopped first; its pods keep
// running in containerd and it finds them again.
func (n *Node) StartKubelet(ctx context.Context, serving ServingCert) error {
	if n.kubelet != nil {
		stopCmd(n.kubelet, n.o.Logf, "kubelet")
		<-n.kubeletExited
		n.kubelet = nil
	}
	c := n.Cluster
	d := n.o.Dir
	// A folder per mode: the kubelet keeps what it made or got there, and
	// a self-signed pair must not be found by a bootstrapping kubelet.
	certDir := filepath.Join(d, "pki", "serving-"+string(serving))
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.45.0.1
healthzPort: 10248
serverTLSBootstrap: %t
podLogsDir: %s
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %s
authorization:
  mode: Webhook
failSwapOn: false
resolvConf: ""
registerNode: true
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  imagefs.available: "1%%"
  nodefs.inodesFree: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
`, n.Socket, NodeIP, KubeletPort, serving == ServingCertBootstrap,
		filepath.Join(d, "pod-logs"), c.PKI.Path(pki.ClusterCA+".crt"))
	cfgPath := filepath.Join(d, "kubelet-config-"+string(serving)+".yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	log, err := n.logFile("kubelet-" + string(serving))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(n.o.BinDir, "kubelet"),
		"--config", cfgPath,
		"--kubeconfig", filepath.Join(d, "kubelet.kubeconfig"),
		"--root-dir", filepath.Join(d, "kubelet"),
		"--cert-dir", certDir,
		"--hostname-override", NodeName,
		"--node-ip", NodeIP,
		"--v", "2",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the kubelet: %w", err)
	}
	n.kubelet, n.Serving = cmd, serving
	n.o.Logf("kubelet pid %d, node %s at %s:%d, serving certificate %s", cmd.Process.Pid, NodeName, NodeIP, KubeletPort, serving)
	exited := make(chan struct{})
	n.kubeletExited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	alive := func() error {
		select {
		case <-exited:
			return localcluster.Permanent(fmt.Errorf("the kubelet exited: see %s", log.Name()))
		default:
			return nil
		}
	}
	// A certificate bootstrapped before is kept in certDir and reused.
	_, statErr := os.Stat(filepath.Join(certDir, "kubelet-server-current.pem"))
	if serving == ServingCertBootstrap && statErr != nil {
		if err := n.approveServingCSR(ctx, alive); err != nil {
			return err
		}
	}
	if err := localcluster.Poll(ctx, "kubelet serving TLS ("+string(serving)+" certificate)", time.Second, 2*time.Minute, func() error {
		if err := alive(); err != nil {
			return err
		}
		return n.checkServingCert(serving)
	}); err != nil {
		return err
	}
	return localcluster.Poll(ctx, "node "+NodeName+" Ready", time.Second, 3*time.Minute, func() error {
		if err := alive(); err != nil {
			return err
		}
		out, err := c.Kubectl(ctx, "get", "node", NodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "True" {
			return fmt.Errorf("Ready=%q", out)
		}
		return nil
	})
}

// PodLogs returns the logs the kubelet keeps of container in the pods of
// ns whose name begins with podPrefix, read from its log folder: kubectl
// logs goes through the kube-apiserver to the kubelet, which it cannot
// verify while the kubelet serves a self-signed certificate.
func (n *Node) PodLogs(ns, podPrefix, container string) (string, error) {
	files, err := filepath.Glob(filepath.Join(n.o.Dir, "pod-logs", ns+"_"+podPrefix+"*", container, "*.log"))
	if err != nil {
		return "", err
	}
	if len(files) == 0 {
		return "", fmt.Errorf("no log of container %s of a pod %s* in %s", container, podPrefix, ns)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.Write(data)
	}
	return b.String(), nil
}

// approveServingCSR approves the kubelet's pending kubernetes.io/kubelet-serving
// CSR, as an operator does (`kubectl certificate approve`): nothing in
// Kubernetes approves those by itself.
func (n *Node) approveServingCSR(ctx context.Context, alive func() error) error {
	var name string
	err := localcluster.Poll(ctx, "the kubelet's serving CSR", time.Second, 2*time.Minute, func() error {
		if err := alive(); err != nil {
			return err
		}
		out, err := n.Cluster.Kubectl(ctx, "get", "csr", "-o",
			`jsonpath={range .items[?(@.spec.signerName=="kubernetes.io/kubelet-serving")]}{.metadata.name} {.spec.username} {.status.conditions[*].type}{"\n"}{end}`)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[1] == "system:node:"+NodeName { // no condition yet: pending
				name = f[0]
				return nil
			}
		}
		return fmt.Errorf("no pending CSR of system:node:%s among %q", NodeName, out)
	})
	if err != nil {
		return err
	}
	if _, err := n.Cluster.Kubectl(ctx, "certificate", "approve", name); err != nil {
		return err
	}
	n.o.Logf("approved the kubelet's serving CSR %s", name)
	return nil
}

// checkServingCert dials the kubelet and checks its certificate is the one
// serving says: signed by the cluster CA for NodeIP, or self-signed
// without an IP SAN.
func (n *Node) checkServingCert(serving ServingCert) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(NodeIP, strconv.Itoa(KubeletPort)),
		&tls.Config{InsecureSkipVerify: true}) // only to read the certificate; nothing is sent
	if err != nil {
		return err
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return fmt.Errorf("the kubelet sent no certificate")
	}
	leaf := certs[0]
	switch serving {
	case ServingCertBootstrap:
		pool := x509.NewCertPool()
		pem, err := os.ReadFile(n.Cluster.PKI.Path(pki.ClusterCA + ".crt"))
		if err != nil {
			return err
		}
		pool.AppendCertsFromPEM(pem)
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: NodeIP}); err != nil {
			return fmt.Errorf("the kubelet's certificate (issuer %q) is not yet the bootstrapped one: %w", leaf.Issuer.CommonName, err)
		}
	case ServingCertSelfSigned:
		if len(leaf.IPAddresses) != 0 || leaf.Issuer.CommonName == "kubemetrics-local-cluster-ca" {
			return fmt.Errorf("the kubelet's certificate (issuer %q, IPs %v) is not self-signed", leaf.Issuer.CommonName, leaf.IPAddresses)
		}
	}
	return nil
}

// startKubeProxy runs kube-proxy in iptables mode, so pods reach Services
// (the `kubernetes` Service first: our server's in-cluster config dials
// 10.96.0.1:443). Its health and metrics ports are on loopback, it makes
// no NodePorts on other addresses and changes no conntrack sysctl.
func (n *Node) startKubeProxy(ctx context.Context) error {
	d := n.o.Dir
	cfg := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.45.0.1:10256
metricsBindAddress: 127.45.0.1:10249
nodePortAddresses: ["127.45.0.0/16"]
iptables:
  localhostNodePorts: false
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, filepath.Join(d, "kube-proxy.kubeconfig"), NodeName, PodCIDR)
	cfgPath := filepath.Join(d, "kube-proxy-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	log, err := n.logFile("kube-proxy")
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(n.o.BinDir, "kube-proxy"), "--config", cfgPath, "--v", "2")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting kube-proxy: %w", err)
	}
	n.kubeProxy = cmd
	n.o.Logf("kube-proxy pid %d (iptables mode)", cmd.Process.Pid)
	// Ready once the `kubernetes` Service has its rule.
	return localcluster.Poll(ctx, "kube-proxy's rule for the kubernetes Service", time.Second, 2*time.Minute, func() error {
		if syscall.Kill(cmd.Process.Pid, 0) != nil || isZombie(cmd.Process.Pid) {
			return localcluster.Permanent(fmt.Errorf("kube-proxy exited: see %s", log.Name()))
		}
		out, err := exec.CommandContext(ctx, "iptables", "-t", "nat", "-S", "KUBE-SERVICES").CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables -t nat -S KUBE-SERVICES: %v: %s", err, out)
		}
		if !strings.Contains(string(out), localcluster.KubernetesServiceIP+"/32") {
			return fmt.Errorf("no rule for %s yet", localcluster.KubernetesServiceIP)
		}
		return nil
	})
}

// Stop ends the kubelet, the containers' shims and containerd, unmounts
// what they mounted under Dir and the pods' network namespaces, removes the
// pod cgroups the kubelet made and the bridge. It reports what it could not
// undo on Logf and goes on.
func (n *Node) Stop() {
	logf := n.o.Logf
	stopCmd(n.kubeProxy, logf, "kube-proxy")
	stopCmd(n.kubelet, logf, "kubelet")
	// Then the containers: their processes live in the kubepods cgroups
	// and outlive both the kubelet and a killed shim.
	killPods(logf)
	// The shims outlive containerd: find them by the containerd address
	// they were started with, and end them (and their containers) first.
	shims := shimPIDs(n.Socket)
	for _, pid := range shims {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(shims) > 0 {
		logf("killed %d containerd shims: %v", len(shims), shims)
	}
	stopCmd(n.containerd, logf, "containerd")
	unmountUnder(n.o.Dir, logf)
	unmountNetns(logf)
	removeCgroups(logf)
	if n.kubeProxy != nil {
		// kube-proxy's own undo of its iptables and nftables rules.
		if err := run(context.Background(), filepath.Join(n.o.BinDir, "kube-proxy"), "--cleanup"); err != nil {
			logf("kube-proxy --cleanup: %v", err)
		}
	}
	removeKubeChains(logf)
	if _, err := net.InterfaceByName(Bridge); err == nil {
		if err := run(context.Background(), "ip", "link", "del", Bridge); err != nil {
			logf("removing bridge: %v", err)
		}
	}
	if n.Cluster != nil {
		n.Cluster.Stop()
	}
	for _, f := range n.logs {
		f.Close()
	}
	if n.lock != nil {
		n.lock.Close() // releases the flock
	}
}

// LockFile serializes real-node runs on a machine: they share the bridge,
// the kubepods cgroups and the host's iptables.
const LockFile = "/run/kubemetrics-realnode.lock"

// DirPrefix begins the folder of every real-node run (under /tmp).
const DirPrefix = "/tmp/kubemetrics-realnode-"

// Lock takes the machine-wide lock of real-node runs (for Sweep outside
// Up) and returns its release.
func Lock() (func(), error) {
	f, err := takeLock()
	if err != nil {
		return nil, err
	}
	return func() { f.Close() }, nil
}

func takeLock() (*os.File, error) {
	f, err := os.OpenFile(LockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another real-node run holds %s (%w): one at a time on a machine", LockFile, err)
	}
	return f, nil
}

// Sweep removes what a real-node run that was killed left behind: its
// processes (every one whose command line names a DirPrefix folder or its
// containerd), the containers in the kubepods cgroups, mounts under those
// folders, the pods' network namespaces, the cgroups, the KUBE- iptables
// chains and the bridge. Call it only holding the lock (Up does).
func Sweep(logf func(string, ...any)) {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), DirPrefix) {
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if len(pids) > 0 {
		logf("sweep: killed %d processes of an earlier real-node run: %v", len(pids), pids)
	}
	killPods(logf)
	for _, m := range mountPoints(func(p string) bool { return strings.HasPrefix(p, DirPrefix) }) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			logf("sweep: unmount %s: %v", m, err)
		}
	}
	unmountNetns(logf)
	removeCgroups(logf)
	removeKubeChains(logf)
	if _, err := net.InterfaceByName(Bridge); err == nil {
		if err := run(context.Background(), "ip", "link", "del", Bridge); err != nil {
			logf("sweep: removing bridge: %v", err)
		} else {
			logf("sweep: removed the bridge %s an earlier run left", Bridge)
		}
	}
}

// removeKubeChains removes the iptables chains the kubelet makes in the
// host's tables (KUBE-KUBELET-CANARY, KUBE-FIREWALL, KUBE-IPTABLES-HINT)
// and kube-proxy left, with the rules that jump to them. Only the kubelet
// and kube-proxy of this package make KUBE- chains on this machine.
func removeKubeChains(logf func(string, ...any)) {
	builtin := map[string][]string{
		"filter": {"INPUT", "FORWARD", "OUTPUT"},
		"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
		"mangle": {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	}
	for _, bin := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle"} {
			// The built-in chains' jumps to KUBE- chains, by rule number,
			// last first so the numbers stay right.
			for _, chain := range builtin[table] {
				out, err := exec.Command(bin, "-w", "5", "-t", table, "-L", chain, "-n", "--line-numbers").Output()
				if err != nil {
					continue
				}
				var nums []string
				for _, line := range strings.Split(string(out), "\n") {
					f := strings.Fields(line)
					if len(f) >= 2 && strings.HasPrefix(f[1], "KUBE-") {
						nums = append(nums, f[0])
					}
				}
				for i := len(nums) - 1; i >= 0; i-- {
					if err := exec.Command(bin, "-w", "5", "-t", table, "-D", chain, nums[i]).Run(); err != nil {
						logf("%s -t %s -D %s %s: %v", bin, table, chain, nums[i], err)
					}
				}
			}
			out, err := exec.Command(bin, "-w", "5", "-t", table, "-S").Output()
			if err != nil {
				continue
			}
			var chains []string
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "-N" && strings.HasPrefix(f[1], "KUBE-") {
					chains = append(chains, f[1])
				}
			}
			// Empty them all first: they jump to one another.
			for _, c := range chains {
				_ = exec.Command(bin, "-w", "5", "-t", table, "-F", c).Run()
			}
			for _, c := range chains {
				if err := exec.Command(bin, "-w", "5", "-t", table, "-X", c).Run(); err != nil {
					logf("%s -t %s -X %s: %v", bin, table, c, err)
				}
			}
		}
	}
}

func stopCmd(cmd *exec.Cmd, logf func(string, ...any), name string) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	pid := cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for i := 0; i < 100; i++ {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("%s did not stop in 10s: SIGKILL", name)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// shimPIDs are the containerd-shim processes whose command line names
// socket (they get -address <socket>).
func shimPIDs(socket string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && strings.Contains(args[0], "containerd-shim") && strings.Contains(string(b), socket) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountPoints lists the mount points of this mount namespace that match keep.
func mountPoints(keep func(string) bool) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && keep(fields[4]) {
			out = append(out, fields[4])
		}
	}
	// Deepest first.
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unmountUnder(dir string, logf func(string, ...any)) {
	for _, m := range mountPoints(func(p string) bool { return strings.HasPrefix(p, dir+"/") }) {
		// EINVAL: no longer a mount point (went with its parent or the shim).
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			logf("unmount %s: %v", m, err)
		}
	}
}

// unmountNetns removes the network namespaces the CRI plugin made for pods
// (cni-<uuid> under /var/run/netns or /run/netns); only those: nothing else
// on this machine makes cni- namespaces.
func unmountNetns(logf func(string, ...any)) {
	for _, m := range mountPoints(func(p string) bool {
		return (strings.HasPrefix(p, "/run/netns/cni-") || strings.HasPrefix(p, "/var/run/netns/cni-"))
	}) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			logf("unmount %s: %v", m, err)
		}
		_ = os.Remove(m)
		logf("removed leftover netns %s", m)
	}
}

// killPods SIGKILLs every process in the kubepods cgroups (the kubelet of
// this package is the only one on the machine that makes them) and waits up
// to 10s until they are gone.
func killPods(logf func(string, ...any)) {
	for i := 0; i < 100; i++ {
		pids := podPIDs()
		if len(pids) == 0 {
			return
		}
		if i == 0 {
			logf("killing %d container processes: %v", len(pids), pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	logf("container processes still running after 10s: %v", podPIDs())
}

// podPIDs lists the processes in the kubepods cgroups of the memory
// hierarchy (v1) or of the unified one.
func podPIDs() []int {
	seen := map[int]bool{}
	for _, root := range []string{"/sys/fs/cgroup/memory/kubepods", "/sys/fs/cgroup/kubepods"} {
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
					seen[pid] = true
				}
			}
			return nil
		})
	}
	pids := make([]int, 0, len(seen))
	for pid := range seen {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

// removeCgroups removes the kubepods cgroup trees the kubelet made (they
// are empty once the containers are gone), deepest first, in every v1
// hierarchy.
func removeCgroups(logf func(string, ...any)) {
	hier, _ := filepath.Glob("/sys/fs/cgroup/*/kubepods*")
	var dirs []string
	for _, h := range hier {
		_ = filepath.WalkDir(h, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	failed := 0
	for _, d := range dirs {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			failed++
			if failed <= 3 {
				logf("rmdir %s: %v", d, err)
			}
		}
	}
}
