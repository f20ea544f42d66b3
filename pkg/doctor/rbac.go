package doctor

import (
	"context"
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// permission is one request the server makes to the kube-apiserver.
type permission struct {
	verb, group, resource, subresource, namespace, name string
}

func (p permission) String() string {
	r := p.resource
	if p.group != "" {
		r += "." + p.group
	}
	if p.subresource != "" {
		r += "/" + p.subresource
	}
	s := p.verb + " " + r
	if p.name != "" {
		s += " " + p.name
	}
	if p.namespace != "" {
		s += " in " + p.namespace
	}
	return s
}

// grant is a set of permissions that one binding (or rule) gives, and how
// to give it.
type grant struct {
	what  string
	perms []permission
	// fix returns the one thing to do; bindingExists says whether the
	// binding named by binding exists (checked only when something is missing).
	binding string
	fix     func(bindingExists bool) string
	// missingWarns, when set, says what goes without the grant while the
	// server works on: a missing permission is then a warning, not a
	// failure.
	missingWarns string
}

// RBACInput says whose permissions CheckRBAC checks.
type RBACInput struct {
	// ServiceAccount is "namespace/name" of the server's ServiceAccount.
	ServiceAccount string
	// ServerArgs are the server's arguments (from its Deployment), or nil;
	// --tls-bootstrap-secret in them adds the bootstrap's permissions.
	ServerArgs []string
}

// CheckRBAC asks the kube-apiserver, by SubjectAccessReview, whether the
// server's ServiceAccount may do each thing the server does: list and watch
// nodes and pods, get nodes/metrics and nodes/stats (its ClusterRole), create
// tokenreviews and subjectaccessreviews (system:auth-delegator), read
// kube-system/extension-apiserver-authentication (the authentication
// reader), create and patch events.k8s.io events in namespace default (Node
// events, Role default/metrics-server-events; without them a warning, as the
// server scrapes on), and with --tls-bootstrap-secret get and update of that
// one Secret and get and patch of the APIServices of
// --tls-bootstrap-apiservices. It returns one finding per grant: ok, or fail
// (warn for the events) naming each missing permission and the binding or
// rule that grants it. A last finding, only when needed, warns about what
// the server must not have and an older install granted (excessGrants):
// create on Secrets, events outside default.
func CheckRBAC(ctx context.Context, client kubernetes.Interface, in RBACInput) []Finding {
	ns, sa, ok := strings.Cut(in.ServiceAccount, "/")
	if !ok || ns == "" || sa == "" {
		return []Finding{{Check: "rbac", Target: in.ServiceAccount, Status: StatusWarn,
			Message: fmt.Sprintf("service account %q is not namespace/name, so RBAC was not checked", in.ServiceAccount),
			Fix:     "run the doctor with --service-account=<namespace>/<name>"}}
	}
	target := "serviceaccount/" + in.ServiceAccount
	var findings []Finding
	args := flagValues(in.ServerArgs)
	for _, g := range grantsFor(ns, sa, args) {
		var missing []string
		var errs []string
		for _, p := range g.perms {
			allowed, err := mayDo(ctx, client, ns, sa, p)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", p, err))
				continue
			}
			if !allowed {
				missing = append(missing, p.String())
			}
		}
		switch {
		case len(errs) > 0:
			findings = append(findings, Finding{Check: "rbac", Target: target, Status: StatusWarn,
				Message: fmt.Sprintf("cannot check %s by SubjectAccessReview", g.what),
				Fix:     "run the doctor with a kubeconfig that may create subjectaccessreviews.authorization.k8s.io",
				Detail:  strings.Join(errs, "; ")})
		case len(missing) > 0:
			exists := false
			if g.binding != "" {
				_, err := client.RbacV1().ClusterRoleBindings().Get(ctx, g.binding, metav1.GetOptions{})
				exists = err == nil || !apierrors.IsNotFound(err)
			}
			f := Finding{Check: "rbac", Target: target, Status: StatusFail,
				Message: fmt.Sprintf("service account %s may not %s (%s)", in.ServiceAccount, strings.Join(missing, ", "), g.what),
				Fix:     g.fix(exists)}
			if g.missingWarns != "" {
				f.Status = StatusWarn
				f.Message = fmt.Sprintf("service account %s may not %s: %s", in.ServiceAccount, strings.Join(missing, ", "), g.missingWarns)
			}
			findings = append(findings, f)
		default:
			findings = append(findings, Finding{Check: "rbac", Target: target, Status: StatusOK,
				Message: fmt.Sprintf("service account %s has %s", in.ServiceAccount, g.what)})
		}
	}
	return append(findings, checkExcess(ctx, client, ns, sa, target, args)...)
}

// grantsFor lists what the server needs, by the binding that gives it in
// manifests/base (the chart names the same objects after its release).
func grantsFor(ns, sa string, args map[string]string) []grant {
	subject := ns + ":" + sa
	gs := []grant{
		{
			what: "ClusterRole system:metrics-server (nodes, pods, nodes/metrics, nodes/stats)",
			perms: []permission{
				{verb: "list", resource: "nodes"}, {verb: "watch", resource: "nodes"},
				{verb: "list", resource: "pods"}, {verb: "watch", resource: "pods"},
				{verb: "get", resource: "nodes", subresource: "metrics"},
				{verb: "get", resource: "nodes", subresource: "stats"},
			},
			binding: "system:metrics-server",
			fix: func(exists bool) string {
				if !exists {
					return "kubectl create clusterrolebinding system:metrics-server --clusterrole=system:metrics-server --serviceaccount=" + subject +
						" (the ClusterRole and binding are in manifests/base/rbac.yaml)"
				}
				return "ClusterRoleBinding system:metrics-server exists: make sure it binds ServiceAccount " + subject +
					" and that ClusterRole system:metrics-server has the rules {apiGroups: [\"\"], resources: [\"nodes/metrics\", \"nodes/stats\"], verbs: [\"get\"]} and {apiGroups: [\"\"], resources: [\"nodes\", \"pods\"], verbs: [\"list\", \"watch\"]} (manifests/base/rbac.yaml)"
			},
		},
		{
			what: "ClusterRole system:auth-delegator (tokenreviews, subjectaccessreviews)",
			perms: []permission{
				{verb: "create", group: "authentication.k8s.io", resource: "tokenreviews"},
				{verb: "create", group: "authorization.k8s.io", resource: "subjectaccessreviews"},
			},
			fix: func(bool) string {
				return "kubectl create clusterrolebinding metrics-server:system:auth-delegator --clusterrole=system:auth-delegator --serviceaccount=" + subject
			},
		},
		{
			what: "Role kube-system/extension-apiserver-authentication-reader (the aggregation layer's client CAs)",
			perms: []permission{
				{verb: "get", resource: "configmaps", namespace: AuthConfigMapNamespace, name: AuthConfigMapName},
				{verb: "list", resource: "configmaps", namespace: AuthConfigMapNamespace, name: AuthConfigMapName},
				{verb: "watch", resource: "configmaps", namespace: AuthConfigMapNamespace, name: AuthConfigMapName},
			},
			fix: func(bool) string {
				return "kubectl -n kube-system create rolebinding metrics-server-auth-reader --role=extension-apiserver-authentication-reader --serviceaccount=" + subject
			},
		},
		{
			// pkg/nodeevents: a Node's events live in namespace default;
			// so do the bootstrap's events about APIServices.
			what: "create and patch on events.k8s.io events in default (Node events)",
			perms: []permission{
				{verb: "create", group: "events.k8s.io", resource: "events", namespace: eventsNamespace},
				{verb: "patch", group: "events.k8s.io", resource: "events", namespace: eventsNamespace},
			},
			missingWarns: "Node events (MetricsScrapeFailed, MetricsScrapeRecovered) will not be written; scraping goes on without them",
			fix: func(bool) string {
				return "kubectl -n default create role metrics-server-events --verb=create,patch --resource=events.events.k8s.io && " +
					"kubectl -n default create rolebinding metrics-server-events --role=metrics-server-events --serviceaccount=" + subject +
					" (Role and RoleBinding default/metrics-server-events in manifests/base/rbac.yaml)"
			},
		},
	}
	secret := args["tls-bootstrap-secret"]
	if _, certFile := args["tls-cert-file"]; secret == "" || certFile {
		return gs
	}
	sns, sname, _ := strings.Cut(secret, "/")
	gs = append(gs, grant{
		what: fmt.Sprintf("the TLS bootstrap's Role on secret %s", secret),
		perms: []permission{
			{verb: "get", resource: "secrets", namespace: sns, name: sname},
			{verb: "update", resource: "secrets", namespace: sns, name: sname},
		},
		fix: func(bool) string {
			return fmt.Sprintf("bind to ServiceAccount %s a Role in %s with the rule {apiGroups: [\"\"], resources: [\"secrets\"], resourceNames: [%q], verbs: [\"get\", \"update\"]}, and apply the empty Secret the manifests ship (manifests/base/tls-bootstrap.yaml): the server may not create it", subject, sns, sname)
		},
	})
	// "--tls-bootstrap-apiservices=" means none (the chart with
	// apiService.create=false); absent means the flag's default.
	names := []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"}
	if v, set := args["tls-bootstrap-apiservices"]; set {
		names = splitList(v)
	}
	if len(names) == 0 {
		return gs
	}
	var perms []permission
	for _, n := range names {
		perms = append(perms,
			permission{verb: "get", group: "apiregistration.k8s.io", resource: "apiservices", name: n},
			permission{verb: "patch", group: "apiregistration.k8s.io", resource: "apiservices", name: n})
	}
	gs = append(gs, grant{
		what:  "the TLS bootstrap's ClusterRole on the APIServices",
		perms: perms,
		fix: func(bool) string {
			return fmt.Sprintf("bind to ServiceAccount %s a ClusterRole with the rule {apiGroups: [\"apiregistration.k8s.io\"], resources: [\"apiservices\"], resourceNames: [%s], verbs: [\"get\", \"patch\"]} (manifests/base)", subject, quoteAll(names))
		},
	})
	return gs
}

// eventsNamespace is where the server's events go: a Node's events live in
// default (cluster-scoped objects' events do).
const eventsNamespace = "default"

// excessGrants are permissions the server never uses and must not have,
// which earlier installs granted: create on Secrets (a bootstrap token Secret makes its
// holder a bootstrapper, SECURITY.md) and events in every namespace.
func excessGrants(ns string, args map[string]string) []permission {
	namespaces := []string{ns, "kube-system"}
	if sns, _, ok := strings.Cut(args["tls-bootstrap-secret"], "/"); ok && sns != "" {
		namespaces = append(namespaces, sns)
	}
	var out []permission
	seen := map[string]bool{}
	for _, n := range namespaces {
		if !seen[n] {
			seen[n] = true
			out = append(out, permission{verb: "create", resource: "secrets", namespace: n})
		}
	}
	return append(out, permission{verb: "create", group: "events.k8s.io", resource: "events", namespace: "kube-system"})
}

// checkExcess returns nothing when the server's ServiceAccount has none of
// excessGrants, else one warning naming each it has and where such a grant
// came from (or that it could not check).
func checkExcess(ctx context.Context, client kubernetes.Interface, ns, sa, target string, args map[string]string) []Finding {
	var extra, errs []string
	for _, p := range excessGrants(ns, args) {
		allowed, err := mayDo(ctx, client, ns, sa, p)
		switch {
		case err != nil:
			errs = append(errs, fmt.Sprintf("%s: %v", p, err))
		case allowed:
			extra = append(extra, p.String())
		}
	}
	switch {
	case len(extra) > 0:
		return []Finding{{Check: "rbac", Target: target, Status: StatusWarn,
			Message: fmt.Sprintf("service account %s/%s may %s, which the server never does: with create on Secrets its identity can mint a bootstrap token (SECURITY.md)", ns, sa, strings.Join(extra, ", ")),
			Fix: "remove the rule: earlier installs granted create on secrets in Role kube-system/metrics-server-tls-bootstrap and events cluster-wide in ClusterRole system:metrics-server; " +
				"apply the current manifests (kubectl apply -k manifests/base, or helm upgrade), or find the binding with kubectl get rolebindings,clusterrolebindings -A -o wide | grep " + ns + "/" + sa}}
	case len(errs) > 0:
		return []Finding{{Check: "rbac", Target: target, Status: StatusWarn,
			Message: "cannot check by SubjectAccessReview that the server has no more than it needs",
			Fix:     "run the doctor with a kubeconfig that may create subjectaccessreviews.authorization.k8s.io",
			Detail:  strings.Join(errs, "; ")}}
	}
	return nil
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// mayDo asks by SubjectAccessReview whether ServiceAccount ns/sa may do p.
func mayDo(ctx context.Context, client kubernetes.Interface, ns, sa string, p permission) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: p.verb, Group: p.group, Resource: p.resource, Subresource: p.subresource,
			Namespace: p.namespace, Name: p.name,
		},
	}}
	got, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, err
	}
	return got.Status.Allowed, nil
}
