package options

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	utilcompatibility "k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/compatibility"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/version"
	apiregv1client "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"

	// Registers the JSON log format for --logging-format=json.
	_ "k8s.io/component-base/logs/json/register"

	"github.com/kubemetrics/metrics-server/pkg/api"
	generatedopenapi "github.com/kubemetrics/metrics-server/pkg/api/generated/openapi"
	"github.com/kubemetrics/metrics-server/pkg/kubeletflags"
	"github.com/kubemetrics/metrics-server/pkg/server"
)

// Options are all the flags of the metrics server.
type Options struct {
	GenericServerRunOptions *genericoptions.ServerRunOptions
	SecureServing           *genericoptions.SecureServingOptionsWithLoopback
	Authentication          *genericoptions.DelegatingAuthenticationOptions
	Authorization           *genericoptions.DelegatingAuthorizationOptions
	Audit                   *genericoptions.AuditOptions
	Features                *genericoptions.FeatureOptions
	Kubelet                 *kubeletflags.Options
	Logging                 *logs.Options
	TLSBootstrap            *TLSBootstrapOptions

	MetricResolution time.Duration
	ShowVersion      bool
	Kubeconfig       string

	// Ours.
	MaxStaleness          time.Duration
	ZeroUsagePods         string
	DisableAuthForTesting bool
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		GenericServerRunOptions: genericoptions.NewServerRunOptionsForComponent("metrics server", compatibility.NewComponentGlobalsRegistry()),
		SecureServing:           genericoptions.NewSecureServingOptions().WithLoopback(),
		Authentication:          genericoptions.NewDelegatingAuthenticationOptions(),
		Authorization:           genericoptions.NewDelegatingAuthorizationOptions(),
		Audit:                   genericoptions.NewAuditOptions(),
		Features:                genericoptions.NewFeatureOptions(),
		Kubelet:                 kubeletflags.New(),
		Logging:                 logs.NewOptions(),
		TLSBootstrap:            NewTLSBootstrapOptions(),
		MetricResolution:        time.Minute,
		ZeroUsagePods:           zeroUsageServe,
	}
}

const (
	zeroUsageServe = "serve"
	zeroUsageDrop  = "drop"
)

// Flags returns the flags in named groups, so --help reads well.
func (o *Options) Flags() (fss cliflag.NamedFlagSets) {
	fs := fss.FlagSet("metrics server")
	fs.DurationVar(&o.MetricResolution, "metric-resolution", o.MetricResolution, "How often metrics are scraped from kubelets; at least 10s.")
	fs.BoolVar(&o.ShowVersion, "version", o.ShowVersion, "Print the version and exit.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to the kubeconfig used to reach the Kubernetes API server and the kubelets (default: in-cluster config).")
	fs.DurationVar(&o.MaxStaleness, "metric-max-staleness", o.MaxStaleness, "How long the last good metrics of a node whose scrapes fail are still served, so one failed scrape does not hide it: the node is dropped after (this / --metric-resolution) failed requests in a row, at least one; a node not tried (its previous request still in flight) is not counted. 0 means two resolutions plus the kubelet request timeout (two failed requests).")
	fs.StringVar(&o.ZeroUsagePods, "zero-usage-pods", o.ZeroUsagePods, "What to do with a pod one of whose containers reports exactly zero cumulative CPU time or zero working set: 'serve' it, or 'drop' it as upstream metrics-server does. A container with a zero CPU rate (an idle sidecar) is served either way.")

	o.GenericServerRunOptions.AddUniversalFlags(fss.FlagSet("generic"))
	o.Kubelet.AddFlags(fss.FlagSet("kubelet client"))
	o.SecureServing.AddFlags(fss.FlagSet("apiserver secure serving"))
	o.TLSBootstrap.AddFlags(fss.FlagSet("serving certificate bootstrap"))
	o.Authentication.AddFlags(fss.FlagSet("apiserver authentication"))
	o.Authorization.AddFlags(fss.FlagSet("apiserver authorization"))
	o.Audit.AddFlags(fss.FlagSet("apiserver audit log"))
	o.Features.AddFlags(fss.FlagSet("features"))
	logsapi.AddFlags(o.Logging, fss.FlagSet("logging"))
	return fss
}

// Validate returns every problem with the flags at once; each message names
// its flag.
func (o *Options) Validate() []error {
	errs := o.Kubelet.Validate()
	if o.MetricResolution < 10*time.Second {
		errs = append(errs, fmt.Errorf("--metric-resolution must be at least 10s, got %v", o.MetricResolution))
	}
	if o.MetricResolution*9/10 < o.Kubelet.RequestTimeout {
		errs = append(errs, fmt.Errorf("--metric-resolution (%v) must be larger than --kubelet-request-timeout (%v) by at least 10%%", o.MetricResolution, o.Kubelet.RequestTimeout))
	}
	if o.MaxStaleness < 0 {
		errs = append(errs, fmt.Errorf("--metric-max-staleness must not be negative, got %v", o.MaxStaleness))
	}
	if o.ZeroUsagePods != zeroUsageServe && o.ZeroUsagePods != zeroUsageDrop {
		errs = append(errs, fmt.Errorf("--zero-usage-pods must be %q or %q, got %q", zeroUsageServe, zeroUsageDrop, o.ZeroUsagePods))
	}
	if _, err := labels.Parse(o.Kubelet.NodeSelector); err != nil {
		errs = append(errs, fmt.Errorf("--node-selector: %w", err))
	}
	errs = append(errs, o.GenericServerRunOptions.Validate()...)
	errs = append(errs, o.SecureServing.Validate()...)
	errs = append(errs, o.TLSBootstrap.Validate()...)
	errs = append(errs, o.TLSBootstrap.validateWith(o.SecureServing)...)
	errs = append(errs, o.Authentication.Validate()...)
	errs = append(errs, o.Authorization.Validate()...)
	errs = append(errs, o.Audit.Validate()...)
	errs = append(errs, o.Features.Validate()...)
	for _, e := range logsapi.Validate(o.Logging, nil, nil) {
		errs = append(errs, fmt.Errorf("logging flags: %w", e))
	}
	return errs
}

// ServerConfig turns validated options into a server.Config: it connects to
// the kube-apiserver, prepares serving certificates and delegated auth. With
// --tls-bootstrap-secret it first gets the serving certificate (see
// BootstrapServingCert) and keeps it in step until ctx is done.
func (o *Options) ServerConfig(ctx context.Context) (*server.Config, error) {
	restCfg, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	kubeClient, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building the Kubernetes client: %w", err)
	}
	metadataClient, err := metadata.NewForConfig(restCfg)
	if err != nil {
		return nil, fmt.Errorf("building the metadata client: %w", err)
	}
	if o.TLSBootstrap.Secret != "" {
		aggregator, err := apiregv1client.NewForConfig(restCfg)
		if err != nil {
			return nil, fmt.Errorf("building the APIService client: %w", err)
		}
		keepInStep, err := o.BootstrapServingCert(ctx, kubeClient, aggregator)
		if err != nil {
			return nil, err
		}
		if keepInStep != nil {
			go keepInStep(ctx)
		}
	}
	return o.ServerConfigWith(restCfg, kubeClient, metadataClient)
}

// ServerConfigWith builds the server.Config around clients already made;
// restCfg carries the credentials the kubelet client reuses. Tests pass
// fake clients here.
func (o *Options) ServerConfigWith(restCfg *rest.Config, kube kubernetes.Interface, meta metadata.Interface) (*server.Config, error) {
	scheme, codecs := api.NewScheme()
	apiserverCfg, err := o.apiserverConfig(scheme, codecs)
	if err != nil {
		return nil, err
	}
	kubeletCfg, err := o.Kubelet.Config(restCfg)
	if err != nil {
		return nil, err
	}
	selector, err := labels.Parse(o.Kubelet.NodeSelector)
	if err != nil {
		return nil, fmt.Errorf("--node-selector: %w", err)
	}
	return &server.Config{
		Apiserver:         apiserverCfg,
		Scheme:            scheme,
		Codecs:            codecs,
		Kube:              kube,
		Metadata:          meta,
		Kubelet:           kubeletCfg,
		Resolution:        o.MetricResolution,
		ScrapeTimeout:     o.Kubelet.RequestTimeout,
		ScrapeParallelism: o.Kubelet.Concurrency,
		NodeSelector:      selector,
		StaleAfter:        o.MaxStaleness,
		DropZeroUsagePods: o.ZeroUsagePods == zeroUsageDrop,
	}, nil
}

func (o *Options) apiserverConfig(scheme *runtime.Scheme, codecs serializer.CodecFactory) (*genericapiserver.Config, error) {
	if err := o.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{net.ParseIP("127.0.0.1")}); err != nil {
		return nil, fmt.Errorf("creating self-signed serving certificates in --cert-dir: %w", err)
	}
	if err := o.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, err
	}
	cfg := genericapiserver.NewConfig(codecs)
	if err := o.GenericServerRunOptions.ApplyTo(cfg); err != nil {
		return nil, err
	}
	if err := o.SecureServing.ApplyTo(&cfg.SecureServing, &cfg.LoopbackClientConfig); err != nil {
		return nil, err
	}
	if !o.DisableAuthForTesting {
		if err := o.Authentication.ApplyTo(&cfg.Authentication, cfg.SecureServing, nil); err != nil {
			return nil, err
		}
		if cfg.Authentication.Authenticator != nil {
			cfg.Authentication.Authenticator = anonymousOnlyForProbes{cfg.Authentication.Authenticator}
		}
		if err := o.Authorization.ApplyTo(&cfg.Authorization); err != nil {
			return nil, err
		}
	}
	if err := o.Audit.ApplyTo(cfg); err != nil {
		return nil, err
	}
	cfg.EnableProfiling = o.Features.EnableProfiling
	cfg.EnableContentionProfiling = o.Features.EnableContentionProfiling
	cfg.DebugSocketPath = o.Features.DebugSocketPath

	v := strings.Split(version.Get().String(), "-")[0]
	namer := openapinamer.NewDefinitionNamer(scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "kubemetrics metrics-server"
	cfg.OpenAPIConfig.Info.Version = v
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "kubemetrics metrics-server"
	cfg.OpenAPIV3Config.Info.Version = v
	cfg.EffectiveVersion = utilcompatibility.DefaultBuildEffectiveVersion()
	return cfg, nil
}

func (o *Options) restConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if o.Kubeconfig != "" {
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig %s: %w", o.Kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig given and no in-cluster config: %w", err)
		}
	}
	// Protobuf is cheaper for the node and pod informers.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.UserAgent = "metrics-server/" + version.Get().GitVersion
	if err := rest.SetKubernetesDefaults(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}
