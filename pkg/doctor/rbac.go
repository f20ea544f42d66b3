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
// events; without them a warning, as the server scrapes on), and with
// --tls-bootstrap-secret the bootstrap's secrets and apiservices. It returns
// one finding per grant: ok, or fail (warn for the events) naming each
// missing permission and the binding or rule that grants it.
func CheckRBAC(ctx context.Context, client kubernetes.Interface, in RBACInput) []Finding {
	ns, sa, ok := strings.Cut(in.ServiceAccount, "/")
	if !ok || ns == "" || sa == "" {
		return []Finding{{Check: "rbac", Target: in.ServiceAccount, Status: StatusWarn,
			Message: fmt.Sprintf("service account %q is not namespace/name, so RBAC was not checked", in.ServiceAccount),
			Fix:     "run the doctor with --service-account=<namespace>/<name>"}}
	}
	target := "serviceaccount/" + in.ServiceAccount
	var findings []Finding
	for _, g := range grantsFor(ns, sa, flagValues(in.ServerArgs)) {
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
	return findings
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
			// pkg/nodeevents: a Node's events live in namespace default.
			what: "create and patch on events.k8s.io events in default (Node events)",
			perms: []permission{
				{verb: "create", group: "events.k8s.io", resource: "events", namespace: "default"},
				{verb: "patch", group: "events.k8s.io", resource: "events", namespace: "default"},
			},
			missingWarns: "Node events (MetricsScrapeFailed, MetricsScrapeRecovered) will not be written; scraping goes on without them",
			binding:      "system:metrics-server",
			fix: func(exists bool) string {
				const rule = `{apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"]}`
				if !exists {
					return "kubectl create clusterrolebinding system:metrics-server --clusterrole=system:metrics-server --serviceaccount=" + subject +
						" (its ClusterRole has the rule " + rule + " since the server writes Node events; manifests/base/rbac.yaml)"
				}
				return "add to ClusterRole system:metrics-server the rule " + rule + " (manifests/base/rbac.yaml)"
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
			{verb: "create", resource: "secrets", namespace: sns},
		},
		fix: func(bool) string {
			return fmt.Sprintf("bind to ServiceAccount %s a Role in %s with the rules {apiGroups: [\"\"], resources: [\"secrets\"], resourceNames: [%q], verbs: [\"get\", \"update\"]} and {apiGroups: [\"\"], resources: [\"secrets\"], verbs: [\"create\"]} (manifests/base)", subject, sns, sname)
		},
	})
	names := splitList(args["tls-bootstrap-apiservices"])
	if len(names) == 0 {
		names = []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"}
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
