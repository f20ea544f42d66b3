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
	// Dir holds everything: containerd root and state, CNI config, kubelet
	// root, certificates, logs.
	Dir string
	// Kubelet is the kubelet binary.
	Kubelet string
	// Cluster is the running control plane to join.
	Cluster *localcluster.Cluster
	// WorkloadBinary is the static cmd/workload binary for both images.
	WorkloadBinary string
	Logf           func(format string, args ...any)
}

// Node is a running containerd and kubelet.
type Node struct {
	o          Options
	Socket     string
	containerd *exec.Cmd
	kubelet    *exec.Cmd
	// KubeletCA is the CA file that verifies the kubelet's serving certificate.
	KubeletCA string
	logs      []*os.File
}

// Missing names what this machine lacks to run a real node, or "" when it
// has it all.
func Missing() string {
	if os.Geteuid() != 0 {
		return "not root (containerd and the kubelet need root)"
	}
	for _, b := range []string{"containerd", "runc", "ctr", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			return "no " + b + " binary in PATH (apt-get install -y containerd runc containernetworking-plugins iproute2)"
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

// Start brings up the bridge, containerd (with both images imported) and
// the kubelet, and waits until the Node is Ready. On error everything
// started is stopped again.
func Start(ctx context.Context, o Options) (n *Node, err error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	n = &Node{o: o, Socket: filepath.Join(o.Dir, "containerd.sock")}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	for _, d := range []string{"containerd-root", "containerd-state", "cni", "kubelet", "pod-logs", "pki", "logs", "images"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return n, err
		}
	}
	if err := setUpBridge(ctx); err != nil {
		return n, err
	}
	if err := n.startContainerd(ctx); err != nil {
		return n, err
	}
	if err := n.importImages(ctx); err != nil {
		return n, err
	}
	if err := n.startKubelet(ctx); err != nil {
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
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
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
	return nil
}

func (n *Node) startKubelet(ctx context.Context) error {
	c := n.o.Cluster
	d := n.o.Dir
	clusterCA, err := pki.LoadCA(c.PKI.Path(pki.ClusterCA+".crt"), c.PKI.Path(pki.ClusterCA+".key"))
	if err != nil {
		return err
	}
	kubeletCA, err := pki.LoadCA(c.PKI.Path(pki.KubeletCA+".crt"), c.PKI.Path(pki.KubeletCA+".key"))
	if err != nil {
		return err
	}
	pkiDir := filepath.Join(d, "pki")
	client, err := clusterCA.Issue(pki.Request{CommonName: "system:node:" + NodeName, Organizations: []string{"system:nodes"}, Client: true})
	if err != nil {
		return err
	}
	if err := pki.WritePair(pkiDir, "kubelet-client", client.Cert, client.Key); err != nil {
		return err
	}
	serving, err := kubeletCA.Issue(pki.Request{CommonName: NodeName, Server: true, DNSNames: []string{NodeName}, IPs: []net.IP{net.ParseIP(NodeIP)}})
	if err != nil {
		return err
	}
	if err := pki.WritePair(pkiDir, "kubelet-serving", serving.Cert, serving.Key); err != nil {
		return err
	}
	n.KubeletCA = c.PKI.Path(pki.KubeletCA + ".crt")
	kubeconfig := filepath.Join(d, "kubelet.kubeconfig")
	if err := localcluster.WriteKubeconfig(kubeconfig, c.APIServer, c.PKI.Path(pki.ClusterCA+".crt"),
		filepath.Join(pkiDir, "kubelet-client.crt"), filepath.Join(pkiDir, "kubelet-client.key"), ""); err != nil {
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
tlsCertFile: %s
tlsPrivateKeyFile: %s
podLogsDirectory: %s
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
`, n.Socket, NodeIP, KubeletPort,
		filepath.Join(pkiDir, "kubelet-serving.crt"), filepath.Join(pkiDir, "kubelet-serving.key"),
		filepath.Join(d, "pod-logs"), c.PKI.Path(pki.ClusterCA+".crt"))
	cfgPath := filepath.Join(d, "kubelet-config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	log, err := n.logFile("kubelet")
	if err != nil {
		return err
	}
	cmd := exec.Command(n.o.Kubelet,
		"--config", cfgPath,
		"--kubeconfig", kubeconfig,
		"--root-dir", filepath.Join(d, "kubelet"),
		"--cert-dir", pkiDir,
		"--hostname-override", NodeName,
		"--node-ip", NodeIP,
		"--v", "2",
	)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the kubelet: %w", err)
	}
	n.kubelet = cmd
	n.o.Logf("kubelet pid %d, node %s at %s:%d", cmd.Process.Pid, NodeName, NodeIP, KubeletPort)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return localcluster.Poll(ctx, "node "+NodeName+" Ready", time.Second, 3*time.Minute, func() error {
		select {
		case <-exited:
			return localcluster.Permanent(fmt.Errorf("the kubelet exited: see %s", log.Name()))
		default:
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

// Stop ends the kubelet, the containers' shims and containerd, unmounts
// what they mounted under Dir and the pods' network namespaces, removes the
// pod cgroups the kubelet made and the bridge. It reports what it could not
// undo on Logf and goes on.
func (n *Node) Stop() {
	logf := n.o.Logf
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
	if _, err := net.InterfaceByName(Bridge); err == nil {
		if err := run(context.Background(), "ip", "link", "del", Bridge); err != nil {
			logf("removing bridge: %v", err)
		}
	}
	for _, f := range n.logs {
		f.Close()
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
