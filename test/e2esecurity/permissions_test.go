package e2esecurity

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The table of SECURITY.md this test reads: a fenced block of this
// language, one grant a line, columns separated by blanks:
//
//	who  namespace  group  resources  names  verbs
//
// who is "server" (what manifests/base binds to the server's
// ServiceAccount) or "any-serviceaccount" (what Kubernetes' default roles
// give every ServiceAccount, bound to nothing else); namespace is "*" for
// a grant in every namespace (a ClusterRole bound cluster-wide); group is
// "core" for the core group and "url" for a non-resource URL; names is
// "-" when not limited to names. Lists are comma-separated.
const tableLanguage = "permissions"

const (
	whoServer = "server"
	whoAnySA  = "any-serviceaccount"
)

// atom is one verb on one resource (or non-resource URL) of one name in
// one namespace ("*": every namespace).
type atom struct {
	Namespace, Group, Resource, Name, Verb string
}

func (a atom) String() string {
	name := a.Name
	if name == "" {
		name = "-"
	}
	return fmt.Sprintf("%-12s %-28s %-40s %-40s %s", a.Namespace, a.Group, a.Resource, name, a.Verb)
}

// reviewed are the namespaces whose effective permissions the test lists:
// the server's own, default (where its events go) and one that holds
// nothing of ours.
var reviewed = []string{serverNamespace, "default", otherNamespace}

// TestEffectivePermissions lists, as the server's ServiceAccount, what it
// may do in each reviewed namespace (SelfSubjectRulesReview, the
// kube-apiserver's own answer from every binding in the cluster) and fails
// on any grant SECURITY.md's table does not list, and on any "server"
// line of the table the ServiceAccount does not have. The grants every
// ServiceAccount has (discovery, self reviews, the issuer's public keys)
// are not hidden: the table lists them as "any-serviceaccount", and the
// test checks those lines are exactly what a ServiceAccount bound to
// nothing may do.
func TestEffectivePermissions(t *testing.T) {
	ctx := context.Background()
	table := readTable(t)

	// A grant the control account has in every reviewed namespace is
	// written with namespace "*".
	seen := map[atom]int{}
	for _, ns := range reviewed {
		for a := range rulesOf(ctx, t, e.control, "control "+controlAccount, ns) {
			a.Namespace = "*"
			seen[a]++
		}
	}
	anySA := map[atom]bool{}
	for a, n := range seen {
		if n != len(reviewed) && a.Group != "url" {
			t.Errorf("a ServiceAccount bound to nothing has %s in %d of the namespaces %v only", a, n, reviewed)
		}
		anySA[a] = true
	}
	if len(anySA) == 0 {
		t.Errorf("a ServiceAccount bound to nothing may do nothing at all: not even self reviews, which every authenticated user may create")
	}
	listed := table[whoAnySA]
	if diff := setDiff(listed, anySA); diff != "" {
		t.Errorf("SECURITY.md's %q lines are not what a ServiceAccount bound to nothing may do (-listed +granted):\n%s", whoAnySA, diff)
	}

	granted := map[atom]bool{}
	for _, ns := range reviewed {
		for a := range rulesOf(ctx, t, e.server, serverUser, ns) {
			granted[a] = true
		}
	}
	var unlisted []string
	for a := range granted {
		if !covers(table[whoServer], a) && !covers(table[whoAnySA], a) {
			unlisted = append(unlisted, a.String())
		}
	}
	sort.Strings(unlisted)
	if len(unlisted) > 0 {
		t.Errorf("%s has %d grants SECURITY.md does not list (namespace, group, resource, name, verb):\n%s", serverUser, len(unlisted), strings.Join(unlisted, "\n"))
	}
	var missing []string
	for a := range table[whoServer] {
		for _, ns := range reviewed {
			if a.Namespace != "*" && a.Namespace != ns {
				continue
			}
			want := a
			if a.Group != "url" {
				want.Namespace = ns
			}
			if !granted[want] {
				missing = append(missing, want.String())
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("SECURITY.md lists %d grants %s does not have:\n%s", len(missing), serverUser, strings.Join(missing, "\n"))
	}
	if len(granted) == 0 || len(table[whoServer]) == 0 {
		t.Fatalf("nothing compared: %d grants, %d table lines", len(granted), len(table[whoServer]))
	}
	if !t.Failed() {
		logf("%s: %d grants over %v, each listed in SECURITY.md, each line of it granted", serverUser, len(granted), reviewed)
	}
}

// rulesOf asks, as client, what it may do in namespace ns, and returns each
// grant as atoms: resource grants in namespace ns, non-resource URLs in
// "*". The answer must be complete, or the list proves nothing.
func rulesOf(ctx context.Context, t *testing.T, client kubernetes.Interface, who, ns string) map[atom]bool {
	t.Helper()
	r, err := client.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authorizationv1.SelfSubjectRulesReview{
		Spec: authorizationv1.SelfSubjectRulesReviewSpec{Namespace: ns}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("SelfSubjectRulesReview in %s as %s: %v", ns, who, err)
	}
	if r.Status.Incomplete {
		t.Fatalf("SelfSubjectRulesReview in %s as %s is incomplete (%s): an authorizer cannot list its grants, so the list proves nothing", ns, who, r.Status.EvaluationError)
	}
	out := map[atom]bool{}
	for _, rule := range r.Status.ResourceRules {
		names := rule.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range rule.APIGroups {
			if g == "" {
				g = "core"
			}
			for _, res := range rule.Resources {
				for _, n := range names {
					for _, v := range rule.Verbs {
						out[atom{Namespace: ns, Group: g, Resource: res, Name: n, Verb: v}] = true
					}
				}
			}
		}
	}
	for _, rule := range r.Status.NonResourceRules {
		for _, u := range rule.NonResourceURLs {
			for _, v := range rule.Verbs {
				out[atom{Namespace: "*", Group: "url", Resource: u, Verb: v}] = true
			}
		}
	}
	return out
}

// covers says whether a line of table grants a.
func covers(table map[atom]bool, a atom) bool {
	if table[a] {
		return true
	}
	all := a
	all.Namespace = "*"
	return table[all]
}

// setDiff lists what is in want and not in got (-) and the reverse (+),
// one atom a line; "" when equal.
func setDiff(want, got map[atom]bool) string {
	var lines []string
	for a := range want {
		if !got[a] {
			lines = append(lines, "- "+a.String())
		}
	}
	for a := range got {
		if !want[a] {
			lines = append(lines, "+ "+a.String())
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// readTable parses SECURITY.md's fenced permissions block into atoms by
// who. It fails the test on a malformed line or a missing block.
func readTable(t *testing.T) map[string]map[atom]bool {
	t.Helper()
	path := filepath.Join(e.repo, "SECURITY.md")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[atom]bool{whoServer: {}, whoAnySA: {}}
	in, blocks := false, 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		switch {
		case text == "```"+tableLanguage:
			in = true
			blocks++
			continue
		case in && text == "```":
			in = false
			continue
		case !in || text == "" || strings.HasPrefix(text, "#"):
			continue
		}
		f := strings.Fields(text)
		if len(f) != 6 {
			t.Fatalf("%s:%d: %d columns, want 6 (who namespace group resources names verbs): %q", path, line, len(f), text)
		}
		who, ns, group := f[0], f[1], f[2]
		if _, ok := out[who]; !ok {
			t.Fatalf("%s:%d: who %q, want %s or %s", path, line, who, whoServer, whoAnySA)
		}
		names := strings.Split(f[4], ",")
		if f[4] == "-" {
			names = []string{""}
		}
		if group == "url" {
			ns = "*"
		}
		for _, res := range strings.Split(f[3], ",") {
			for _, n := range names {
				for _, v := range strings.Split(f[5], ",") {
					out[who][atom{Namespace: ns, Group: group, Resource: res, Name: n, Verb: v}] = true
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if blocks != 1 {
		t.Fatalf("%s has %d ```%s blocks, want 1", path, blocks, tableLanguage)
	}
	return out
}
