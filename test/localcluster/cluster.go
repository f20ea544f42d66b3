package localcluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// Options configure a cluster.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager,
	// kube-scheduler and kubectl (test/.cache/bin/<version>).
	BinDir string
	// Dir is the cluster's folder: PKI, data, kubeconfigs, logs, pids.
	Dir string
	// HPASyncPeriod and HPADownscaleStabilization tune the HPA controller
	// so tests are quick. Defaults 5s and 20s.
	HPASyncPeriod             time.Duration
	HPADownscaleStabilization time.Duration
	// ControlPlaneOnly runs etcd and kube-apiserver alone, without the
	// controller manager and the scheduler: the fleet benchmark binds pods
	// itself and needs no node lifecycle controller (so its nodes need no
	// Lease renewals, which cost thousands of writes a minute at 10,000
	// nodes). Start then creates the default ServiceAccount itself.
	ControlPlaneOnly bool
	// EtcdQuotaBytes is etcd's backend quota; default 2 GiB.
	EtcdQuotaBytes int64
	// Address is where the kube-apiserver binds and what it advertises;
	// default 127.0.0.1. A real node's pods cannot reach loopback, and the
	// `kubernetes` Endpoints refuse it, so the real-node cluster binds the
	// node's bridge address: then the apiserver keeps the `kubernetes`
	// Endpoints itself (lease reconciler), routes to aggregated APIs by
	// their endpoints (--enable-aggregator-routing, as pods on a real
	// network need no kube-proxy for it) and its certificate names the
	// address and the Service's ClusterIP 10.96.0.1.
	Address string
	// APIServerArgs are appended to the kube-apiserver's command line
	// (a later flag wins: --profiling=true turns profiling on).
	APIServerArgs []string
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// KubernetesServiceIP is the `kubernetes` Service's ClusterIP: the first of
// --service-cluster-ip-range.
const KubernetesServiceIP = "10.96.0.1"

// Cluster is a running control plane.
type Cluster struct {
	opts Options
	PKI  pki.Files
	// APIServer is the kube-apiserver's URL.
	APIServer string
	// AdminKubeconfig is a kubeconfig with system:masters rights.
	AdminKubeconfig string
	// EtcdURL is etcd's client URL (plain HTTP on loopback).
	EtcdURL string

	procs map[string]*process
	// metricsPort is our server's port, kept across restarts so the
	// APIServices stay valid.
	metricsPort int
	// registered is set once the manifests are applied.
	registered bool
}

// Start brings up etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler and waits until the apiserver is ready.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.HPASyncPeriod == 0 {
		o.HPASyncPeriod = 5 * time.Second
	}
	if o.HPADownscaleStabilization == 0 {
		o.HPADownscaleStabilization = 20 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.EtcdQuotaBytes == 0 {
		o.EtcdQuotaBytes = 2 << 30
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return nil, fmt.Errorf("%s is missing from %s: build it with test/tools/build-k8s.sh", b, o.BinDir)
		}
	}
	c := &Cluster{opts: o, procs: map[string]*process{}}
	ok := false
	defer func() {
		if !ok {
			c.Stop()
		}
	}()
	var err error
	addr := o.Address
	if addr == "" {
		addr = "127.0.0.1"
	}
	ip := net.ParseIP(addr)
	if ip == nil {
		return nil, fmt.Errorf("localcluster: Address %q is not an IP address", addr)
	}
	var apiIPs []net.IP
	if !ip.IsLoopback() {
		apiIPs = []net.IP{ip, net.ParseIP(KubernetesServiceIP)}
	}
	if c.PKI, err = pki.GenerateCluster(filepath.Join(o.Dir, "pki"), apiIPs...); err != nil {
		return nil, fmt.Errorf("generating the PKI: %w", err)
	}
	ports := map[string]int{}
	for _, name := range []string{"etcd-client", "etcd-peer", "apiserver", "controller-manager", "scheduler"} {
		if ports[name], err = freePort(); err != nil {
			return nil, err
		}
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports["etcd-client"])
	c.EtcdURL = etcdURL
	o.Logf("starting etcd on %s", etcdURL)
	if err := c.run("etcd", "--data-dir", filepath.Join(o.Dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+strconv.Itoa(ports["etcd-peer"]),
		"--quota-backend-bytes", strconv.FormatInt(o.EtcdQuotaBytes, 10)); err != nil {
		return nil, err
	}

	c.APIServer = "https://" + net.JoinHostPort(addr, strconv.Itoa(ports["apiserver"]))
	p := c.PKI.Path
	// On loopback the `kubernetes` Endpoints cannot be kept (loopback
	// endpoints are refused) and nothing routes to pod IPs.
	network := []string{"--endpoint-reconciler-type", "none", "--enable-aggregator-routing=false"}
	if !ip.IsLoopback() {
		network = []string{"--endpoint-reconciler-type", "lease", "--enable-aggregator-routing=true"}
	}
	o.Logf("starting kube-apiserver on %s", c.APIServer)
	args := []string{
		"--etcd-servers", etcdURL,
		"--bind-address", addr, "--advertise-address", addr,
		"--secure-port", strconv.Itoa(ports["apiserver"]),
		"--tls-cert-file", p(pki.APIServer + ".crt"), "--tls-private-key-file", p(pki.APIServer + ".key"),
		"--client-ca-file", p(pki.ClusterCA + ".crt"),
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p(pki.ServiceAccountKey + ".pub"),
		"--service-account-signing-key-file", p(pki.ServiceAccountKey + ".key"),
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--authorization-mode", "Node,RBAC",
		"--anonymous-auth=false", // a request with no credentials is refused (401)
		"--requestheader-client-ca-file", p(pki.FrontProxyCA + ".crt"),
		"--requestheader-allowed-names", pki.ProxyClientName,
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", p(pki.FrontProxyClient + ".crt"),
		"--proxy-client-key-file", p(pki.FrontProxyClient + ".key"),
		"--allow-privileged",
		"--profiling=false",
	}
	args = append(append(args, network...), o.APIServerArgs...)
	if err := c.run("kube-apiserver", args...); err != nil {
		return nil, err
	}
	if err := c.waitHealthy(ctx, c.APIServer+"/readyz", 3*time.Minute); err != nil {
		return nil, err
	}

	c.AdminKubeconfig = filepath.Join(o.Dir, "admin.kubeconfig")
	kcs := map[string]string{
		"admin":              pki.Admin,
		"controller-manager": pki.ControllerManager,
		"scheduler":          pki.Scheduler,
	}
	for name, pair := range kcs {
		if err := WriteKubeconfig(filepath.Join(o.Dir, name+".kubeconfig"), c.APIServer, p(pki.ClusterCA+".crt"), p(pair+".crt"), p(pair+".key"), ""); err != nil {
			return nil, err
		}
	}
	if o.ControlPlaneOnly {
		if err := c.createDefaultServiceAccount(ctx); err != nil {
			return nil, err
		}
		ok = true
		o.Logf("control plane (etcd and kube-apiserver only) ready at %s", c.APIServer)
		return c, nil
	}
	cm := filepath.Join(o.Dir, "controller-manager.kubeconfig")
	o.Logf("starting kube-controller-manager")
	if err := c.run("kube-controller-manager",
		"--kubeconfig", cm, "--authentication-kubeconfig", cm, "--authorization-kubeconfig", cm,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports["controller-manager"]),
		"--leader-elect=false",
		"--use-service-account-credentials",
		"--service-account-private-key-file", p(pki.ServiceAccountKey+".key"),
		"--root-ca-file", p(pki.ClusterCA+".crt"),
		// The CSR signers (a real kubelet's serving certificate with
		// serverTLSBootstrap) sign with the cluster CA, as kubeadm's do.
		"--cluster-signing-cert-file", p(pki.ClusterCA+".crt"),
		"--cluster-signing-key-file", p(pki.ClusterCA+".key"),
		"--controllers", "*",
		"--horizontal-pod-autoscaler-sync-period", o.HPASyncPeriod.String(),
		"--horizontal-pod-autoscaler-downscale-stabilization", o.HPADownscaleStabilization.String(),
		"--horizontal-pod-autoscaler-cpu-initialization-period", "10s",
		"--horizontal-pod-autoscaler-initial-readiness-delay", "5s",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	sk := filepath.Join(o.Dir, "scheduler.kubeconfig")
	o.Logf("starting kube-scheduler")
	if err := c.run("kube-scheduler",
		"--kubeconfig", sk, "--authentication-kubeconfig", sk, "--authorization-kubeconfig", sk,
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(ports["scheduler"]),
		"--leader-elect=false", "--profiling=false",
	); err != nil {
		return nil, err
	}
	// The default ServiceAccount appears once the controller manager runs;
	// pods cannot be created before.
	if err := poll(ctx, "default service account", time.Second, 2*time.Minute, func() error {
		if err := c.checkRunning(); err != nil {
			return err
		}
		_, err := c.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "default")
		return err
	}); err != nil {
		return nil, err
	}
	ok = true
	o.Logf("control plane ready at %s", c.APIServer)
	return c, nil
}

// createDefaultServiceAccount does the controller manager's job for the
// default namespace: pods cannot be created without it.
// HPASyncPeriod is how often the cluster's HPA controller syncs
// (--horizontal-pod-autoscaler-sync-period).
func (c *Cluster) HPASyncPeriod() time.Duration { return c.opts.HPASyncPeriod }

func (c *Cluster) createDefaultServiceAccount(ctx context.Context) error {
	return poll(ctx, "default service account", time.Second, time.Minute, func() error {
		if err := c.checkRunning(); err != nil {
			return err
		}
		if _, err := c.Kubectl(ctx, "get", "serviceaccount", "default", "-n", "default"); err == nil {
			return nil
		}
		_, err := c.Kubectl(ctx, "create", "serviceaccount", "default", "-n", "default")
		return err
	})
}

func (c *Cluster) run(name string, args ...string) error {
	p, err := start(c.opts.Dir, name, filepath.Join(c.opts.BinDir, name), args...)
	if err != nil {
		return err
	}
	c.procs[name] = p
	return nil
}

// waitHealthy polls a health URL of the apiserver with the admin identity
// until it answers 200.
func (c *Cluster) waitHealthy(ctx context.Context, url string, limit time.Duration) error {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(c.PKI.Path(pki.ClusterCA + ".crt"))
	if err != nil {
		return err
	}
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(c.PKI.Path(pki.Admin+".crt"), c.PKI.Path(pki.Admin+".key"))
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	return poll(ctx, url, 500*time.Millisecond, limit, func() error {
		if p := c.procs["kube-apiserver"]; p != nil {
			if done, err := p.exited(); done {
				return permanent{fmt.Errorf("kube-apiserver exited (%v); see %s", err, filepath.Join(c.opts.Dir, "logs", "kube-apiserver.log"))}
			}
		}
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// checkRunning fails permanently when a process of the cluster has exited.
func (c *Cluster) checkRunning() error {
	for name, p := range c.procs {
		if done, err := p.exited(); done {
			return permanent{fmt.Errorf("%s exited (%v); see %s", name, err, filepath.Join(c.opts.Dir, "logs", name+".log"))}
		}
	}
	return nil
}

// Stop ends every process, our metrics server first.
func (c *Cluster) Stop() {
	for _, name := range []string{"metrics-server", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"} {
		if p, ok := c.procs[name]; ok {
			p.stop()
			delete(c.procs, name)
			_ = os.Remove(filepath.Join(c.opts.Dir, "pids", name))
		}
	}
}
