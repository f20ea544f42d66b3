package e2einstall

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubemetrics/metrics-server/certs/pki"
	"github.com/kubemetrics/metrics-server/test/fleet"
	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// addressBase keeps this fleet's kubelets (127.41.x.y) apart from test/e2e's
// (127.1), e2efaults' (127.40) and e2edoctor's (127.42).
const addressBase = 41

// fleetNodes: four 8-core, 32 GiB nodes and two large ones (24 and 48
// cores; fleet.DefaultShape).
const fleetNodes = 6

// The workload kubectl top pod must show: appNamespace/appName, appPods
// pods of two containers each using appMilliCPU and appMemory.
const (
	appNamespace = "shop"
	appName      = "checkout"
	appPods      = 3
	appMilliCPU  = 850
	appMemory    = 12 << 30
)

// env is what every test shares, set up once by TestMain.
type env struct {
	suite *localcluster.Suite
	repo  string
	// binary is our server built with the race detector.
	binary string
	// helm is the pinned helm (make k8s builds it).
	helm    string
	cluster *localcluster.Cluster
	fleet   *fleet.Fleet
	client  kubernetes.Interface
}

var e *env

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(localcluster.Main(m, "e2einstall", []string{"-race"}, func(ctx context.Context, s *localcluster.Suite) error {
		e = &env{suite: s, repo: s.Repo, helm: filepath.Join(s.Repo, "test/.cache/bin/helm-v3.22.0/helm")}
		return e.setUp(ctx)
	}))
}

func logf(f string, a ...any) { e.suite.Logf(f, a...) }

// setUp starts, beside the control plane localcluster.Main started (and
// our server, that it built with the race detector), the fleet and the
// workload. No metrics server runs: each test installs its own.
func (e *env) setUp(ctx context.Context) error {
	s := e.suite
	e.binary, e.cluster, e.client = s.Binary, s.Cluster, s.Client
	// The kubelets' serving certificates are signed by the cluster's CA,
	// as kubelets with serverTLSBootstrap get them signed by the
	// kubelet-serving signer, so a manifest that verifies kubelet TLS
	// with the in-cluster CA (no --kubelet-certificate-authority, no
	// --kubelet-insecure-tls) works unchanged.
	ca, err := s.LoadCA(pki.ClusterCA)
	if err != nil {
		return err
	}
	e.fleet, err = fleet.New(fleet.Config{Client: e.client, Nodes: fleetNodes, Prefix: "inst", KubeletCA: ca,
		AddressBase: addressBase, Authenticate: true, Logf: logf})
	if err != nil {
		return err
	}
	if err := e.fleet.Run(ctx); err != nil {
		return fmt.Errorf("starting the fleet: %w", err)
	}
	if err := e.deployWorkload(ctx); err != nil {
		return err
	}
	logf("cluster, %d-node fleet and workload ready in %v; logs in %s/logs", fleetNodes, s.Elapsed(), s.Dir)
	return nil
}

// deployWorkload runs appPods pods of appName and waits until they run.
func (e *env) deployWorkload(ctx context.Context) error {
	if _, err := e.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNamespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	labels := map[string]string{"app": appName}
	replicas := int32(appPods)
	var containers []corev1.Container
	for _, c := range []string{"api", "jvm"} {
		containers = append(containers, corev1.Container{Name: c, Image: "registry.invalid/" + c + ":1", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(500, resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(8<<30, resource.BinarySI),
			},
		}})
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: appNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{
					fleet.UsageAnnotation: fmt.Sprintf("cpu=%dm,memory=%d", appMilliCPU, appMemory),
				}},
				Spec: corev1.PodSpec{Containers: containers},
			},
		},
	}
	// The namespace's default ServiceAccount comes from the controller
	// manager; pods cannot be created before it.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		_, err := e.client.AppsV1().Deployments(appNamespace).Create(ctx, d, metav1.CreateOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("creating deployment %s/%s: %w", appNamespace, appName, err)
		}
		time.Sleep(time.Second)
	}
	for {
		list, err := e.client.CoreV1().Pods(appNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + appName})
		running := 0
		if err == nil {
			for _, p := range list.Items {
				if p.Status.Phase == corev1.PodRunning {
					running++
				}
			}
			if running == appPods {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods of %s/%s: %d of %d running (%v)", appNamespace, appName, running, appPods, err)
		}
		time.Sleep(time.Second)
	}
}

// renderKustomize renders a kustomize folder of the repository (such as
// "manifests/base") with the pinned kubectl.
func renderKustomize(t *testing.T, dir string) []byte {
	t.Helper()
	out, err := e.cluster.RenderKustomize(context.Background(), filepath.Join(e.repo, dir))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// renderChart renders charts/metrics-server as release metrics-server in
// kube-system with the pinned helm; args are added (such as --set x=y).
func renderChart(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := os.Stat(e.helm); err != nil {
		t.Fatalf("helm is missing (%v): build it with make k8s", err)
	}
	all := append([]string{"metrics-server", filepath.Join(e.repo, "charts/metrics-server"), "--namespace", "kube-system"}, args...)
	out, err := localcluster.RenderHelm(context.Background(), e.helm, all...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// install applies rendered (see localcluster.Installation) and removes it
// when the test ends.
func install(t *testing.T, name string, rendered []byte) *localcluster.Installation {
	t.Helper()
	in, err := e.cluster.Install(context.Background(), name, rendered)
	if in != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := in.Uninstall(ctx); err != nil {
				t.Errorf("uninstalling %s: %v", name, err)
			}
			// A later test installs the same names: they must be gone.
			waitGone(t, in)
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// waitGone waits until no APIService of in is left.
func waitGone(t *testing.T, in *localcluster.Installation) {
	t.Helper()
	for _, name := range in.APIServices {
		waitFor(t, time.Minute, func() error {
			out, err := e.cluster.Kubectl(context.Background(), "get", "apiservice", name, "--ignore-not-found", "-o", "name")
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) != "" {
				return fmt.Errorf("APIService %s still exists", name)
			}
			return nil
		})
	}
}

// startServer runs a replica of the installation's Deployment (at -v=2)
// and points every installed APIService at its port. It does not wait.
func startServer(t *testing.T, in *localcluster.Installation, o localcluster.StartOptions) *localcluster.Replica {
	t.Helper()
	o.Binary = e.binary
	o.Args = append([]string{"-v=2"}, o.Args...)
	r, err := in.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	logf("%s runs on 127.0.0.1:%d: %s", r.Name, r.Port, strings.Join(r.Args, " "))
	if err := in.PatchAPIServicePort(context.Background(), r.Port); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitAvailable waits up to two minutes until every installed APIService
// is Available.
func waitAvailable(t *testing.T, in *localcluster.Installation) {
	t.Helper()
	if err := in.WaitAvailable(context.Background(), 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// apiService is what the tests read of an APIService.
type apiService struct {
	Spec struct {
		Service struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			Port      int    `json:"port"`
		} `json:"service"`
		CABundle              []byte `json:"caBundle"`
		InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type    string `json:"type"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"conditions"`
	} `json:"status"`
}

func getAPIService(t *testing.T, name string) apiService {
	t.Helper()
	out := kubectl(t, "get", "apiservice", name, "-o", "json")
	var a apiService
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("APIService %s: %v", name, err)
	}
	return a
}

// kubectl runs the pinned kubectl as the admin and fails the test on error.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.cluster.Kubectl(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitTop waits up to 90 s (the first rates need two scrapes) until
// `kubectl top node` lists every node of the fleet and `kubectl top pod`
// every pod of the workload, each with a CPU and a memory figure, and
// checks the pods' figures against their known usage.
func waitTop(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	nodes := e.fleet.NodeNames()
	waitFor(t, 90*time.Second, func() error {
		out, err := e.cluster.Kubectl(ctx, "top", "node", "--no-headers")
		if err != nil {
			return err
		}
		rows := rowsByName(out)
		for _, n := range nodes {
			r, ok := rows[n]
			if !ok {
				return fmt.Errorf("kubectl top node lacks %s:\n%s", n, out)
			}
			if len(r) < 5 || !strings.HasSuffix(r[1], "m") || !strings.HasSuffix(r[3], "Mi") {
				return fmt.Errorf("kubectl top node shows %s as %v", n, r)
			}
		}
		return nil
	})
	waitFor(t, 90*time.Second, func() error {
		out, err := e.cluster.Kubectl(ctx, "top", "pod", "-n", appNamespace, "--no-headers")
		if err != nil {
			return err
		}
		rows := rowsByName(out)
		if len(rows) != appPods {
			return fmt.Errorf("kubectl top pod shows %d pods of %d:\n%s", len(rows), appPods, out)
		}
		for name, r := range rows {
			if len(r) < 3 {
				return fmt.Errorf("kubectl top pod shows %s as %v", name, r)
			}
			cpu, err := strconv.Atoi(strings.TrimSuffix(r[1], "m"))
			if err != nil {
				return fmt.Errorf("pod %s CPU %q: %w", name, r[1], err)
			}
			mem, err := strconv.Atoi(strings.TrimSuffix(r[2], "Mi"))
			if err != nil {
				return fmt.Errorf("pod %s memory %q: %w", name, r[2], err)
			}
			// Two containers each: CPU within 5% (rates of sampled
			// counters), memory exact in MiB.
			if want := 2 * appMilliCPU; cpu < want*95/100 || cpu > want*105/100 {
				return fmt.Errorf("pod %s CPU %dm, want about %dm", name, cpu, want)
			}
			if want := 2 * appMemory >> 20; mem != want {
				return fmt.Errorf("pod %s memory %dMi, want %dMi", name, mem, want)
			}
		}
		return nil
	})
}

// rowsByName splits kubectl's table rows by their first column.
func rowsByName(out string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	return rows
}

// waitFor polls check every second until it passes or limit passes.
func waitFor(t *testing.T, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %v: %v", limit, err)
		}
		time.Sleep(time.Second)
	}
}
