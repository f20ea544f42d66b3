package certbootstrap

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// TestAPIServiceForbidden: the error of an APIService refusal names the
// ClusterRole rule.
func TestAPIServiceForbidden(t *testing.T) {
	for _, verb := range []string{"get", "patch"} {
		t.Run(verb, func(t *testing.T) {
			c := newCluster(t, metricsAPIService(v1API))
			c.agg.PrependReactor(verb, "apiservices", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "apiregistration.k8s.io", Resource: "apiservices"}, v1API, errors.New("RBAC: access denied"))
			})
			b := c.bootstrapper(t, t.TempDir(), nil, 0)
			state, err := b.syncAPIService(t.Context(), v1API, []byte("ca"))
			want := `add "v1.metrics.k8s.io" to the resourceNames of the rule {apiGroups: ["apiregistration.k8s.io"], resources: ["apiservices"], verbs: ["get", "patch"]}`
			if state != stateFailed || err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "verb "+verb+" is missing") {
				t.Errorf("syncAPIService: %s, %v\nwant failed with %s", state, err, want)
			}
		})
	}
}

// caBundleIs waits (5s at most) until APIService name holds ca with TLS
// verified.
func caBundleIs(t *testing.T, c *cluster, name string, ca []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err := c.agg.ApiregistrationV1().APIServices().Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && bytes.Equal(a.Spec.CABundle, ca) && !a.Spec.InsecureSkipTLSVerify {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("APIService %s: not verifying with the Secret's CA within 5s (err %v)", name, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunRepatchesDrift: Run puts the caBundle back when someone changes
// it or turns verification off, sets it on an APIService created after the
// start, and leaves a local APIService alone without stopping the others.
func TestRunRepatchesDrift(t *testing.T) {
	local := metricsAPIService("v1.local.example.com")
	local.Spec.Service, local.Spec.InsecureSkipTLSVerify = nil, false
	c := newCluster(t, metricsAPIService(v1beta1API), local)
	b := c.bootstrapper(t, t.TempDir(), nil, 10*time.Millisecond)
	b.cfg.APIServiceNames = []string{"v1.local.example.com", v1API, v1beta1API}
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ca := c.secret(t).Data[KeyCA]
	caBundleIs(t, c, v1beta1API, ca)
	if b.apiServiceStates[v1API] != stateMissing || b.apiServiceStates["v1.local.example.com"] != stateFailed {
		t.Errorf("states after Init: %v; want v1 missing and the local one failed", b.apiServiceStates)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, err := c.agg.ApiregistrationV1().APIServices().Create(t.Context(), metricsAPIService(v1API), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	caBundleIs(t, c, v1API, ca)

	for _, drift := range []struct {
		name     string
		caBundle []byte
		insecure bool
	}{
		{"insecureSkipTLSVerify", nil, true},
		{"another CA", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), false},
	} {
		a := c.apiService(t, v1beta1API)
		a.Spec.CABundle, a.Spec.InsecureSkipTLSVerify = drift.caBundle, drift.insecure
		if _, err := c.agg.ApiregistrationV1().APIServices().Update(t.Context(), a, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		caBundleIs(t, c, v1beta1API, ca)
	}
	if got := c.apiService(t, "v1.local.example.com"); got.Spec.CABundle != nil {
		t.Error("the local APIService got a caBundle")
	}
}

// TestForeignAPIServicesLeftAlone: an APIService that another server backs
// (another Service, the same name in another namespace) or whose caBundle
// cert-manager injects keeps its caBundle, said once (not at every sync)
// in a log line and a Warning event regarding it; ours beside them is
// patched.
func TestForeignAPIServicesLeftAlone(t *testing.T) {
	adapter := metricsAPIService("v1beta1.custom.metrics.k8s.io")
	adapter.Spec.Service.Namespace, adapter.Spec.Service.Name = "monitoring", "prometheus-adapter"
	second := metricsAPIService(v1API)
	second.Spec.Service.Namespace = "metrics-two"
	injected := metricsAPIService(v1beta1API)
	injected.Annotations = map[string]string{"cert-manager.io/inject-ca-from": "kube-system/metrics-server"}
	theirCA := []byte("-----BEGIN CERTIFICATE-----\ntheirs\n-----END CERTIFICATE-----\n")
	for _, a := range []*apiregv1.APIService{adapter, second, injected} {
		a.Spec.CABundle, a.Spec.InsecureSkipTLSVerify = theirCA, false
		a.UID = types.UID("uid-" + a.Name)
	}
	ours := metricsAPIService("v1.ours.example.com")
	c := newCluster(t, adapter, second, injected, ours)
	logs := captureLogs(t)
	ev := &fakeEvents{}
	b := c.bootstrapper(t, t.TempDir(), nil, 10*time.Millisecond)
	b.cfg.APIServiceNames = []string{adapter.Name, second.Name, injected.Name, ours.Name}
	b.cfg.Events = ev
	if err := b.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	b.Run(ctx)

	for _, tc := range []struct{ name, why string }{
		{adapter.Name, "its spec.service is monitoring/prometheus-adapter, not kube-system/metrics-server"},
		{second.Name, "its spec.service is metrics-two/metrics-server"},
		{injected.Name, "cert-manager.io/inject-ca-from=kube-system/metrics-server"},
	} {
		if got := c.apiService(t, tc.name).Spec.CABundle; !bytes.Equal(got, theirCA) {
			t.Errorf("APIService %s: caBundle replaced", tc.name)
		}
		if b.apiServiceStates[tc.name] != stateForeign {
			t.Errorf("APIService %s: state %s, want %s", tc.name, b.apiServiceStates[tc.name], stateForeign)
		}
		got := ev.about("APIService", tc.name)
		if len(got) != 1 || got[0].eventType != "Warning" || got[0].reason != ReasonAPIServiceNotOurs || !strings.Contains(got[0].note, tc.why) ||
			got[0].regarding.Namespace != "" || got[0].regarding.UID != types.UID("uid-"+tc.name) {
			t.Errorf("APIService %s: events %+v; want one Warning %s saying %q, regarding it by UID", tc.name, got, ReasonAPIServiceNotOurs, tc.why)
		}
		if n := logs.count("Leaving the APIService's caBundle alone", tc.name, tc.why); n != 1 {
			t.Errorf("APIService %s: %d log lines saying why it is left alone, want 1", tc.name, n)
		}
	}
	caBundleIs(t, c, ours.Name, c.secret(t).Data[KeyCA])
	for _, a := range c.agg.Actions() {
		if a.GetVerb() == "patch" && a.(clienttesting.PatchAction).GetName() != ours.Name {
			t.Errorf("patched %s", a.(clienttesting.PatchAction).GetName())
		}
	}
}
