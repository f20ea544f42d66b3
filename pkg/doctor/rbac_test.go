package doctor

import (
	"context"
	"errors"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// reviewer answers SubjectAccessReviews of user from the permissions it
// grants, written as permission.String() does.
func reviewer(t *testing.T, client *fake.Clientset, user string, granted []string, err error) {
	t.Helper()
	client.PrependReactor("create", "subjectaccessreviews", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if err != nil {
			return true, nil, err
		}
		sar := a.(k8stesting.CreateAction).GetObject().(*authorizationv1.SubjectAccessReview)
		if sar.Spec.User != user {
			t.Errorf("SubjectAccessReview for %q, want %q", sar.Spec.User, user)
		}
		r := sar.Spec.ResourceAttributes
		p := permission{verb: r.Verb, group: r.Group, resource: r.Resource, subresource: r.Subresource, namespace: r.Namespace, name: r.Name}
		out := sar.DeepCopy()
		for _, g := range granted {
			if g == p.String() {
				out.Status.Allowed = true
			}
		}
		return true, out, nil
	})
}

func TestCheckRBAC(t *testing.T) {
	all := []string{
		"list nodes", "watch nodes", "list pods", "watch pods", "get nodes/metrics", "get nodes/stats",
		"create tokenreviews.authentication.k8s.io", "create subjectaccessreviews.authorization.k8s.io",
		"get configmaps extension-apiserver-authentication in kube-system",
		"list configmaps extension-apiserver-authentication in kube-system",
		"watch configmaps extension-apiserver-authentication in kube-system",
		"create events.events.k8s.io in default", "patch events.events.k8s.io in default",
	}
	bootstrap := []string{
		"get secrets metrics-server-tls-bootstrap in kube-system", "update secrets metrics-server-tls-bootstrap in kube-system",
		"get apiservices.apiregistration.k8s.io v1.metrics.k8s.io", "patch apiservices.apiregistration.k8s.io v1.metrics.k8s.io",
		"get apiservices.apiregistration.k8s.io v1beta1.metrics.k8s.io", "patch apiservices.apiregistration.k8s.io v1beta1.metrics.k8s.io",
	}
	without := func(list []string, drop ...string) []string {
		var out []string
		for _, p := range list {
			keep := true
			for _, d := range drop {
				keep = keep && p != d
			}
			if keep {
				out = append(out, p)
			}
		}
		return out
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "system:metrics-server"}}
	bootArgs := []string{"--cert-dir=/tmp", "--tls-bootstrap-secret=kube-system/metrics-server-tls-bootstrap"}
	// older is what installs before the shipped Secret and the events
	// Role granted beyond that: create on every Secret in kube-system and
	// events in every namespace.
	older := []string{"create secrets in kube-system", "create events.events.k8s.io in kube-system", "patch events.events.k8s.io in kube-system"}
	tests := []struct {
		name    string
		granted []string
		args    []string
		objects []runtime.Object
		sarErr  error
		// want is "status: text" per finding, text a part of the message
		// or, after "fix:", of the fix.
		want []string
	}{
		{"manifests/base", all, nil, []runtime.Object{binding}, nil, []string{
			"ok: has ClusterRole system:metrics-server", "ok: has ClusterRole system:auth-delegator", "ok: has Role kube-system/extension-apiserver-authentication-reader",
			"ok: has create and patch on events.k8s.io events in default (Node events)"}},
		{"binding deleted", without(all, "list nodes", "watch nodes", "list pods", "watch pods", "get nodes/metrics", "get nodes/stats"), nil, nil, nil, []string{
			"fail: fix:kubectl create clusterrolebinding system:metrics-server --clusterrole=system:metrics-server --serviceaccount=kube-system:metrics-server",
			"ok: auth-delegator", "ok: reader", "ok: Node events"}},
		{"binding and events deleted", without(all, "list nodes", "watch nodes", "list pods", "watch pods", "get nodes/metrics", "get nodes/stats",
			"create events.events.k8s.io in default", "patch events.events.k8s.io in default"), nil, nil, nil, []string{
			"fail: may not list nodes", "ok: auth-delegator", "ok: reader",
			"warn: fix:kubectl -n default create role metrics-server-events --verb=create,patch --resource=events.events.k8s.io && kubectl -n default create rolebinding metrics-server-events --role=metrics-server-events --serviceaccount=kube-system:metrics-server"}},
		{"rule missing", without(all, "get nodes/stats"), nil, []runtime.Object{binding}, nil, []string{
			"fail: service account kube-system/metrics-server may not get nodes/stats (ClusterRole system:metrics-server",
			"ok: auth-delegator", "ok: reader", "ok: Node events"}},
		{"no auth-delegator", without(all, "create tokenreviews.authentication.k8s.io", "create subjectaccessreviews.authorization.k8s.io"), nil, []runtime.Object{binding}, nil, []string{
			"ok: system:metrics-server",
			"fail: fix:kubectl create clusterrolebinding metrics-server:system:auth-delegator --clusterrole=system:auth-delegator --serviceaccount=kube-system:metrics-server",
			"ok: reader", "ok: Node events"}},
		{"no reader", without(all, "watch configmaps extension-apiserver-authentication in kube-system"), nil, []runtime.Object{binding}, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator",
			"fail: fix:kubectl -n kube-system create rolebinding metrics-server-auth-reader --role=extension-apiserver-authentication-reader", "ok: Node events"}},
		{"no events (a ClusterRole from before Node events)", without(all, "create events.events.k8s.io in default", "patch events.events.k8s.io in default"), nil, []runtime.Object{binding}, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator", "ok: reader",
			"warn: service account kube-system/metrics-server may not create events.events.k8s.io in default, patch events.events.k8s.io in default: Node events (MetricsScrapeFailed, MetricsScrapeRecovered) will not be written; scraping goes on without them"}},
		{"events created, not patched", without(all, "patch events.events.k8s.io in default"), nil, []runtime.Object{binding}, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator", "ok: reader",
			"warn: fix:(Role and RoleBinding default/metrics-server-events in manifests/base/rbac.yaml)"}},
		{"bootstrap", append(append([]string{}, all...), bootstrap...), bootArgs, nil, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator", "ok: reader", "ok: Node events", "ok: secret kube-system/metrics-server-tls-bootstrap", "ok: APIServices"}},
		// The Secret is shipped: get and update are all the bootstrap
		// needs, and create is not asked for.
		{"bootstrap without update or patch", without(append(append([]string{}, all...), bootstrap...), "update secrets metrics-server-tls-bootstrap in kube-system", "patch apiservices.apiregistration.k8s.io v1.metrics.k8s.io"), bootArgs, nil, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator", "ok: reader", "ok: Node events",
			"fail: may not update secrets metrics-server-tls-bootstrap in kube-system",
			"fail: may not patch apiservices.apiregistration.k8s.io v1.metrics.k8s.io"}},
		{"bootstrap of an older install: create on Secrets, events everywhere", append(append(append([]string{}, all...), bootstrap...), older...), bootArgs, nil, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator", "ok: reader", "ok: Node events", "ok: secret kube-system/metrics-server-tls-bootstrap", "ok: APIServices",
			"warn: service account kube-system/metrics-server may create secrets in kube-system, create events.events.k8s.io in kube-system, which the server never does"}},
		{"bootstrap patching no APIService (chart apiService.create=false)", append(append([]string{}, all...), bootstrap[:2]...), append([]string{"--tls-bootstrap-apiservices="}, bootArgs...), nil, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator", "ok: reader", "ok: Node events", "ok: secret kube-system/metrics-server-tls-bootstrap"}},
		{"bootstrap off with a certificate file", all, append([]string{"--tls-cert-file=/certs/tls.crt"}, bootArgs...), nil, nil, []string{
			"ok: system:metrics-server", "ok: auth-delegator", "ok: reader", "ok: Node events"}},
		{"operator may not review", nil, nil, nil, errors.New(`subjectaccessreviews.authorization.k8s.io is forbidden: User "dev" cannot create resource "subjectaccessreviews"`), []string{
			"warn: cannot check", "warn: cannot check", "warn: cannot check", "warn: cannot check create and patch on events.k8s.io events in default (Node events)",
			"warn: cannot check by SubjectAccessReview that the server has no more than it needs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := fake.NewClientset(tt.objects...)
			reviewer(t, client, "system:serviceaccount:kube-system:metrics-server", tt.granted, tt.sarErr)
			got := CheckRBAC(context.Background(), client, RBACInput{ServiceAccount: "kube-system/metrics-server", ServerArgs: tt.args})
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, f := range got {
				status, text, _ := strings.Cut(tt.want[i], ": ")
				if string(f.Status) != status {
					t.Errorf("finding %d status = %s, want %s (%+v)", i, f.Status, status, f)
				}
				in := f.Message
				if fix, ok := strings.CutPrefix(text, "fix:"); ok {
					in, text = f.Fix, fix
				}
				if !strings.Contains(in, text) {
					t.Errorf("finding %d: %q does not contain %q", i, in, text)
				}
				if f.Check != "rbac" || f.Target != "serviceaccount/kube-system/metrics-server" {
					t.Errorf("finding %d is %s %s", i, f.Check, f.Target)
				}
			}
		})
	}
}
