package e2esecurity

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubemetrics/metrics-server/test/localcluster"
)

// TestReapplyKeepsWhatTheServerWrote: the base ships the bootstrap's
// Secret with no data, so applying the base again (an upgrade, a GitOps
// sync) never touches what the server wrote into it. The server's
// ServiceAccount fills the shell as the bootstrap does (an update, all it
// may do), then the base is applied again with kubectl apply (the
// three-way merge Helm's upgrade uses too) and with kubectl apply
// --server-side; the data must survive both.
func TestReapplyKeepsWhatTheServerWrote(t *testing.T) {
	ctx := context.Background()
	secrets := e.server.CoreV1().Secrets(serverNamespace)
	cur, err := secrets.Get(ctx, shippedSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cur.Data) > 0 {
		t.Errorf("Secret %s/%s holds %d keys as installed; want the empty shell", serverNamespace, shippedSecret, len(cur.Data))
	}
	written := map[string][]byte{"tls.crt": []byte("cert"), "tls.key": []byte("key"), "ca.crt": []byte("ca"), "ca.key": []byte("ca key")}
	cur.Data = written
	if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "metrics-server"}); err != nil {
		t.Fatalf("filling the shell as %s: %v", serverUser, err)
	}
	t.Cleanup(func() {
		// Back to the empty shell for the tests after this one.
		s, err := e.admin.CoreV1().Secrets(serverNamespace).Get(context.Background(), shippedSecret, metav1.GetOptions{})
		if err == nil {
			s.Data = nil
			_, err = e.admin.CoreV1().Secrets(serverNamespace).Update(context.Background(), s, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Errorf("emptying the Secret again: %v", err)
		}
	})
	check := func(how string) {
		t.Helper()
		s, err := e.admin.CoreV1().Secrets(serverNamespace).Get(ctx, shippedSecret, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(text(written), text(s.Data)); diff != "" {
			t.Errorf("after %s the Secret's data changed (-written +now):\n%s", how, diff)
		}
		if s.Type != corev1.SecretTypeOpaque || s.Annotations["kubemetrics.io/tls-bootstrap"] != "metrics-server" {
			t.Errorf("after %s: type %s, annotations %v", how, s.Type, s.Annotations)
		}
	}

	if _, err := e.cluster.Install(ctx, "base-reapplied", e.base); err != nil {
		t.Fatal(err)
	}
	check("kubectl apply of manifests/base")

	objs, err := localcluster.Decode(e.base)
	if err != nil {
		t.Fatal(err)
	}
	var shell []byte
	for _, o := range objs {
		if o.GetKind() == "Secret" && o.GetName() == shippedSecret {
			if shell, err = yaml.Marshal(o.Object); err != nil {
				t.Fatal(err)
			}
		}
	}
	if shell == nil {
		t.Fatalf("manifests/base renders no Secret %s", shippedSecret)
	}
	if _, err := e.cluster.KubectlAs(ctx, e.cluster.AdminKubeconfig, shell, "apply", "--server-side", "--field-manager=kubectl-gitops", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	check("kubectl apply --server-side of the base's Secret")
}

// text shows a Secret's data as strings, for readable diffs.
func text(data map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range data {
		out[k] = string(v)
	}
	return out
}
