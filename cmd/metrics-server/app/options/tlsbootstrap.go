package options

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/kubernetes"
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
	fs.StringVar(&o.Secret, "tls-bootstrap-secret", o.Secret, "<namespace>/<name> of a Secret that holds the serving certificate and its CA: created with a new CA (10 years) and serving certificate (1 year) when absent, reused when present, the serving certificate renewed from the same CA when less than a third of its lifetime is left (checked every minute). "+
		"The files are written into --cert-dir and reloaded without a restart. A Secret this server did not create is never written. Ignored when --tls-cert-file is given. Empty (the default) turns it off.")
	fs.StringVar(&o.Service, "tls-bootstrap-service", o.Service, "With --tls-bootstrap-secret, the name of the Service in front of the server, in the Secret's namespace: the serving certificate names <name>, <name>.<namespace>, <name>.<namespace>.svc and <name>.<namespace>.svc.cluster.local.")
	fs.StringSliceVar(&o.APIServices, "tls-bootstrap-apiservices", o.APIServices, "With --tls-bootstrap-secret, the APIServices whose spec.caBundle is set to the bootstrap's CA with spec.insecureSkipTLSVerify=false, at start and whenever they drift (checked every minute); a missing one is logged and checked again. Empty: none.")
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
