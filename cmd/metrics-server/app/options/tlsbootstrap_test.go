package options

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"

	"github.com/kubemetrics/metrics-server/pkg/certbootstrap"
)

// TestTLSBootstrapFlags: the flags' defaults, and every bad value refused
// with its flag named, all at once.
func TestTLSBootstrapFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // parts of the errors, one each, in order
	}{
		{"off by default", nil, nil},
		{"the base manifests' value", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls"}, nil},
		{"other names", []string{"--tls-bootstrap-secret=monitoring/ms-serving", "--tls-bootstrap-service=ms", "--tls-bootstrap-apiservices=v1beta1.metrics.k8s.io"}, nil},
		{"no APIServices", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls", "--tls-bootstrap-apiservices="}, nil},
		{"no namespace", []string{"--tls-bootstrap-secret=metrics-server-tls"}, []string{"--tls-bootstrap-secret must be <namespace>/<name>"}},
		{"bad names", []string{"--tls-bootstrap-secret=Kube_System/metrics server", "--tls-bootstrap-service=9ms", "--tls-bootstrap-apiservices=metrics,v1.metrics.k8s.io"},
			[]string{`--tls-bootstrap-secret: namespace "Kube_System"`, `--tls-bootstrap-secret: name "metrics server"`, `--tls-bootstrap-service "9ms"`, `--tls-bootstrap-apiservices: "metrics" is not an APIService name`}},
		{"no cert dir", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls", "--cert-dir="}, []string{"--tls-bootstrap-secret needs a --cert-dir"}},
		{"own certificate wins", []string{"--tls-bootstrap-secret=kube-system/metrics-server-tls", "--cert-dir=", "--tls-cert-file=/tls/tls.crt", "--tls-private-key-file=/tls/tls.key"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			for _, f := range o.Flags().FlagSets {
				fs.AddFlagSet(f)
			}
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, err := range o.Validate() {
				if strings.Contains(err.Error(), "tls-bootstrap") {
					got = append(got, err.Error())
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("error %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
	o := NewOptions()
	if diff := cmp.Diff([]string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"}, o.TLSBootstrap.APIServices); diff != "" {
		t.Errorf("--tls-bootstrap-apiservices default (-want +got):\n%s", diff)
	}
	if o.TLSBootstrap.Secret != "" || o.TLSBootstrap.Service != "metrics-server" {
		t.Errorf("defaults: secret %q, service %q; want off and metrics-server", o.TLSBootstrap.Secret, o.TLSBootstrap.Service)
	}
}

// TestBootstrapServingCert: with the bootstrap on, the Secret's files in
// --cert-dir become the serving certificate; with --tls-cert-file given, or
// with the bootstrap off, nothing is read or written.
func TestBootstrapServingCert(t *testing.T) {
	for _, tc := range []struct {
		name, secret, certFile string
		on                     bool
	}{
		{"on", "kube-system/metrics-server-tls", "", true},
		{"off", "", "", false},
		{"own certificate", "kube-system/metrics-server-tls", "/tls/tls.crt", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			dir := t.TempDir()
			o.TLSBootstrap.Secret = tc.secret
			o.SecureServing.ServerCert.CertDirectory = dir
			o.SecureServing.ServerCert.CertKey.CertFile = tc.certFile
			kube, agg := fake.NewClientset(), aggfake.NewClientset()
			loop, err := o.BootstrapServingCert(context.Background(), kube, agg.ApiregistrationV1())
			if err != nil {
				t.Fatal(err)
			}
			if (loop != nil) != tc.on {
				t.Errorf("loop returned %v, want %v", loop != nil, tc.on)
			}
			if !tc.on {
				if n := len(kube.Actions()); n != 0 {
					t.Errorf("%d API calls with the bootstrap off", n)
				}
				if o.SecureServing.ServerCert.CertKey.CertFile != tc.certFile {
					t.Errorf("--tls-cert-file became %q", o.SecureServing.ServerCert.CertKey.CertFile)
				}
				return
			}
			if got := o.SecureServing.ServerCert.CertKey; got.CertFile != dir+"/tls.pem" || got.KeyFile != dir+"/tls.pem" {
				t.Errorf("serving files %+v, want tls.pem in %s as both", got, dir)
			}
		})
	}
}

// TestBootstrapEventsReachTheAPI: the bootstrap's Warning event about an
// APIService it leaves alone (another server backs it) is written through
// events.k8s.io/v1 into namespace default, where events of cluster-scoped
// objects go.
func TestBootstrapEventsReachTheAPI(t *testing.T) {
	o := NewOptions()
	o.TLSBootstrap.Secret = "kube-system/metrics-server-tls"
	o.TLSBootstrap.APIServices = []string{"v1beta1.custom.metrics.k8s.io"}
	o.SecureServing.ServerCert.CertDirectory = t.TempDir()
	port := int32(443)
	adapter := &apiregv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: "v1beta1.custom.metrics.k8s.io"},
		Spec: apiregv1.APIServiceSpec{Service: &apiregv1.ServiceReference{Namespace: "monitoring", Name: "prometheus-adapter", Port: &port},
			Group: "custom.metrics.k8s.io", Version: "v1beta1", CABundle: []byte("theirs"), GroupPriorityMinimum: 100, VersionPriority: 100},
	}
	kube, agg := fake.NewClientset(), aggfake.NewClientset(adapter)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if _, err := o.BootstrapServingCert(ctx, kube, agg.ApiregistrationV1()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := kube.EventsV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) > 0 {
			e := list.Items[0]
			if len(list.Items) != 1 || e.Type != "Warning" || e.Reason != certbootstrap.ReasonAPIServiceNotOurs ||
				e.Regarding.Kind != "APIService" || e.Regarding.Name != adapter.Name || !strings.Contains(e.Note, "monitoring/prometheus-adapter") {
				t.Errorf("events in default: %+v; want one Warning %s regarding APIService %s", list.Items, certbootstrap.ReasonAPIServiceNotOurs, adapter.Name)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event in namespace default within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a, err := agg.ApiregistrationV1().APIServices().Get(ctx, adapter.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Spec.CABundle) != "theirs" {
		t.Error("the other server's caBundle was replaced")
	}
}

// refusingSink is an event sink that answers every write with err.
type refusingSink struct{ err error }

func (s refusingSink) Create(context.Context, *eventsv1.Event) (*eventsv1.Event, error) {
	return nil, s.err
}
func (s refusingSink) Update(context.Context, *eventsv1.Event) (*eventsv1.Event, error) {
	return nil, s.err
}
func (s refusingSink) Patch(context.Context, *eventsv1.Event, []byte) (*eventsv1.Event, error) {
	return nil, s.err
}

// TestEventsDeniedOnce: a refused event (403) is dropped without an error,
// so the broadcaster neither logs it nor retries it, and remembered per
// namespace so that it is logged once; other errors pass through.
func TestEventsDeniedOnce(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "events.k8s.io", Resource: "events"}, "", errors.New("RBAC: access denied"))
	s := &eventsDeniedOnce{EventSink: refusingSink{forbidden}}
	e := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system"}}
	for range 3 {
		if _, err := s.Create(t.Context(), e); err != nil {
			t.Errorf("Create: %v, want the refusal dropped", err)
		}
		if _, err := s.Patch(t.Context(), e, nil); err != nil {
			t.Errorf("Patch: %v, want the refusal dropped", err)
		}
	}
	if _, seen := s.denied.Load("kube-system"); !seen {
		t.Error("the refusal in kube-system was not remembered")
	}
	unavailable := apierrors.NewServiceUnavailable("starting")
	if _, err := (&eventsDeniedOnce{EventSink: refusingSink{unavailable}}).Create(t.Context(), e); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("Create: %v, want the 503 passed on", err)
	}
}
