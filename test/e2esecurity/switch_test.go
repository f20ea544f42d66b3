package e2esecurity

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// bootstrapLabel selects every object that exists only for the
// serving-certificate bootstrap.
const bootstrapLabel = "app.kubernetes.io/component=tls-bootstrap"

// TestSwitchToCertManagerLeavesNoBootstrapAccess plays an operator moving
// an installed manifests/base to manifests/overlays/cert-manager with
// kubectl apply, which deletes nothing the new render lacks: the
// bootstrap's Secret (with its CA key), its Role on that Secret and its
// ClusterRole on the APIServices stay. Then it runs the one command
// docs/tls.md gives, as printed there, and checks as the server's
// ServiceAccount that no access to any Secret nor to any APIService is
// left, and as the admin that it deleted nothing else. It puts the base
// back when it ends.
func TestSwitchToCertManagerLeavesNoBootstrapAccess(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() {
		if _, err := e.cluster.Install(context.Background(), "base-again", e.base); err != nil {
			t.Errorf("putting manifests/base back: %v", err)
		}
	})
	rendered, err := e.cluster.RenderKustomize(ctx, filepath.Join(e.repo, "manifests/overlays/cert-manager"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := localcluster.Decode(rendered)
	if err != nil {
		t.Fatal(err)
	}
	// No cert-manager here: its objects are left out; the rest is applied
	// as the operator's kubectl apply would (localcluster.Install).
	var kept bytes.Buffer
	for _, o := range objs {
		if o.GroupVersionKind().Group == "cert-manager.io" {
			continue
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		kept.WriteString("---\n")
		kept.Write(b)
	}
	if _, err := e.cluster.Install(ctx, "cert-manager", kept.Bytes()); err != nil {
		t.Fatal(err)
	}
	before := rulesOf(ctx, t, e.server, serverUser, serverNamespace)
	if len(grantsOn(before, "core", "secrets")) == 0 || len(grantsOn(before, "apiregistration.k8s.io", "apiservices")) == 0 {
		t.Fatalf("after kubectl apply of the cert-manager overlay the server has no bootstrap grant left, so the case the command is for does not arise here")
	}
	if _, err := e.admin.CoreV1().Secrets(serverNamespace).Get(ctx, shippedSecret, metav1.GetOptions{}); err != nil {
		t.Fatalf("the bootstrap's Secret should have stayed after kubectl apply: %v", err)
	}

	command := documentedCommand(t)
	logf("running the command of docs/tls.md: %s", strings.Join(command, " "))
	if out, err := e.cluster.Kubectl(ctx, command[1:]...); err != nil {
		t.Fatalf("%s: %v", strings.Join(command, " "), err)
	} else {
		logf("%s", strings.TrimSpace(out))
	}

	after := rulesOf(ctx, t, e.server, serverUser, serverNamespace)
	for _, g := range [][2]string{{"core", "secrets"}, {"apiregistration.k8s.io", "apiservices"}} {
		if left := grantsOn(after, g[0], g[1]); len(left) > 0 {
			t.Errorf("after the command the server still has grants on %s/%s:\n%s", g[0], g[1], strings.Join(left, "\n"))
		}
	}
	if _, err := e.admin.CoreV1().Secrets(serverNamespace).Get(ctx, shippedSecret, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the bootstrap's Secret (which holds its CA key) after the command: %v, want NotFound", err)
	}
	// Every object of the base labelled as the bootstrap's is gone,
	// whatever its kind.
	baseObjs, err := localcluster.Decode(e.base)
	if err != nil {
		t.Fatal(err)
	}
	labelled := 0
	for _, o := range baseObjs {
		if o.GetLabels()["app.kubernetes.io/component"] != "tls-bootstrap" {
			continue
		}
		labelled++
		args := []string{"get", strings.ToLower(o.GetKind()), o.GetName(), "--ignore-not-found", "-o", "name"}
		if ns := o.GetNamespace(); ns != "" {
			args = append(args, "-n", ns)
		}
		if out, err := e.cluster.Kubectl(ctx, args...); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("%s %s/%s is left after the command (%v)", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	if labelled == 0 {
		t.Errorf("manifests/base renders no object labelled %s", bootstrapLabel)
	}
	// Nothing else went: the server's own roles and bindings stay.
	rbac := e.admin.RbacV1()
	for what, get := range map[string]func() error{
		"ClusterRole system:metrics-server": func() error {
			_, err := rbac.ClusterRoles().Get(ctx, "system:metrics-server", metav1.GetOptions{})
			return err
		},
		"ClusterRoleBinding system:metrics-server": func() error {
			_, err := rbac.ClusterRoleBindings().Get(ctx, "system:metrics-server", metav1.GetOptions{})
			return err
		},
		"RoleBinding kube-system/metrics-server-auth-reader": func() error {
			_, err := rbac.RoleBindings(serverNamespace).Get(ctx, "metrics-server-auth-reader", metav1.GetOptions{})
			return err
		},
		"Role default/metrics-server-events": func() error {
			_, err := rbac.Roles("default").Get(ctx, "metrics-server-events", metav1.GetOptions{})
			return err
		},
		"ClusterRole system:aggregated-metrics-reader": func() error {
			_, err := rbac.ClusterRoles().Get(ctx, "system:aggregated-metrics-reader", metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Errorf("%s after the command: %v", what, err)
		}
	}
}

// documentedCommand returns the command of docs/tls.md that deletes the
// bootstrap's objects by their label, split into words.
func documentedCommand(t *testing.T) []string {
	t.Helper()
	path := filepath.Join(e.repo, "docs/tls.md")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var found [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "kubectl delete ") && strings.Contains(line, "-l "+bootstrapLabel) {
			found = append(found, strings.Fields(line))
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s has %d lines `kubectl delete ... -l %s`, want one", path, len(found), bootstrapLabel)
	}
	return found[0]
}

// grantsOn returns the atoms on group/resource, sorted.
func grantsOn(atoms map[atom]bool, group, resource string) []string {
	var out []string
	for a := range atoms {
		if a.Group == group && a.Resource == resource {
			out = append(out, a.String())
		}
	}
	sort.Strings(out)
	return out
}
