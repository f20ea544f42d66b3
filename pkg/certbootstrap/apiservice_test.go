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
	clienttesting "k8s.io/client-go/testing"
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
