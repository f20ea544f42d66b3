package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kubemetrics/metrics-server/certs/pki"
)

// Installation is a rendered set of manifests (kustomize or Helm) applied
// to the cluster the only way it can run here, with no container runtime
// and no kube-proxy: every object but the Deployments is applied as
// rendered, except that each Service becomes `type: ExternalName,
// externalName: localhost`; the Deployments are kept aside and run as
// processes by Start, with the Deployment's own arguments and its
// ServiceAccount's token.
type Installation struct {
	c *Cluster
	// Name tells installations apart in logs and folders.
	Name string
	// Objects are the objects applied, in the rendered order.
	Objects []*unstructured.Unstructured
	// Deployments are the rendered Deployments, not applied.
	Deployments []*appsv1.Deployment
	// APIServices are the names of the rendered APIServices.
	APIServices []string

	// applied is the YAML applied, for Uninstall.
	applied  []byte
	replicas []*Replica
	// secrets are namespace/name of Secrets the server creates itself
	// (--tls-bootstrap-secret), deleted by Uninstall.
	secrets map[string]bool
}

// Replica is one process of an installed Deployment.
type Replica struct {
	// Name is its log's name: logs/<Name>.log in the cluster's folder.
	Name string
	// Port is its secure port on 127.0.0.1.
	Port int
	// Args are the arguments it runs with, adapted from the Deployment's.
	Args []string
	p    *process
}

// RenderKustomize returns `kubectl kustomize dir` with the pinned kubectl.
func (c *Cluster) RenderKustomize(ctx context.Context, dir string) ([]byte, error) {
	out, err := c.Kubectl(ctx, "kustomize", dir)
	if err != nil {
		return nil, fmt.Errorf("rendering %s: %w", dir, err)
	}
	return []byte(out), nil
}

// RenderKustomizeOf renders the folder resource with the components, in
// that order (paths under root, such as the repository's
// manifests/base and manifests/components/high-availability), through a
// kustomization written in a temporary folder: kustomize takes relative
// paths only.
func (c *Cluster) RenderKustomizeOf(ctx context.Context, root, resource string, components ...string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "kustomize-of-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	rel := func(p string) (string, error) { return filepath.Rel(dir, filepath.Join(root, p)) }
	r, err := rel(resource)
	if err != nil {
		return nil, err
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - " + r + "\n"
	if len(components) > 0 {
		k += "components:\n"
		for _, comp := range components {
			r, err := rel(comp)
			if err != nil {
				return nil, err
			}
			k += "  - " + r + "\n"
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o600); err != nil {
		return nil, err
	}
	return c.RenderKustomize(ctx, dir)
}

// RenderHelm returns `helm template args...` run with the helm binary
// given (test/.cache/bin/helm-v3.22.0/helm, built by make k8s).
func RenderHelm(ctx context.Context, helm string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, helm, append([]string{"template"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm template %s: %w: %s (is helm built? make k8s)", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// Decode splits rendered YAML into objects, skipping empty documents.
func Decode(rendered []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(rendered), 4096)
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("rendered document %d: %w", i, err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
}

// Install applies rendered (see Installation) as the admin. name tells
// this installation apart in logs. The caller runs Uninstall when done.
func (c *Cluster) Install(ctx context.Context, name string, rendered []byte) (*Installation, error) {
	objs, err := Decode(rendered)
	if err != nil {
		return nil, err
	}
	in := &Installation{c: c, Name: name, secrets: map[string]bool{}}
	var apply bytes.Buffer
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			if err := fromUnstructured(o, &d); err != nil {
				return nil, err
			}
			in.Deployments = append(in.Deployments, &d)
			continue
		case "Service":
			// No kube-proxy: the aggregator reaches an ExternalName
			// Service at the APIService's port (patched by
			// PatchAPIServicePort), and checks the certificate for
			// <service>.<namespace>.svc all the same.
			ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
			spec := map[string]any{"type": "ExternalName", "externalName": "localhost"}
			if len(ports) > 0 {
				spec["ports"] = ports
			}
			o.Object["spec"] = spec
		case "APIService":
			in.APIServices = append(in.APIServices, o.GetName())
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		apply.WriteString("---\n")
		apply.Write(b)
		in.Objects = append(in.Objects, o)
	}
	in.applied = apply.Bytes()
	if len(in.Objects) > 0 {
		if _, err := c.KubectlAs(ctx, c.AdminKubeconfig, apply.Bytes(), "apply", "-f", "-"); err != nil {
			return in, fmt.Errorf("installing %s: %w", name, err)
		}
	}
	return in, nil
}

func fromUnstructured(o *unstructured.Unstructured, into any) error {
	b, err := yaml.Marshal(o.Object)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
	return nil
}

// StartOptions adapt how a replica runs.
type StartOptions struct {
	// Binary is the metrics-server executable (required).
	Binary string
	// Deployment is the name of the rendered Deployment; "" is the only one.
	Deployment string
	// Port is the secure port; 0 picks a free one. Replicas that share a
	// port need --permit-port-sharing in their arguments.
	Port int
	// Args are added after the Deployment's (such as -v=2).
	Args []string
	// Env are added to the container's literal environment (KEY=VALUE).
	Env []string
}

// flagsOfThePod are the flags Start sets itself: the pod's port, address
// and in-cluster credentials mean nothing on loopback.
var flagsOfThePod = []string{"--secure-port", "--bind-address", "--kubeconfig", "--authentication-kubeconfig", "--authorization-kubeconfig"}

// Start runs one replica of an installed Deployment as a process: the
// container's arguments, with every path under a volume's mount path
// moved to a folder of the replica's own (an emptyDir empty, a Secret's
// keys written as the kubelet would mount them), flagsOfThePod replaced by
// 127.0.0.1 and a free (or given) port, and a kubeconfig with a token of
// the pod's ServiceAccount (`kubectl create token`) and the cluster's CA,
// as a pod's in-cluster configuration has.
func (in *Installation) Start(ctx context.Context, o StartOptions) (*Replica, error) {
	if o.Binary == "" {
		return nil, errors.New("starting a replica: StartOptions.Binary is empty")
	}
	d, err := in.deployment(o.Deployment)
	if err != nil {
		return nil, err
	}
	spec := d.Spec.Template.Spec
	if len(spec.Containers) == 0 {
		return nil, fmt.Errorf("deployment %s/%s has no container", d.Namespace, d.Name)
	}
	ctr := spec.Containers[0]
	n := len(in.replicas)
	name := fmt.Sprintf("metrics-server-%s-%d", in.Name, n)
	dir := filepath.Join(in.c.opts.Dir, "installs", name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	mounts, err := in.mountVolumes(ctx, d, ctr, dir)
	if err != nil {
		return nil, err
	}
	sa := spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	token, err := in.c.Kubectl(ctx, "create", "token", sa, "-n", d.Namespace, "--duration", "48h")
	if err != nil {
		return nil, fmt.Errorf("a token for ServiceAccount %s/%s: %w", d.Namespace, sa, err)
	}
	kc := filepath.Join(dir, "kubeconfig")
	if err := WriteKubeconfig(kc, in.c.APIServer, in.c.PKI.Path(pki.ClusterCA+".crt"), "", "", strings.TrimSpace(token)); err != nil {
		return nil, err
	}
	port := o.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := adaptArgs(ctr.Args, mounts)
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--tls-bootstrap-secret="); ok && v != "" {
			in.secrets[v] = true
		}
	}
	args = append(args,
		"--secure-port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--kubeconfig="+kc, "--authentication-kubeconfig="+kc, "--authorization-kubeconfig="+kc)
	args = append(args, o.Args...)
	var env []string
	for _, e := range ctr.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	env = append(env, o.Env...)
	p, err := startWithEnv(in.c.opts.Dir, name, o.Binary, env, args...)
	if err != nil {
		return nil, err
	}
	r := &Replica{Name: name, Port: port, Args: args, p: p}
	in.replicas = append(in.replicas, r)
	return r, nil
}

func (in *Installation) deployment(name string) (*appsv1.Deployment, error) {
	for _, d := range in.Deployments {
		if name == "" || d.Name == name {
			if name == "" && len(in.Deployments) > 1 {
				return nil, fmt.Errorf("%s rendered %d Deployments: name one in StartOptions.Deployment", in.Name, len(in.Deployments))
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("%s rendered no Deployment %q", in.Name, name)
}

// mountVolumes makes a folder under dir for each volume the container
// mounts and returns mount path -> folder.
func (in *Installation) mountVolumes(ctx context.Context, d *appsv1.Deployment, ctr corev1.Container, dir string) (map[string]string, error) {
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		v, ok := vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("deployment %s/%s mounts volume %q, which it does not declare", d.Namespace, d.Name, m.Name)
		}
		local := filepath.Join(dir, "volumes", m.Name)
		if err := os.MkdirAll(local, 0o700); err != nil {
			return nil, err
		}
		switch {
		case v.EmptyDir != nil:
		case v.Secret != nil:
			if err := in.writeSecret(ctx, d.Namespace, v.Secret, local); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("deployment %s/%s: volume %q is neither emptyDir nor secret; teach localcluster's Installation.mountVolumes to make it", d.Namespace, d.Name, m.Name)
		}
		mounts[strings.TrimSuffix(m.MountPath, "/")] = local
	}
	return mounts, nil
}

// writeSecret writes a Secret's keys (or its items) into dir, as a secret
// volume shows them.
func (in *Installation) writeSecret(ctx context.Context, ns string, v *corev1.SecretVolumeSource, dir string) error {
	client, err := in.c.Client()
	if err != nil {
		return err
	}
	s, err := client.CoreV1().Secrets(ns).Get(ctx, v.SecretName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("secret volume %s/%s: %w", ns, v.SecretName, err)
	}
	files := map[string]string{}
	for k := range s.Data {
		files[k] = k
	}
	if len(v.Items) > 0 {
		files = map[string]string{}
		for _, it := range v.Items {
			files[it.Key] = it.Path
		}
	}
	for key, path := range files {
		data, ok := s.Data[key]
		if !ok {
			return fmt.Errorf("secret %s/%s has no key %q", ns, v.SecretName, key)
		}
		if err := os.WriteFile(filepath.Join(dir, path), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// adaptArgs drops flagsOfThePod and moves every value under a mount path
// to its local folder. Both --flag=value and --flag value forms are read.
func adaptArgs(args []string, mounts map[string]string) []string {
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	// Longest first, so /tmp/certs wins over /tmp.
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	move := func(v string) string {
		for _, p := range paths {
			if v == p || strings.HasPrefix(v, p+"/") {
				return mounts[p] + strings.TrimPrefix(v, p)
			}
		}
		return v
	}
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag, value, hasValue := strings.Cut(a, "=")
		if isFlagOfThePod(flag) {
			if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
			}
			continue
		}
		if hasValue && strings.HasPrefix(flag, "-") {
			out = append(out, flag+"="+move(value))
			continue
		}
		out = append(out, move(a))
	}
	return out
}

func isFlagOfThePod(flag string) bool {
	for _, f := range flagsOfThePod {
		if flag == f {
			return true
		}
	}
	return false
}

// PatchAPIServicePort sets spec.service.port of every installed
// APIService to port, and nothing else: the Service is an ExternalName
// for localhost, so the port is the replica's.
func (in *Installation) PatchAPIServicePort(ctx context.Context, port int) error {
	patch := fmt.Sprintf(`{"spec":{"service":{"port":%d}}}`, port)
	for _, name := range in.APIServices {
		if _, err := in.c.Kubectl(ctx, "patch", "apiservice", name, "--type", "merge", "-p", patch); err != nil {
			return err
		}
	}
	return nil
}

// WaitAvailable waits up to limit until every installed APIService is
// Available, failing at once when a replica exits.
func (in *Installation) WaitAvailable(ctx context.Context, limit time.Duration) error {
	for _, name := range in.APIServices {
		err := poll(ctx, "APIService "+name, time.Second, limit, func() error {
			if err := in.checkReplicas(); err != nil {
				return permanent{err}
			}
			status, message, err := in.c.APIServiceAvailable(ctx, name)
			if err != nil {
				return err
			}
			if status != "True" {
				return fmt.Errorf("not available: %s", message)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// APIServiceAvailable returns the status ("True", "False", "" when not
// yet set) and message of an APIService's Available condition.
func (c *Cluster) APIServiceAvailable(ctx context.Context, name string) (status, message string, err error) {
	out, err := c.Kubectl(ctx, "get", "apiservice", name, "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}|{.status.conditions[?(@.type=="Available")].message}`)
	if err != nil {
		return "", "", err
	}
	status, message, _ = strings.Cut(out, "|")
	return status, message, nil
}

func (in *Installation) checkReplicas() error {
	for _, r := range in.replicas {
		if done, err := r.p.exited(); done {
			return fmt.Errorf("%s exited (%v); see %s", r.Name, err, filepath.Join(in.c.opts.Dir, "logs", r.Name+".log"))
		}
	}
	return nil
}

// Replicas returns the replicas started, in order.
func (in *Installation) Replicas() []*Replica { return in.replicas }

// Uninstall stops every replica (SIGTERM, SIGKILL after 10s) and deletes
// what Install applied and the Secrets the replicas' --tls-bootstrap-secret
// named, waiting up to a minute for them to go.
func (in *Installation) Uninstall(ctx context.Context) error {
	for _, r := range in.replicas {
		r.Stop()
	}
	var errs []error
	if len(in.applied) > 0 {
		if _, err := in.c.KubectlAs(ctx, in.c.AdminKubeconfig, in.applied, "delete", "-f", "-", "--ignore-not-found", "--wait=true", "--timeout=60s"); err != nil {
			errs = append(errs, err)
		}
	}
	for s := range in.secrets {
		ns, name, _ := strings.Cut(s, "/")
		if _, err := in.c.Kubectl(ctx, "delete", "secret", name, "-n", ns, "--ignore-not-found", "--wait=true", "--timeout=60s"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stop ends the replica: SIGTERM to its process group, SIGKILL after 10s.
func (r *Replica) Stop() { r.p.stop() }

// Signal sends sig to the replica's process group, as the kubelet stops a
// container (SIGTERM) or the kernel ends it (SIGKILL).
func (r *Replica) Signal(sig syscall.Signal) error {
	if r.p.cmd.Process == nil {
		return errors.New(r.Name + " never started")
	}
	return syscall.Kill(-r.p.cmd.Process.Pid, sig)
}

// Done is closed when the replica's process has ended.
func (r *Replica) Done() <-chan struct{} { return r.p.done }

// Log is the path of the replica's log.
func (r *Replica) Log() string { return r.p.log.Name() }
