package chart

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/kubernetes/third_party/forked/golang/expansion"

	"github.com/kubemetrics/metrics-server/cmd/metrics-server/app/options"
)

// apiService holds the fields of an apiregistration.k8s.io/v1 APIService
// the chart sets (the test module does not import kube-aggregator).
type apiService struct {
	Spec struct {
		Group   string `json:"group"`
		Version string `json:"version"`
		Service struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			Port      *int32 `json:"port,omitempty"`
		} `json:"service"`
		GroupPriorityMinimum  int32  `json:"groupPriorityMinimum"`
		VersionPriority       int32  `json:"versionPriority"`
		InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
		CABundle              []byte `json:"caBundle"`
	} `json:"spec"`
}

// serviceMonitor holds the fields of a prometheus-operator ServiceMonitor
// the test checks.
type serviceMonitor struct {
	Metadata struct {
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Spec struct {
		JobLabel  string              `json:"jobLabel"`
		Selector  metav1LabelSelector `json:"selector"`
		Endpoints []struct {
			Port      string `json:"port"`
			Path      string `json:"path"`
			Scheme    string `json:"scheme"`
			TLSConfig struct {
				InsecureSkipVerify bool   `json:"insecureSkipVerify"`
				ServerName         string `json:"serverName"`
				CA                 struct {
					Secret struct {
						Name string `json:"name"`
						Key  string `json:"key"`
					} `json:"secret"`
				} `json:"ca"`
			} `json:"tlsConfig"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// certificate holds the fields of a cert-manager Certificate the tests
// check.
type certificate struct {
	Spec struct {
		IsCA       bool     `json:"isCA"`
		SecretName string   `json:"secretName"`
		DNSNames   []string `json:"dnsNames"`
		IssuerRef  struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

type metav1LabelSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

// TestLint runs helm lint --strict with the defaults and with each group
// of values the other tests render.
func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []string
	}{
		{"defaults", nil},
		{"high availability", []string{"replicas=2", "podDisruptionBudget.enabled=true"}},
		{"host network", []string{"hostNetwork.enabled=true"}},
		{"monitoring", []string{"serviceMonitor.enabled=true", "metrics.enabled=true", "prometheusRule.enabled=true"}},
		{"bring your own", []string{"apiService.v1=false", "rbac.create=false", "serviceAccount.create=false"}},
		{"someone else's APIServices", []string{"apiService.create=false"}},
		{"status reader", []string{"rbac.statusReader=true"}},
		{"cert-manager", []string{"tls.type=certManager"}},
		{"cert-manager with an issuer", []string{"tls.type=certManager", "tls.certManager.existingIssuer.name=corp-ca", "tls.certManager.existingIssuer.kind=ClusterIssuer"}},
		{"existing Secret and caBundle", []string{"tls.type=existingSecret", "tls.existingSecret.name=ms-serving", "--set-file=apiService.caBundle=" + writeCA(t)}},
		{"existing Secret unverified", []string{"tls.type=existingSecret", "tls.existingSecret.name=ms-serving", "apiService.insecureSkipTLSVerify=true"}},
		{"network policy", []string{"networkPolicy.enabled=true", "networkPolicy.ingress.apiServer.cidrs={10.0.0.0/24}", "serviceMonitor.enabled=true", "networkPolicy.ingress.prometheus.namespaceSelector.matchLabels.name=monitoring"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir(t), "--namespace", namespace}, valueArgs(tc.values)...)
			if _, err := helm(t, args...); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestDefaultsRenderTheBase renders the chart with its defaults and
// compares it with manifests/base, object by object.
func TestDefaultsRenderTheBase(t *testing.T) {
	base, chart := loadBase(t), mustRender(t)

	t.Run("Deployment", func(t *testing.T) {
		var want, got appsv1.Deployment
		base.decode(t, "Deployment/metrics-server", &want)
		chart.decode(t, "Deployment/metrics-server", &got)
		if got.Namespace != namespace {
			t.Errorf("namespace %q, want %q", got.Namespace, namespace)
		}
		if got.Spec.Replicas == nil || *got.Spec.Replicas != 1 {
			t.Errorf("replicas %v, want 1 as the base (which leaves it unset)", got.Spec.Replicas)
		}
		if diff := cmp.Diff(want.Spec.Strategy, got.Spec.Strategy); diff != "" {
			t.Errorf("strategy (-base +chart):\n%s", diff)
		}
		// The same flags with the same values, though the chart names
		// some the base leaves to their defaults (--tls-bootstrap-service
		// and -apiservices, which follow the release's names) and orders
		// them otherwise; then the same pod spec but for the arguments.
		if diff := cmp.Diff(flagValues(t, want), flagValues(t, got)); diff != "" {
			t.Errorf("the server's flags (-base +chart):\n%s", diff)
		}
		withoutArgs := func(d appsv1.Deployment) corev1.PodSpec {
			s := *d.Spec.Template.Spec.DeepCopy()
			s.Containers[0].Args = nil
			return s
		}
		if diff := cmp.Diff(withoutArgs(want), withoutArgs(got)); diff != "" {
			t.Errorf("pod spec (-base +chart):\n%s", diff)
		}
		checkSelects(t, "the Deployment's selector", got.Spec.Selector.MatchLabels, got.Spec.Template.Labels)
		checkFlags(t, got)
	})

	t.Run("ServiceAccount", func(t *testing.T) {
		var d appsv1.Deployment
		chart.decode(t, "Deployment/metrics-server", &d)
		var sa corev1.ServiceAccount
		chart.decode(t, "ServiceAccount/"+d.Spec.Template.Spec.ServiceAccountName, &sa)
		if sa.Namespace != namespace {
			t.Errorf("ServiceAccount in %q, want %q", sa.Namespace, namespace)
		}
	})

	t.Run("the same objects", func(t *testing.T) {
		// Kind, namespace and name of every object: a chart that renders
		// one more (a reader role of another name, a leftover) or one
		// fewer (the bootstrap's Secret) than the base would leave a
		// second object behind, or miss one, when an install moves from
		// `kubectl apply -k` to Helm.
		if diff := cmp.Diff(base.names(t), chart.names(t)); diff != "" {
			t.Errorf("objects (-base +chart):\n%s", diff)
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		if diff := cmp.Diff(permissions(t, base), permissions(t, chart)); diff != "" {
			t.Errorf("the server's and the readers' permissions (-base +chart):\n%s", diff)
		}
	})

	t.Run("roles by name", func(t *testing.T) {
		// Every role of the base, and with rbac.statusReader the status
		// reader of components/status-reader (which operators bind
		// themselves), is in the chart under the same name with the same
		// rules.
		b, err := os.ReadFile(filepath.Join(repoRoot(t), "manifests/components/status-reader/status-reader.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		base := loadBase(t)
		for k, o := range parse(t, "status-reader.yaml", b) {
			base[k] = o
		}
		chart := mustRender(t, "rbac.statusReader=true")
		for _, kind := range []string{"ClusterRole", "Role"} {
			for _, key := range base.ofKind(kind) {
				var want, got rbacv1.ClusterRole // a Role has the same fields
				base.decode(t, key, &want)
				if _, ok := chart[key]; !ok {
					t.Errorf("%s of the base is not in the chart", key)
					continue
				}
				chart.decode(t, key, &got)
				if diff := cmp.Diff(rules(want.Rules), rules(got.Rules)); diff != "" {
					t.Errorf("%s rules (-base +chart):\n%s", key, diff)
				}
			}
		}
	})

	t.Run("admission policy", func(t *testing.T) {
		// The policy that limits the server's APIService patches to
		// caBundle: the same spec, the same binding.
		for _, key := range []string{"ValidatingAdmissionPolicy/metrics-server-tls-bootstrap", "ValidatingAdmissionPolicyBinding/metrics-server-tls-bootstrap"} {
			var want, got struct {
				Spec map[string]any `json:"spec"`
			}
			base.decode(t, key, &want)
			chart.decode(t, key, &got)
			if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
				t.Errorf("%s spec (-base +chart):\n%s", key, diff)
			}
		}
	})

	t.Run("Service", func(t *testing.T) {
		var want, got corev1.Service
		base.decode(t, "Service/metrics-server", &want)
		chart.decode(t, "Service/metrics-server", &got)
		if diff := cmp.Diff(want.Spec.Ports, got.Spec.Ports); diff != "" {
			t.Errorf("ports (-base +chart):\n%s", diff)
		}
		var d appsv1.Deployment
		chart.decode(t, "Deployment/metrics-server", &d)
		checkSelects(t, "the Service's selector", got.Spec.Selector, d.Spec.Template.Labels)
	})

	t.Run("APIServices", func(t *testing.T) {
		for _, v := range []string{"v1", "v1beta1"} {
			var want, got apiService
			base.decode(t, "APIService/"+v+".metrics.k8s.io", &want)
			chart.decode(t, "APIService/"+v+".metrics.k8s.io", &got)
			// The base leaves the port to its default, 443, the
			// Service's port; the chart names it.
			if got.Spec.Service.Port == nil || *got.Spec.Service.Port != 443 {
				t.Errorf("%s: service port %v, want 443", v, got.Spec.Service.Port)
			}
			got.Spec.Service.Port = nil
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-base +chart):\n%s", v, diff)
			}
		}
	})

	t.Run("nothing else", func(t *testing.T) {
		for _, kind := range []string{"PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "NetworkPolicy", "Certificate", "Issuer"} {
			if keys := chart.ofKind(kind); len(keys) > 0 {
				t.Errorf("the defaults render %v", keys)
			}
		}
	})
}

// TestValues renders the chart with values and checks what each does.
func TestValues(t *testing.T) {
	caFile := writeCA(t)
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		values []string
		check  func(t *testing.T, objs objects)
	}{{
		name:   "apiService.v1=false registers only v1beta1",
		values: []string{"apiService.v1=false"},
		check: func(t *testing.T, objs objects) {
			if keys := objs.ofKind("APIService"); !cmp.Equal(keys, []string{"APIService/v1beta1.metrics.k8s.io"}) {
				t.Errorf("APIServices %v, want v1beta1.metrics.k8s.io alone", keys)
			}
		},
	}, {
		name:   "apiService.create=false registers none, and the bootstrap patches none",
		values: []string{"apiService.create=false"},
		check: func(t *testing.T, objs objects) {
			if keys := objs.ofKind("APIService"); len(keys) > 0 {
				t.Errorf("APIServices %v, want none", keys)
			}
			// The APIServices are someone else's (prometheus-adapter, a
			// second install): "--tls-bootstrap-apiservices=" names
			// none, and no grant lets the server patch any.
			flags := checkFlags(t, deployment(t, objs))
			if got := flags.Lookup("tls-bootstrap-apiservices"); !got.Changed || got.Value.String() != "[]" {
				t.Errorf("--tls-bootstrap-apiservices=%s (set: %v), want set to none", got.Value, got.Changed)
			}
			checkBootstrapRBAC(t, objs, "kube-system", "metrics-server-tls-bootstrap")
			if keys := objs.ofKind("ValidatingAdmissionPolicy"); len(keys) > 0 {
				t.Errorf("admission policies %v without any APIService to guard", keys)
			}
		},
	}, {
		name: "tls.type=selfSigned (the default): the server's bootstrap, verified",
		check: func(t *testing.T, objs objects) {
			d := deployment(t, objs)
			flags := checkFlags(t, d)
			for flag, want := range map[string]string{
				"tls-bootstrap-secret":      "kube-system/metrics-server-tls-bootstrap",
				"tls-bootstrap-service":     "metrics-server",
				"tls-bootstrap-apiservices": "[v1.metrics.k8s.io,v1beta1.metrics.k8s.io]",
				"tls-cert-file":             "",
			} {
				if got := flags.Lookup(flag).Value.String(); got != want {
					t.Errorf("--%s=%s, want %q", flag, got, want)
				}
			}
			if v := mountOf(d, "tls"); v != nil {
				t.Errorf("a tls volume is mounted (%+v); the bootstrap writes into --cert-dir", v)
			}
			checkVerified(t, objs, nil)
			checkBootstrapRBAC(t, objs, "kube-system", "metrics-server-tls-bootstrap", "v1.metrics.k8s.io", "v1beta1.metrics.k8s.io")
			checkShippedSecret(t, objs, "metrics-server-tls-bootstrap", namespace)
			var labelled []string
			for key, o := range objs {
				if o.labels(t)["app.kubernetes.io/component"] == "tls-bootstrap" {
					labelled = append(labelled, key)
				}
			}
			sort.Strings(labelled)
			want := []string{
				"ClusterRole/system:metrics-server-tls-bootstrap", "ClusterRoleBinding/system:metrics-server-tls-bootstrap",
				"Role/metrics-server-tls-bootstrap", "RoleBinding/metrics-server-tls-bootstrap", "Secret/metrics-server-tls-bootstrap",
				"ValidatingAdmissionPolicy/metrics-server-tls-bootstrap", "ValidatingAdmissionPolicyBinding/metrics-server-tls-bootstrap",
			}
			if diff := cmp.Diff(want, labelled); diff != "" {
				t.Errorf("objects labelled app.kubernetes.io/component=tls-bootstrap (-want +got):\n%s", diff)
			}
		},
	}, {
		name:   "tls.type=selfSigned with apiService.v1=false bootstraps only v1beta1",
		values: []string{"apiService.v1=false"},
		check: func(t *testing.T, objs objects) {
			flags := checkFlags(t, deployment(t, objs))
			if got := flags.Lookup("tls-bootstrap-apiservices").Value.String(); got != "[v1beta1.metrics.k8s.io]" {
				t.Errorf("--tls-bootstrap-apiservices=%s, want v1beta1.metrics.k8s.io alone", got)
			}
			checkBootstrapRBAC(t, objs, "kube-system", "metrics-server-tls-bootstrap", "v1beta1.metrics.k8s.io")
		},
	}, {
		name:   "tls.type=certManager: a CA chain, the serving Certificate mounted, the CA injected",
		values: []string{"tls.type=certManager"},
		check: func(t *testing.T, objs objects) {
			var ca, serving certificate
			objs.decode(t, "Certificate/metrics-server-ca", &ca)
			objs.decode(t, "Certificate/metrics-server", &serving)
			if !ca.Spec.IsCA || ca.Spec.IssuerRef.Name != "metrics-server-selfsigned" {
				t.Errorf("CA Certificate %+v, want isCA issued by metrics-server-selfsigned", ca.Spec)
			}
			var caIssuer struct {
				Spec struct {
					CA struct {
						SecretName string `json:"secretName"`
					} `json:"ca"`
				} `json:"spec"`
			}
			objs.decode(t, "Issuer/metrics-server-ca", &caIssuer)
			objs.decode(t, "Issuer/metrics-server-selfsigned", &map[string]any{})
			if caIssuer.Spec.CA.SecretName != ca.Spec.SecretName {
				t.Errorf("the CA Issuer signs with Secret %q, the CA is in %q", caIssuer.Spec.CA.SecretName, ca.Spec.SecretName)
			}
			if serving.Spec.IssuerRef.Name != "metrics-server-ca" || serving.Spec.IssuerRef.Kind != "Issuer" || serving.Spec.IsCA {
				t.Errorf("serving Certificate issued by %+v, want Issuer metrics-server-ca", serving.Spec.IssuerRef)
			}
			wantNames := []string{"metrics-server", "metrics-server.kube-system", "metrics-server.kube-system.svc", "metrics-server.kube-system.svc.cluster.local"}
			if diff := cmp.Diff(wantNames, serving.Spec.DNSNames); diff != "" {
				t.Errorf("serving certificate's DNS names (-want +got):\n%s", diff)
			}
			d := deployment(t, objs)
			checkServesSecret(t, d, serving.Spec.SecretName)
			checkVerified(t, objs, map[string]string{"cert-manager.io/inject-ca-from": "kube-system/metrics-server"})
			for key, o := range objs {
				if strings.Contains(key, "tls-bootstrap") || o.labels(t)["app.kubernetes.io/component"] == "tls-bootstrap" {
					t.Errorf("%s rendered: cert-manager needs no bootstrap Secret or permissions", key)
				}
			}
			checkBootstrapRBAC(t, objs, "kube-system", "")
		},
	}, {
		name:   "tls.type=certManager with an existing issuer",
		values: []string{"tls.type=certManager", "tls.certManager.existingIssuer.name=corp-ca", "tls.certManager.existingIssuer.kind=ClusterIssuer"},
		check: func(t *testing.T, objs objects) {
			var serving certificate
			objs.decode(t, "Certificate/metrics-server", &serving)
			if serving.Spec.IssuerRef.Name != "corp-ca" || serving.Spec.IssuerRef.Kind != "ClusterIssuer" {
				t.Errorf("issuerRef %+v, want ClusterIssuer corp-ca", serving.Spec.IssuerRef)
			}
			if _, ok := objs["Certificate/metrics-server-ca"]; ok || len(objs.ofKind("Issuer")) > 0 {
				t.Errorf("the chart's own chain is rendered beside an existing issuer: %v", append(objs.ofKind("Issuer"), objs.ofKind("Certificate")...))
			}
		},
	}, {
		name:   "tls.type=existingSecret with apiService.caBundle is verified, not skipped",
		values: []string{"tls.type=existingSecret", "tls.existingSecret.name=ms-serving", "--set-file=apiService.caBundle=" + caFile},
		check: func(t *testing.T, objs objects) {
			checkServesSecret(t, deployment(t, objs), "ms-serving")
			for _, v := range []string{"v1", "v1beta1"} {
				var a apiService
				objs.decode(t, "APIService/"+v+".metrics.k8s.io", &a)
				if !cmp.Equal(a.Spec.CABundle, caPEM) {
					t.Errorf("%s: caBundle %q, want the CA's PEM", v, a.Spec.CABundle)
				}
				if a.Spec.InsecureSkipTLSVerify {
					t.Errorf("%s: insecureSkipTLSVerify with a caBundle", v)
				}
			}
			if keys := append(objs.ofKind("Secret"), objs.ofKind("Certificate")...); len(keys) > 0 {
				t.Errorf("rendered %v for an existing Secret", keys)
			}
			checkBootstrapRBAC(t, objs, "kube-system", "")
		},
	}, {
		name:   "tls.type=existingSecret with apiService.insecureSkipTLSVerify",
		values: []string{"tls.type=existingSecret", "tls.existingSecret.name=ms-serving", "apiService.insecureSkipTLSVerify=true"},
		check: func(t *testing.T, objs objects) {
			for _, v := range []string{"v1", "v1beta1"} {
				var a apiService
				objs.decode(t, "APIService/"+v+".metrics.k8s.io", &a)
				if !a.Spec.InsecureSkipTLSVerify || len(a.Spec.CABundle) > 0 {
					t.Errorf("%s: insecureSkipTLSVerify %v, caBundle %q; want skipped", v, a.Spec.InsecureSkipTLSVerify, a.Spec.CABundle)
				}
			}
		},
	}, {
		name:   "replicas=2 with a disruption budget keeps one",
		values: []string{"replicas=2", "podDisruptionBudget.enabled=true"},
		check: func(t *testing.T, objs objects) {
			d := deployment(t, objs)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v, want 2", d.Spec.Replicas)
			}
			var pdb policyv1.PodDisruptionBudget
			objs.decode(t, "PodDisruptionBudget/metrics-server", &pdb)
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
				t.Errorf("minAvailable %v, maxUnavailable %v; want minAvailable 1 as the high-availability component", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
			}
			if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
				t.Errorf("unhealthyPodEvictionPolicy %v, want AlwaysAllow as the high-availability component, so an unready replica cannot block a drain", p)
			}
			checkSelects(t, "the budget's selector", pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		},
	}, {
		name:   "podDisruptionBudget.minAvailable",
		values: []string{"replicas=3", "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=2"},
		check: func(t *testing.T, objs objects) {
			var pdb policyv1.PodDisruptionBudget
			objs.decode(t, "PodDisruptionBudget/metrics-server", &pdb)
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Spec.MaxUnavailable != nil {
				t.Errorf("minAvailable %v, maxUnavailable %v; want minAvailable 2 alone", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
			}
		},
	}, {
		name:   "podDisruptionBudget.maxUnavailable",
		values: []string{"replicas=3", "podDisruptionBudget.enabled=true", "podDisruptionBudget.maxUnavailable=1"},
		check: func(t *testing.T, objs objects) {
			var pdb policyv1.PodDisruptionBudget
			objs.decode(t, "PodDisruptionBudget/metrics-server", &pdb)
			if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.MinAvailable != nil {
				t.Errorf("minAvailable %v, maxUnavailable %v; want maxUnavailable 1 alone", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
			}
		},
	}, {
		name:   "hostNetwork leaves the kubelet's port alone",
		values: []string{"hostNetwork.enabled=true"},
		check: func(t *testing.T, objs objects) {
			d := deployment(t, objs)
			if !d.Spec.Template.Spec.HostNetwork {
				t.Error("hostNetwork not set")
			}
			if port := httpsPort(t, d); port != 4443 {
				t.Errorf("containerPort %d on the host network, want 4443 (the kubelet holds 10250)", port)
			}
			if p := d.Spec.Template.Spec.DNSPolicy; p != corev1.DNSClusterFirstWithHostNet {
				t.Errorf("dnsPolicy %q on the host network, want ClusterFirstWithHostNet", p)
			}
			checkBindsHostIP(t, d.Spec.Template.Spec.Containers[0])
			checkFlags(t, d)
		},
	}, {
		name:   "hostNetwork with containerPort",
		values: []string{"hostNetwork.enabled=true", "containerPort=8443", "dnsPolicy=Default"},
		check: func(t *testing.T, objs objects) {
			d := deployment(t, objs)
			if port := httpsPort(t, d); port != 8443 {
				t.Errorf("containerPort %d, want 8443", port)
			}
			if p := d.Spec.Template.Spec.DNSPolicy; p != corev1.DNSDefault {
				t.Errorf("dnsPolicy %q, want the value's Default", p)
			}
			checkFlags(t, d)
		},
	}, {
		name:   "replicas=2 without placement spreads over nodes",
		values: []string{"replicas=2", "podDisruptionBudget.enabled=true"},
		check: func(t *testing.T, objs objects) {
			s := deployment(t, objs).Spec.Template
			if len(s.Spec.TopologySpreadConstraints) != 1 {
				t.Fatalf("topologySpreadConstraints %+v, want the chart's one", s.Spec.TopologySpreadConstraints)
			}
			c := s.Spec.TopologySpreadConstraints[0]
			if c.TopologyKey != "kubernetes.io/hostname" || c.WhenUnsatisfiable != corev1.ScheduleAnyway || c.MaxSkew != 1 || !cmp.Equal(c.MatchLabelKeys, []string{"pod-template-hash"}) {
				t.Errorf("spread %+v, want maxSkew 1 by hostname, ScheduleAnyway, per ReplicaSet", c)
			}
			checkSelects(t, "the spread's selector", c.LabelSelector.MatchLabels, s.Labels)
		},
	}, {
		name: "one replica, or placement given, is not spread by the chart",
		check: func(t *testing.T, objs objects) {
			for _, values := range [][]string{
				nil,
				{"replicas=2", "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey=kubernetes.io/hostname", "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels.k8s-app=metrics-server"},
				{"replicas=2", "topologySpreadConstraints[0].maxSkew=1", "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone", "topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule"},
			} {
				s := deployment(t, mustRender(t, values...)).Spec.Template.Spec
				for _, c := range s.TopologySpreadConstraints {
					if c.TopologyKey == "kubernetes.io/hostname" {
						t.Errorf("%v: the chart added its spread %+v", values, c)
					}
				}
			}
		},
	}, {
		name:   "containerPort",
		values: []string{"containerPort=6443"},
		check: func(t *testing.T, objs objects) {
			d := deployment(t, objs)
			if port := httpsPort(t, d); port != 6443 {
				t.Errorf("containerPort %d, want 6443", port)
			}
			checkFlags(t, d)
		},
	}, {
		name:   "serviceMonitor scrapes the Service",
		values: []string{"serviceMonitor.enabled=true"},
		check: func(t *testing.T, objs objects) {
			var sm serviceMonitor
			objs.decode(t, "ServiceMonitor/metrics-server", &sm)
			var svc corev1.Service
			objs.decode(t, "Service/metrics-server", &svc)
			if len(sm.Spec.Endpoints) == 1 {
				tc := sm.Spec.Endpoints[0].TLSConfig
				if tc.InsecureSkipVerify || tc.CA.Secret.Name != "metrics-server-tls-bootstrap" || tc.CA.Secret.Key != "ca.crt" || tc.ServerName != "metrics-server.kube-system.svc" {
					t.Errorf("tlsConfig %+v, want the CA of the bootstrap's Secret metrics-server-tls-bootstrap and the Service's name", tc)
				}
			}
			checkSelects(t, "the ServiceMonitor's selector", sm.Spec.Selector.MatchLabels, svc.Labels)
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != "https" || sm.Spec.Endpoints[0].Path != "/metrics" || sm.Spec.Endpoints[0].Scheme != "https" {
				t.Errorf("endpoints %+v, want https /metrics on the port named https", sm.Spec.Endpoints)
			}
		},
	}, {
		name:   "metrics.enabled opens /metrics and keeps the probes open",
		values: []string{"metrics.enabled=true"},
		check: func(t *testing.T, objs objects) {
			d := deployment(t, objs)
			flags := checkFlags(t, d)
			paths, err := flags.GetStringSlice("authorization-always-allow-paths")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"/metrics", "/livez", "/readyz"} {
				if !contains(paths, p) {
					t.Errorf("--authorization-always-allow-paths %v lacks %s", paths, p)
				}
			}
		},
	}, {
		name:   "args come after the defaults",
		values: []string{"args={--kubelet-insecure-tls,--metric-resolution=30s}"},
		check: func(t *testing.T, objs objects) {
			d := deployment(t, objs)
			flags := checkFlags(t, d)
			if v, _ := flags.GetBool("kubelet-insecure-tls"); !v {
				t.Error("--kubelet-insecure-tls not set")
			}
			if v, _ := flags.GetDuration("metric-resolution"); v != 30*time.Second {
				t.Errorf("--metric-resolution %v, want args' 30s over the default", v)
			}
		},
	}, {
		name:   "rbac.create=false and an existing ServiceAccount",
		values: []string{"rbac.create=false", "serviceAccount.create=false", "serviceAccount.name=ops-metrics"},
		check: func(t *testing.T, objs objects) {
			for _, kind := range []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding"} {
				if keys := objs.ofKind(kind); len(keys) > 0 {
					t.Errorf("rendered %v", keys)
				}
			}
			if sa := deployment(t, objs).Spec.Template.Spec.ServiceAccountName; sa != "ops-metrics" {
				t.Errorf("serviceAccountName %q, want ops-metrics", sa)
			}
		},
	}, {
		name:   "scheduling values reach the pod",
		values: []string{"priorityClassName=ops-critical", "nodeSelector.pool=infra", "tolerations[0].key=dedicated", "tolerations[0].operator=Exists", "topologySpreadConstraints[0].maxSkew=1", "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone", "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight=100", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey=kubernetes.io/hostname", "resources.requests.cpu=300m"},
		check: func(t *testing.T, objs objects) {
			s := deployment(t, objs).Spec.Template.Spec
			if s.PriorityClassName != "ops-critical" || s.NodeSelector["pool"] != "infra" || len(s.Tolerations) != 1 || s.Tolerations[0].Key != "dedicated" ||
				len(s.TopologySpreadConstraints) != 1 || s.TopologySpreadConstraints[0].TopologyKey != "topology.kubernetes.io/zone" ||
				s.Affinity == nil || s.Affinity.PodAntiAffinity == nil || len(s.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
				s.Containers[0].Resources.Requests.Cpu().MilliValue() != 300 {
				t.Errorf("pod spec does not carry the values: %+v", s)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustRender(t, tc.values...))
		})
	}
}

// TestOtherReleaseAndNamespace renders the chart as release "ops" in
// namespace "monitoring": every reference (APIService to Service, bindings
// to the ServiceAccount) follows the names, and the authentication reader
// stays bound in kube-system, where its Role is.
func TestOtherReleaseAndNamespace(t *testing.T) {
	const ns = "monitoring"
	objs, err := renderAs(t, "ops", ns)
	if err != nil {
		t.Fatal(err)
	}
	const name = "ops-metrics-server"
	var d appsv1.Deployment
	objs.decode(t, "Deployment/"+name, &d)
	var svc corev1.Service
	objs.decode(t, "Service/"+name, &svc)
	var sa corev1.ServiceAccount
	objs.decode(t, "ServiceAccount/"+d.Spec.Template.Spec.ServiceAccountName, &sa)
	for _, o := range []struct{ what, namespace string }{{"Deployment", d.Namespace}, {"Service", svc.Namespace}, {"ServiceAccount", sa.Namespace}} {
		if o.namespace != ns {
			t.Errorf("%s in %q, want %q", o.what, o.namespace, ns)
		}
	}
	for _, key := range objs.ofKind("APIService") {
		var a apiService
		objs.decode(t, key, &a)
		if a.Spec.Service.Name != svc.Name || a.Spec.Service.Namespace != ns {
			t.Errorf("%s points at %s/%s, want %s/%s", key, a.Spec.Service.Namespace, a.Spec.Service.Name, ns, svc.Name)
		}
	}
	var readerIn string
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, key := range objs.ofKind(kind) {
			var b rbacv1.RoleBinding
			objs.decode(t, key, &b)
			if len(b.Subjects) != 1 || b.Subjects[0].Name != sa.Name || b.Subjects[0].Namespace != ns {
				t.Errorf("%s binds %v, want the ServiceAccount %s/%s", key, b.Subjects, ns, sa.Name)
			}
			if _, ok := objs["ClusterRole/"+b.RoleRef.Name]; b.RoleRef.Kind == "ClusterRole" && strings.HasPrefix(b.RoleRef.Name, "system:"+name) && !ok {
				t.Errorf("%s refers to ClusterRole %s, which is not rendered", key, b.RoleRef.Name)
			}
			if b.RoleRef.Name == "extension-apiserver-authentication-reader" {
				readerIn = b.Namespace
			}
		}
	}
	if readerIn != "kube-system" {
		t.Errorf("the authentication reader is bound in %q, want kube-system", readerIn)
	}
	// Node events stay in default, whatever the release's namespace; the
	// bootstrap's Secret and Role follow the release; the aggregated
	// reader is the release's own (two releases must not fight over
	// system:aggregated-metrics-reader).
	var events rbacv1.RoleBinding
	objs.decode(t, "RoleBinding/"+name+"-events", &events)
	if events.Namespace != "default" || events.RoleRef.Name != name+"-events" {
		t.Errorf("RoleBinding %s-events in %q binds %s, want Role %s-events in default", name, events.Namespace, events.RoleRef.Name, name)
	}
	checkShippedSecret(t, objs, name+"-tls-bootstrap", ns)
	if flags := checkFlags(t, d); flags.Lookup("tls-bootstrap-secret").Value.String() != ns+"/"+name+"-tls-bootstrap" {
		t.Errorf("--tls-bootstrap-secret=%s, want %s/%s-tls-bootstrap", flags.Lookup("tls-bootstrap-secret").Value, ns, name)
	}
	var policy struct {
		Spec struct {
			MatchConditions []struct {
				Expression string `json:"expression"`
			} `json:"matchConditions"`
		} `json:"spec"`
	}
	objs.decode(t, "ValidatingAdmissionPolicy/"+name+"-tls-bootstrap", &policy)
	if want := `request.userInfo.username == "system:serviceaccount:` + ns + `:` + sa.Name + `"`; len(policy.Spec.MatchConditions) != 1 || policy.Spec.MatchConditions[0].Expression != want {
		t.Errorf("the admission policy matches %+v, want the one condition %s", policy.Spec.MatchConditions, want)
	}
	if _, ok := objs["ClusterRole/system:"+name+"-aggregated-reader"]; !ok {
		t.Errorf("no ClusterRole system:%s-aggregated-reader; have %v", name, objs.ofKind("ClusterRole"))
	}
	checkSelects(t, "the Service's selector", svc.Spec.Selector, d.Spec.Template.Labels)
}

// TestRefusedValues checks that contradictory, misspelled or mistyped
// values fail the render with a message that names them.
func TestRefusedValues(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
	}{
		{[]string{"hostNetwork.enabled=true", "containerPort=10250"}, "collides with the kubelet's port"},
		// The port is containerPort's: a second --secure-port would win
		// over it while the probes and the Service kept the old one, and
		// on the host network it could land on the kubelet's.
		{[]string{"args={--secure-port=4443}"}, "set containerPort instead"},
		{[]string{"hostNetwork.enabled=true", "args={--kubelet-insecure-tls,--secure-port=10250}"}, "set containerPort instead"},
		{[]string{"replicas=2", "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=1"}, "not both"},
		// A budget that no eviction can satisfy hangs every drain.
		{[]string{"podDisruptionBudget.enabled=true"}, "replicas=1 never lets a replica be evicted"},
		{[]string{"replicas=2", "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=2"}, "replicas=2 never lets a replica be evicted"},
		{[]string{"replicas=3", "podDisruptionBudget.enabled=true", "podDisruptionBudget.maxUnavailable=0"}, "maxUnavailable=0"},
		// TLS: the kube-apiserver verifies the server unless told not to
		// for an existing Secret, and each type gets what it needs.
		{[]string{"tls.type=selfsigned"}, "/tls/type"},
		{[]string{"apiService.insecureSkipTLSVerify=true"}, "/apiService/insecureSkipTLSVerify"},
		{[]string{"tls.type=certManager", "apiService.caBundle=LS0t"}, "/apiService/caBundle"},
		{[]string{"tls.type=existingSecret", "apiService.insecureSkipTLSVerify=true"}, "/tls/existingSecret/name"},
		{[]string{"tls.type=existingSecret", "tls.existingSecret.name=ms-serving"}, "tls.type=existingSecret needs apiService.caBundle"},
		{[]string{"tls.type=existingSecret", "tls.existingSecret.name=ms-serving", "apiService.caBundle=LS0t", "apiService.insecureSkipTLSVerify=true"}, "contradict each other"},
		{[]string{"tls.certManager.existingIssuer.kind=Issuers"}, "/tls/certManager/existingIssuer/kind"},
		// NetworkPolicy: it must admit the kube-apiserver, and Prometheus
		// when something scrapes.
		{[]string{"networkPolicy.enabled=true"}, "needs networkPolicy.ingress.apiServer"},
		{[]string{"networkPolicy.enabled=true", "networkPolicy.ingress.apiServer.cidrs={10.0.0.0/24}", "serviceMonitor.enabled=true"}, "needs networkPolicy.ingress.prometheus"},
		{[]string{"networkPolicy.enabled=true", "networkPolicy.ingress.apiServer.cidrs={10.0.0.0}"}, "/networkPolicy/ingress/apiServer/cidrs/0"},
		{[]string{"prometheusRule.enabled=true", "prometheusRule.for=15 minutes"}, "/prometheusRule/for"},
		// values.schema.json: a misspelled or mistyped value is refused,
		// not ignored.
		{[]string{"replica=2"}, "'replica' not allowed"},
		{[]string{"apiService.insecureSkipTlsVerify=false"}, "'insecureSkipTlsVerify' not allowed"},
		{[]string{"hostNetwork=true"}, "/hostNetwork"},
		{[]string{"podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=half"}, "/podDisruptionBudget/minAvailable"},
	} {
		t.Run(strings.Join(tc.values, ","), func(t *testing.T) {
			_, err := render(t, tc.values...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// mountOf returns the container's volume mount named name, or nil.
func mountOf(d appsv1.Deployment, name string) *corev1.VolumeMount {
	for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == name {
			return &m
		}
	}
	return nil
}

// checkServesSecret checks that the server serves the certificate of
// Secret secret, mounted read-only, instead of bootstrapping its own.
func checkServesSecret(t *testing.T, d appsv1.Deployment, secret string) {
	t.Helper()
	flags := checkFlags(t, d)
	m := mountOf(d, "tls")
	if m == nil || !m.ReadOnly {
		t.Fatalf("volume mounts %+v, want the Secret read-only at tls", d.Spec.Template.Spec.Containers[0].VolumeMounts)
	}
	var found bool
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "tls" {
			found = v.Secret != nil && v.Secret.SecretName == secret
		}
	}
	if !found {
		t.Errorf("volumes %+v, want tls from Secret %s", d.Spec.Template.Spec.Volumes, secret)
	}
	for flag, file := range map[string]string{"tls-cert-file": "tls.crt", "tls-private-key-file": "tls.key"} {
		if got, want := flags.Lookup(flag).Value.String(), m.MountPath+"/"+file; got != want {
			t.Errorf("--%s=%s, want %s", flag, got, want)
		}
	}
	if got := flags.Lookup("tls-bootstrap-secret").Value.String(); got != "" {
		t.Errorf("--tls-bootstrap-secret=%s beside a mounted certificate", got)
	}
}

// checkVerified checks that both APIServices leave verification on and
// carry no caBundle of the chart's (the server or cert-manager writes it),
// with annotations.
func checkVerified(t *testing.T, objs objects, annotations map[string]string) {
	t.Helper()
	for _, v := range []string{"v1", "v1beta1"} {
		var a struct {
			apiService
			Metadata metav1ObjectMeta `json:"metadata"`
		}
		objs.decode(t, "APIService/"+v+".metrics.k8s.io", &a)
		if a.Spec.InsecureSkipTLSVerify || len(a.Spec.CABundle) > 0 {
			t.Errorf("%s: insecureSkipTLSVerify %v, caBundle %q; want neither", v, a.Spec.InsecureSkipTLSVerify, a.Spec.CABundle)
		}
		if diff := cmp.Diff(annotations, a.Metadata.Annotations, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: annotations (-want +got):\n%s", v, diff)
		}
	}
}

type metav1ObjectMeta struct {
	Annotations map[string]string `json:"annotations"`
}

// checkBootstrapRBAC checks that the server's ServiceAccount may get and
// update exactly the Secret namespace/secret ("": no Secret at all) and
// nothing else of Secrets (never create: it could mint a bootstrap token),
// and get and patch exactly the APIServices named (none: no grant).
func checkBootstrapRBAC(t *testing.T, objs objects, namespace, secret string, apiServices ...string) {
	t.Helper()
	var granted []string
	for _, p := range permissions(t, objs)["ServiceAccount "+namespace+"/metrics-server"] {
		if strings.Contains(p, "secrets") || strings.Contains(p, "apiservices") {
			granted = append(granted, p)
		}
	}
	var want []string
	if secret != "" {
		want = append(want, `"" secrets get `+secret+` in `+namespace, `"" secrets update `+secret+` in `+namespace)
	}
	if names := strings.Join(apiServices, ","); names != "" {
		want = append(want, `"apiregistration.k8s.io" apiservices get `+names, `"apiregistration.k8s.io" apiservices patch `+names)
	}
	sort.Strings(want)
	sort.Strings(granted)
	if diff := cmp.Diff(want, granted); diff != "" {
		t.Errorf("the bootstrap's permissions (-want +got):\n%s", diff)
	}
}

// checkShippedSecret checks the bootstrap's Secret the chart ships: empty
// (no data, no stringData, so helm upgrade never touches what the server
// wrote), Opaque, annotated for the bootstrap, labelled as its object.
func checkShippedSecret(t *testing.T, objs objects, name, namespace string) {
	t.Helper()
	var s corev1.Secret
	objs.decode(t, "Secret/"+name, &s)
	if s.Type != corev1.SecretTypeOpaque || len(s.Data) > 0 || len(s.StringData) > 0 {
		t.Errorf("Secret %s: type %q, data %v, stringData %v; want an empty Opaque shell", name, s.Type, s.Data, s.StringData)
	}
	if s.Namespace != namespace || s.Annotations["kubemetrics.io/tls-bootstrap"] != "metrics-server" || s.Labels["app.kubernetes.io/component"] != "tls-bootstrap" {
		t.Errorf("Secret %s in %q: annotations %v, labels %v; want it in %s, annotated kubemetrics.io/tls-bootstrap=metrics-server, labelled tls-bootstrap", name, s.Namespace, s.Annotations, s.Labels, namespace)
	}
}

func deployment(t *testing.T, objs objects) appsv1.Deployment {
	t.Helper()
	var d appsv1.Deployment
	objs.decode(t, "Deployment/metrics-server", &d)
	return d
}

// httpsPort is the container port named https.
func httpsPort(t *testing.T, d appsv1.Deployment) int32 {
	t.Helper()
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "https" {
			return p.ContainerPort
		}
	}
	t.Fatal("no container port named https")
	return 0
}

// checkFlags parses the container's args with the server's own flags and
// checks that --secure-port is the https container port; it returns the
// parsed flags.
func checkFlags(t *testing.T, d appsv1.Deployment) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("metrics-server", pflag.ContinueOnError)
	for _, set := range options.NewOptions().Flags().FlagSets {
		fs.AddFlagSet(set)
	}
	args := kubeletExpanded(d.Spec.Template.Spec.Containers[0])
	if err := fs.Parse(args); err != nil {
		t.Fatalf("args %v are not the server's flags: %v", args, err)
	}
	port, err := fs.GetInt("secure-port")
	if err != nil {
		t.Fatal(err)
	}
	if want := httpsPort(t, d); port != int(want) {
		t.Errorf("--secure-port=%d but the https container port is %d", port, want)
	}
	return fs
}

// flagValues parses the container's args with the server's flags and
// returns every flag's value, set or default, by name.
func flagValues(t *testing.T, d appsv1.Deployment) map[string]string {
	t.Helper()
	fs := checkFlags(t, d)
	out := map[string]string{}
	fs.VisitAll(func(f *pflag.Flag) { out[f.Name] = f.Value.String() })
	return out
}

// checkSelects fails unless every label of selector is in labels.
func checkSelects(t *testing.T, what string, selector, labels map[string]string) {
	t.Helper()
	if len(selector) == 0 {
		t.Errorf("%s is empty", what)
	}
	for k, v := range selector {
		if labels[k] != v {
			t.Errorf("%s %v does not select labels %v", what, selector, labels)
			return
		}
	}
}

// permissions describes what the RBAC objects grant, independent of the
// objects' names: for the metrics-server ServiceAccount in kube-system,
// each rule of a role it is bound to as "group resource verb", or the
// name of a role outside the manifests ("Role kube-system/name"); for the
// aggregated roles, their aggregation labels and rules.
func permissions(t *testing.T, objs objects) map[string][]string {
	t.Helper()
	// roles are the rendered roles by "ClusterRole name" or "Role
	// namespace/name".
	roles := map[string]rbacv1.ClusterRole{}
	out := map[string][]string{}
	for _, key := range objs.ofKind("Role") {
		var r rbacv1.ClusterRole // a Role has the same fields
		objs.decode(t, key, &r)
		roles["Role "+r.Namespace+"/"+r.Name] = r
	}
	for _, key := range objs.ofKind("ClusterRole") {
		var r rbacv1.ClusterRole
		objs.decode(t, key, &r)
		roles["ClusterRole "+r.Name] = r
		var aggregates []string
		for l, v := range r.Labels {
			if strings.HasPrefix(l, "rbac.authorization.k8s.io/aggregate-to-") && v == "true" {
				aggregates = append(aggregates, l)
			}
		}
		if len(aggregates) > 0 {
			sort.Strings(aggregates)
			what := "aggregated into " + strings.Join(aggregates, ",")
			out[what] = append(out[what], rules(r.Rules)...)
			sort.Strings(out[what])
		}
	}
	server := "ServiceAccount " + namespace + "/metrics-server"
	for _, kind := range []string{"ClusterRoleBinding", "RoleBinding"} {
		for _, key := range objs.ofKind(kind) {
			var b rbacv1.RoleBinding // a ClusterRoleBinding has the same fields
			objs.decode(t, key, &b)
			bound := false
			for _, s := range b.Subjects {
				bound = bound || (s.Kind == "ServiceAccount" && s.Namespace == namespace && s.Name == "metrics-server")
			}
			if !bound {
				t.Errorf("%s binds %v, not the server's ServiceAccount", key, b.Subjects)
				continue
			}
			ref := "ClusterRole " + b.RoleRef.Name
			if b.RoleRef.Kind == "Role" {
				ref = "Role " + b.Namespace + "/" + b.RoleRef.Name
			}
			if r, ok := roles[ref]; ok {
				// Where a Role's rules apply matters: the Secret's namespace.
				in := ""
				if b.RoleRef.Kind == "Role" {
					in = " in " + b.Namespace
				}
				for _, rule := range rules(r.Rules) {
					out[server] = append(out[server], rule+in)
				}
			} else {
				out[server] = append(out[server], kind+" "+b.Namespace+" -> "+b.RoleRef.Kind+" "+b.RoleRef.Name)
			}
		}
	}
	sort.Strings(out[server])
	return out
}

// rules flattens RBAC rules into "group resource verb" triples, followed
// by the resource names a rule is limited to.
func rules(rs []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rs {
		names := ""
		if len(r.ResourceNames) > 0 {
			sorted := append([]string(nil), r.ResourceNames...)
			sort.Strings(sorted)
			names = " " + strings.Join(sorted, ",")
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					out = append(out, strconv.Quote(g)+" "+res+" "+v+names)
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			for _, v := range r.Verbs {
				out = append(out, "url "+u+" "+v)
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// writeCA writes the PEM of a self-signed CA certificate into a temporary
// file and returns its path, for apiService.caBundle.
func writeCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "metrics-server-ca"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkBindsHostIP: a server on the node's network listens on the node's
// address (the downward API's status.hostIP, expanded into
// --bind-address), not on every address of the node.
func checkBindsHostIP(t *testing.T, c corev1.Container) {
	t.Helper()
	var bind []string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--bind-address="); ok {
			bind = append(bind, v)
		}
	}
	if len(bind) != 1 || bind[0] != "$(HOST_IP)" {
		t.Errorf("--bind-address values %v, want exactly [$(HOST_IP)]", bind)
	}
	found := false
	for _, e := range c.Env {
		if e.Name == "HOST_IP" {
			found = e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.hostIP"
		}
	}
	if !found {
		t.Errorf("env %+v has no HOST_IP from status.hostIP", c.Env)
	}
}

// kubeletExpanded is the container's args as the kubelet passes them:
// $(VAR) replaced by the container's env, a downward-API field by a sample
// value of its kind (an IP for status.hostIP and status.podIP).
func kubeletExpanded(c corev1.Container) []string {
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && strings.HasSuffix(e.ValueFrom.FieldRef.FieldPath, "IP"):
			env[e.Name] = "10.1.2.3"
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "sample-" + e.ValueFrom.FieldRef.FieldPath
		}
	}
	mapping := expansion.MappingFuncFor(env)
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		out[i] = expansion.Expand(a, mapping)
	}
	return out
}
