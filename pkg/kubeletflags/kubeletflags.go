// Package kubeletflags defines the flags of the server's kubelet client
// (--kubelet-*, --node-selector, --deprecated-kubelet-completely-insecure):
// their names, defaults and help, their validation, and the kubelet client
// configuration they make. The server's options and the doctor's node
// checks (which parse the server's args with them) share these
// definitions, so the doctor reads the flags exactly as the server does.
// It knows nothing of the server's other flags.
package kubeletflags

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/kubemetrics/metrics-server/pkg/scraper/kubelet"
)

// Options are the flags of the kubelet client.
type Options struct {
	UseNodeStatusPort     bool
	Port                  int
	InsecureTLS           bool
	PreferredAddressTypes []string
	CAFile                string
	ClientKeyFile         string
	ClientCertFile        string
	CompletelyInsecure    bool
	RequestTimeout        time.Duration
	NodeSelector          string

	// Ours.
	Endpoint            string
	MaxResponseBytes    int64
	RetryPreferredAfter time.Duration
	Concurrency         int
	EphemeralStorage    bool
}

// New returns the defaults, upstream's where the flag is upstream's.
func New() *Options {
	o := &Options{
		Port:                10250,
		RequestTimeout:      10 * time.Second,
		Endpoint:            "auto",
		MaxResponseBytes:    16 << 20,
		RetryPreferredAfter: 10 * time.Minute,
		Concurrency:         64,
	}
	for _, t := range kubelet.DefaultAddressTypes {
		o.PreferredAddressTypes = append(o.PreferredAddressTypes, string(t))
	}
	return o
}

// AddFlags adds the kubelet client flags to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.InsecureTLS, "kubelet-insecure-tls", o.InsecureTLS, "Do not verify the CA of the serving certificates presented by kubelets: the bearer token or client certificate then goes to whatever answers at a node's address. For testing only.")
	fs.BoolVar(&o.UseNodeStatusPort, "kubelet-use-node-status-port", o.UseNodeStatusPort, "Use the kubelet port in the node status (status.daemonEndpoints.kubeletEndpoint.Port). Takes precedence over --kubelet-port.")
	fs.IntVar(&o.Port, "kubelet-port", o.Port, "The port to use to connect to kubelets.")
	fs.StringSliceVar(&o.PreferredAddressTypes, "kubelet-preferred-address-types", o.PreferredAddressTypes, "The priority of node address types used to choose which address of a node to connect to.")
	fs.StringVar(&o.CAFile, "kubelet-certificate-authority", o.CAFile, "Path to the CA used to validate the kubelets' serving certificates.")
	fs.StringVar(&o.ClientKeyFile, "kubelet-client-key", o.ClientKeyFile, "Path to a client key file for TLS to kubelets.")
	fs.StringVar(&o.ClientCertFile, "kubelet-client-certificate", o.ClientCertFile, "Path to a client certificate file for TLS to kubelets.")
	fs.DurationVar(&o.RequestTimeout, "kubelet-request-timeout", o.RequestTimeout, "How long to wait for one kubelet request before giving up on it. Non-zero values need a unit (e.g. 1s, 2m).")
	fs.StringVarP(&o.NodeSelector, "node-selector", "l", o.NodeSelector, "Label selector of the nodes to scrape and serve, supports '=', '==' and '!=' (e.g. -l key1=value1,key2=value2).")
	fs.BoolVar(&o.CompletelyInsecure, "deprecated-kubelet-completely-insecure", o.CompletelyInsecure, "DEPRECATED: talk to kubelets over plain HTTP (the read-only port) with no authentication or authorization. Almost never right: for a test cluster with self-signed kubelet certificates use --kubelet-insecure-tls instead.")

	fs.StringVar(&o.Endpoint, "kubelet-endpoint", o.Endpoint, "Which kubelet endpoint to scrape: 'summary' (/stats/summary?only_cpu_and_memory=true), 'resource' (/metrics/resource), or 'auto': /metrics/resource first, falling back per node to /stats/summary when it fails (401/403, 404, 5xx, a refused redirect, an undecodable or too large body), and trying /metrics/resource again after --kubelet-endpoint-retry-after. Connection errors and timeouts do not switch endpoints.")
	fs.Int64Var(&o.MaxResponseBytes, "kubelet-max-response-bytes", o.MaxResponseBytes, "The largest kubelet response body accepted; a larger one fails that node's scrape.")
	fs.DurationVar(&o.RetryPreferredAfter, "kubelet-endpoint-retry-after", o.RetryPreferredAfter, "With --kubelet-endpoint=auto, how long a node that fell back to /stats/summary stays there before /metrics/resource is tried again; with --kubelet-ephemeral-storage, also how long a node whose full summary was refused goes without asking for it.")
	fs.BoolVar(&o.EphemeralStorage, "kubelet-ephemeral-storage", o.EphemeralStorage, EphemeralStorageHelp)
	fs.IntVar(&o.Concurrency, "kubelet-max-concurrency", o.Concurrency, "How many kubelet answers are read and decoded at once (the bound on the memory answers take). Requests waiting for an answer are not limited by it: every node's request starts at its phase each cycle. An answer that finds no free slot before its request's deadline fails that scrape with reason no_decode_slot.")
}

// EphemeralStorageHelp is the help of --kubelet-ephemeral-storage. The
// figures are BenchmarkDecodeSummaryCost's and BenchmarkDecodeResource's
// (pkg/scraper/kubelet) at 30 pods of 2 containers.
const EphemeralStorageHelp = "Serve ephemeral-storage usage (a container's writable layer plus its logs, a node's root filesystem) from the kubelet's full /stats/summary. " +
	"It costs, per node and cycle: on nodes scraped through /stats/summary, the full summary instead of the only_cpu_and_memory one (about twice the bytes and the decode time: 112 KiB in 0.38 ms against 50 KiB in 0.18 ms at 30 pods of 2 containers); " +
	"on nodes scraped through /metrics/resource, which has no such series, a second request for the full summary (its decode about four times that of /metrics/resource, 0.08 ms at 30 pods). " +
	"When a node's full summary is refused (as on runtimes that cannot report their image filesystem), its CPU and memory are served without it, and it is asked again after --kubelet-endpoint-retry-after. " +
	"kubectl top ignores the key; an HPA with a Resource metric named ephemeral-storage uses it, and ignores a pod any of whose containers lacks it."

// Validate returns every problem with the kubelet flags.
func (o *Options) Validate() []error {
	var errs []error
	exclusive := func(a string, aSet bool, b string, bSet bool) {
		if aSet && bSet {
			errs = append(errs, fmt.Errorf("--%s and --%s cannot be used together", a, b))
		}
	}
	exclusive("kubelet-certificate-authority", o.CAFile != "", "kubelet-insecure-tls", o.InsecureTLS)
	exclusive("kubelet-client-key", o.ClientKeyFile != "", "deprecated-kubelet-completely-insecure", o.CompletelyInsecure)
	exclusive("kubelet-client-certificate", o.ClientCertFile != "", "deprecated-kubelet-completely-insecure", o.CompletelyInsecure)
	exclusive("kubelet-insecure-tls", o.InsecureTLS, "deprecated-kubelet-completely-insecure", o.CompletelyInsecure)
	exclusive("kubelet-certificate-authority", o.CAFile != "", "deprecated-kubelet-completely-insecure", o.CompletelyInsecure)
	if (o.ClientKeyFile != "") != (o.ClientCertFile != "") {
		errs = append(errs, errors.New("--kubelet-client-key and --kubelet-client-certificate must be given together"))
	}
	if o.RequestTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--kubelet-request-timeout must be positive, got %v", o.RequestTimeout))
	}
	if o.Port <= 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--kubelet-port must be between 1 and 65535, got %d", o.Port))
	}
	if len(o.PreferredAddressTypes) == 0 {
		errs = append(errs, errors.New("--kubelet-preferred-address-types must name at least one address type"))
	}
	for _, t := range o.PreferredAddressTypes {
		if !knownAddressType(corev1.NodeAddressType(t)) {
			errs = append(errs, fmt.Errorf("--kubelet-preferred-address-types: unknown address type %q (known: Hostname, InternalDNS, InternalIP, ExternalDNS, ExternalIP)", t))
		}
	}
	if _, err := kubelet.ParseEndpoint(o.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("--kubelet-endpoint: %w", err))
	}
	if o.MaxResponseBytes < 1024 {
		errs = append(errs, fmt.Errorf("--kubelet-max-response-bytes must be at least 1024, got %d", o.MaxResponseBytes))
	}
	if o.RetryPreferredAfter <= 0 {
		errs = append(errs, fmt.Errorf("--kubelet-endpoint-retry-after must be positive, got %v", o.RetryPreferredAfter))
	}
	if o.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("--kubelet-max-concurrency must be at least 1, got %d", o.Concurrency))
	}
	return errs
}

func knownAddressType(t corev1.NodeAddressType) bool {
	switch t {
	case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeInternalIP, corev1.NodeExternalDNS, corev1.NodeExternalIP:
		return true
	}
	return false
}

// Config builds the kubelet client config from the flags and the server's
// own credentials. Call only after Validate passed.
func (o *Options) Config(base *rest.Config) (kubelet.Config, error) {
	endpoint, err := kubelet.ParseEndpoint(o.Endpoint)
	if err != nil {
		return kubelet.Config{}, err
	}
	restCfg, scheme := kubelet.RestConfigFor(base, kubelet.TLSOptions{
		CAFile:             o.CAFile,
		Insecure:           o.InsecureTLS,
		CertFile:           o.ClientCertFile,
		KeyFile:            o.ClientKeyFile,
		CompletelyInsecure: o.CompletelyInsecure,
	})
	types := make([]corev1.NodeAddressType, len(o.PreferredAddressTypes))
	for i, t := range o.PreferredAddressTypes {
		types[i] = corev1.NodeAddressType(t)
	}
	return kubelet.Config{
		Rest:                restCfg,
		Scheme:              scheme,
		DefaultPort:         o.Port,
		UseNodeStatusPort:   o.UseNodeStatusPort,
		AddressTypes:        types,
		Endpoint:            endpoint,
		MaxResponseBytes:    o.MaxResponseBytes,
		RetryPreferredAfter: o.RetryPreferredAfter,
		RequestTimeout:      o.RequestTimeout,
		EphemeralStorage:    o.EphemeralStorage,
	}, nil
}
