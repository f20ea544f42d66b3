package options

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	apiregv1client "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"
	"k8s.io/utils/clock"

	"github.com/kubemetrics/metrics-server/pkg/certbootstrap"
)

// TLSBootstrapOptions are the flags of the serving-certificate bootstrap
// (package certbootstrap).
type TLSBootstrapOptions struct {
	// Secret is <namespace>/<name>; empty turns the bootstrap off.
	Secret string
	// Service names the Service in front of the server, in the Secret's
	// namespace.
	Service string
	// APIServices are kept verifying the server with the bootstrap's CA.
	APIServices []string

	// Clock and Interval are certbootstrap.Config's, not flags: tests set
	// them, the command leaves them zero (the real clock, every minute).
	Clock    clock.PassiveClock
	Interval time.Duration
}

// NewTLSBootstrapOptions returns the defaults: off.
func NewTLSBootstrapOptions() *TLSBootstrapOptions {
	return &TLSBootstrapOptions{
		Service:     "metrics-server",
		APIServices: []string{"v1.metrics.k8s.io", "v1beta1.metrics.k8s.io"},
	}
}

// AddFlags adds the bootstrap's flags to fs.
func (o *TLSBootstrapOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Secret, "tls-bootstrap-secret", o.Secret, "<namespace>/<name> of a Secret that holds the serving certificate and its CA. The manifests ship it empty (type Opaque, no data) with the annotation "+certbootstrap.AnnotationOwner+"=metrics-server, "+
		"and the server needs only get and update on it: it fills it with a new CA (10 years) and serving certificate (1 year), reuses it when filled, and renews the serving certificate from the same CA when less than a third of its lifetime is left (checked every minute). "+
		"Without the Secret the server tries to create it, which RBAC should refuse (never grant create on Secrets: it would let the server's identity mint a bootstrap token); create the empty one instead: "+
		"kubectl -n NAMESPACE create secret generic NAME && kubectl -n NAMESPACE annotate secret NAME "+certbootstrap.AnnotationOwner+"=metrics-server. "+
		"A Secret without the annotation, taken over by another issuer (cert-manager), or whose content someone else changed is never written, only reported. "+
		"The files are written into --cert-dir and reloaded without a restart. Ignored when --tls-cert-file is given. Empty (the default) turns it off.")
	fs.StringVar(&o.Service, "tls-bootstrap-service", o.Service, "With --tls-bootstrap-secret, the name of the Service in front of the server, in the Secret's namespace: the serving certificate names <name>, <name>.<namespace>, <name>.<namespace>.svc and <name>.<namespace>.svc.cluster.local.")
	fs.StringSliceVar(&o.APIServices, "tls-bootstrap-apiservices", o.APIServices, "With --tls-bootstrap-secret, the APIServices whose spec.caBundle is set to the bootstrap's CA with spec.insecureSkipTLSVerify=false, at start and whenever they drift (checked every minute); a missing one is logged and checked again. "+
		"One whose spec.service is not the --tls-bootstrap-service in the Secret's namespace, or whose caBundle cert-manager injects (cert-manager.io/inject-ca-from...), is left alone, said in a log line and a Warning event. Empty: none.")
}

// Validate returns every problem with the bootstrap's flags.
func (o *TLSBootstrapOptions) Validate() []error {
	if o.Secret == "" {
		return nil
	}
	var errs []error
	ns, name, ok := strings.Cut(o.Secret, "/")
	if !ok {
		errs = append(errs, fmt.Errorf("--tls-bootstrap-secret must be <namespace>/<name>, got %q", o.Secret))
	} else {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--tls-bootstrap-secret: namespace %q: %s", ns, strings.Join(msgs, "; ")))
		}
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--tls-bootstrap-secret: name %q: %s", name, strings.Join(msgs, "; ")))
		}
	}
	if msgs := validation.IsDNS1035Label(o.Service); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--tls-bootstrap-service %q: %s", o.Service, strings.Join(msgs, "; ")))
	}
	for _, a := range o.APIServices {
		// An APIService is named <version>.<group>.
		if msgs := validation.IsDNS1123Subdomain(a); len(msgs) > 0 || !strings.Contains(a, ".") {
			errs = append(errs, fmt.Errorf("--tls-bootstrap-apiservices: %q is not an APIService name (<version>.<group>, such as v1beta1.metrics.k8s.io)", a))
		}
	}
	return errs
}

// enabled reports whether the bootstrap runs with these serving options:
// --tls-bootstrap-secret is set and --tls-cert-file is not.
func (o *TLSBootstrapOptions) enabled(serving *genericoptions.SecureServingOptionsWithLoopback) bool {
	return o.Secret != "" && serving.ServerCert.CertKey.CertFile == ""
}

// validateWith returns the problems of the bootstrap's flags together with
// the secure serving flags.
func (o *TLSBootstrapOptions) validateWith(serving *genericoptions.SecureServingOptionsWithLoopback) []error {
	if o.enabled(serving) && serving.ServerCert.CertDirectory == "" {
		return []error{fmt.Errorf("--tls-bootstrap-secret needs a --cert-dir to write the serving certificate into")}
	}
	return nil
}

// BootstrapServingCert runs the bootstrap's first sync when
// --tls-bootstrap-secret asks for it (and --tls-cert-file is not given): the
// Secret is created or reused, its certificate and key are written into
// --cert-dir (one file, tls.pem, beside ca.crt) and set as the serving
// certificate and key files of o, and the
// APIServices' caBundle is set. It returns the loop that keeps all of that
// in step until its context is done (renewal, another replica's writes,
// drifted APIServices), to be run beside the server; nil when the
// bootstrap is off. Call it before ServerConfigWith.
func (o *Options) BootstrapServingCert(ctx context.Context, kube kubernetes.Interface, apiServices apiregv1client.APIServicesGetter) (func(context.Context), error) {
	if o.TLSBootstrap.Secret == "" {
		return nil, nil
	}
	if !o.TLSBootstrap.enabled(o.SecureServing) {
		klog.InfoS("--tls-bootstrap-secret is ignored: --tls-cert-file is given", "tlsCertFile", o.SecureServing.ServerCert.CertKey.CertFile)
		return nil, nil
	}
	ns, name, _ := strings.Cut(o.TLSBootstrap.Secret, "/")
	b, err := certbootstrap.New(certbootstrap.Config{
		Namespace:       ns,
		Name:            name,
		Service:         o.TLSBootstrap.Service,
		APIServiceNames: o.TLSBootstrap.APIServices,
		CertDir:         o.SecureServing.ServerCert.CertDirectory,
		Secrets:         kube.CoreV1(),
		APIServices:     apiServices,
		Events:          bootstrapEvents(ctx, kube),
		Interval:        o.TLSBootstrap.Interval,
		Clock:           o.TLSBootstrap.Clock,
	})
	if err != nil {
		return nil, err
	}
	if err := b.Init(ctx); err != nil {
		return nil, err
	}
	o.SecureServing.ServerCert.CertKey = genericoptions.CertKey{CertFile: b.ServingFile(), KeyFile: b.ServingFile()}
	return b.Run, nil
}

// bootstrapEvents returns the recorder of the bootstrap's Warning events,
// written through client-go's events.k8s.io/v1 broadcaster until ctx is
// done, as pkg/nodeevents writes the Node events; nil (logs only) when it
// cannot start.
func bootstrapEvents(ctx context.Context, kube kubernetes.Interface) certbootstrap.EventRecorder {
	b := events.NewBroadcaster(&eventsDeniedOnce{EventSink: &events.EventSinkImpl{Interface: kube.EventsV1()}})
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		klog.ErrorS(err, "Cannot write the serving-certificate bootstrap's events; it goes on with logs only")
		return nil
	}
	go func() {
		<-ctx.Done()
		b.Shutdown()
	}()
	return b.NewRecorder(scheme.Scheme, "metrics-server")
}

// eventsDeniedOnce is an event sink that turns a refusal (403) into no
// event and no error, logged once per namespace, so that the broadcaster
// neither logs each refused event nor retries it. A grant given later takes
// effect at the next event.
type eventsDeniedOnce struct {
	events.EventSink
	denied sync.Map // namespace -> struct{}
}

func (s *eventsDeniedOnce) Create(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	out, err := s.EventSink.Create(ctx, e)
	return s.refused(e, out, err)
}

func (s *eventsDeniedOnce) Update(ctx context.Context, e *eventsv1.Event) (*eventsv1.Event, error) {
	out, err := s.EventSink.Update(ctx, e)
	return s.refused(e, out, err)
}

func (s *eventsDeniedOnce) Patch(ctx context.Context, e *eventsv1.Event, data []byte) (*eventsv1.Event, error) {
	out, err := s.EventSink.Patch(ctx, e, data)
	return s.refused(e, out, err)
}

func (s *eventsDeniedOnce) refused(e, out *eventsv1.Event, err error) (*eventsv1.Event, error) {
	if !apierrors.IsForbidden(err) {
		return out, err
	}
	if _, seen := s.denied.LoadOrStore(e.Namespace, struct{}{}); !seen {
		klog.ErrorS(err, "Cannot write the serving-certificate bootstrap's events; it goes on with logs only. Grant create and patch on events.k8s.io events in the namespace to the server's ServiceAccount",
			"namespace", e.Namespace, "reason", e.Reason)
	}
	return nil, nil
}
