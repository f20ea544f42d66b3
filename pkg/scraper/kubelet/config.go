package kubelet

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
)

// Endpoint says which kubelet endpoint to scrape.
type Endpoint int

const (
	// EndpointAuto asks /metrics/resource (what upstream asks: millisecond
	// timestamps, and a quarter of the summary's decoding cost) and falls
	// back per node to /stats/summary when it fails.
	EndpointAuto Endpoint = iota
	// EndpointSummary asks only /stats/summary?only_cpu_and_memory=true.
	EndpointSummary
	// EndpointResource asks only /metrics/resource.
	EndpointResource
)

func (e Endpoint) String() string {
	switch e {
	case EndpointSummary:
		return "summary"
	case EndpointResource:
		return "resource"
	}
	return "auto"
}

// ParseEndpoint parses the value of --kubelet-endpoint.
func ParseEndpoint(s string) (Endpoint, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		return EndpointAuto, nil
	case "summary":
		return EndpointSummary, nil
	case "resource":
		return EndpointResource, nil
	}
	return 0, fmt.Errorf("unknown endpoint %q: want auto, summary or resource", s)
}

// Config configures a Client.
type Config struct {
	// Rest carries the TLS settings and credentials for kubelets, as built by
	// RestConfigFor.
	Rest *rest.Config
	// Scheme is "https", or "http" with --deprecated-kubelet-completely-insecure.
	// NewClient refuses "http" when Rest holds any credential.
	Scheme            string
	DefaultPort       int
	UseNodeStatusPort bool
	AddressTypes      []corev1.NodeAddressType
	Endpoint          Endpoint
	// MaxResponseBytes limits a response body; a larger one fails the
	// node's scrape with ReasonTooLarge. Default 16 MiB.
	MaxResponseBytes int64
	// RetryPreferredAfter is how long a node that fell back to
	// /stats/summary in auto mode stays there before /metrics/resource is
	// tried again. Default 10 minutes.
	RetryPreferredAfter time.Duration
	// RequestTimeout bounds one request on top of the caller's context.
	RequestTimeout time.Duration
	// EphemeralStorage asks for the full /stats/summary, whose filesystem
	// stats give ephemeral-storage usage, instead of the
	// only_cpu_and_memory one: on a node scraped through /stats/summary
	// in its place (falling back to only_cpu_and_memory for the scrape
	// when the full one fails, as it does on runtimes that cannot report
	// their image filesystem); on a node scraped through
	// /metrics/resource, which has no such series, as a second request
	// after it, whose failure costs the node its ephemeral storage only.
	// A node whose full summary is refused (an HTTP status, a body
	// refused) is not asked for it again for RetryPreferredAfter.
	EphemeralStorage bool
	// Clock is the time source; nil means the real clock.
	Clock clock.PassiveClock
}

// TLSOptions are the kubelet TLS flags.
type TLSOptions struct {
	CAFile             string
	Insecure           bool
	CertFile, KeyFile  string
	CompletelyInsecure bool
}

// RestConfigFor derives the kubelet client's rest.Config from the server's
// own (which carries its credentials for the kube-apiserver) and returns the
// scheme to use. A CA file replaces the CA data; Insecure skips
// verification; a client certificate replaces the server's; otherwise the
// server's bearer token or client certificate is presented.
// CompletelyInsecure talks plain HTTP and sends no credentials at all, so
// none can leak to an unauthenticated endpoint.
func RestConfigFor(base *rest.Config, o TLSOptions) (*rest.Config, string) {
	cfg := rest.CopyConfig(base)
	if o.CompletelyInsecure {
		cfg = rest.AnonymousClientConfig(cfg)
		cfg.TLSClientConfig = rest.TLSClientConfig{}
		return cfg, "http"
	}
	if o.Insecure {
		cfg.TLSClientConfig.Insecure = true
		cfg.TLSClientConfig.CAData = nil
		cfg.TLSClientConfig.CAFile = ""
	}
	if o.CAFile != "" {
		cfg.TLSClientConfig.CAFile = o.CAFile
		cfg.TLSClientConfig.CAData = nil
	}
	if o.CertFile != "" {
		cfg.TLSClientConfig.CertFile = o.CertFile
		cfg.TLSClientConfig.CertData = nil
	}
	if o.KeyFile != "" {
		cfg.TLSClientConfig.KeyFile = o.KeyFile
		cfg.TLSClientConfig.KeyData = nil
	}
	// The kube-apiserver's server name means nothing to a kubelet.
	cfg.TLSClientConfig.ServerName = ""
	// One GET per node per resolution gains nothing from HTTP/2's streams,
	// and an idle HTTP/2 connection holds about 20 KiB more (framer and
	// write buffers) than an HTTP/1.1 one: with a connection kept to every
	// node, that is 100 MiB at 5,000 nodes.
	cfg.TLSClientConfig.NextProtos = []string{"http/1.1"}
	return cfg, "https"
}

// check refuses a configuration that could send credentials unencrypted:
// plain HTTP is only for --deprecated-kubelet-completely-insecure, whose
// configuration RestConfigFor makes anonymous.
func (c *Config) check() error {
	switch c.Scheme {
	case "https":
		return nil
	case "http":
	default:
		return fmt.Errorf("scheme %q: kubelets are asked over https (or http with --deprecated-kubelet-completely-insecure)", c.Scheme)
	}
	if kinds := credentialKinds(c.Rest); len(kinds) > 0 {
		return fmt.Errorf("plain HTTP to kubelets with credentials (%s) refused: they would cross the network unencrypted; use https, or an anonymous configuration as --deprecated-kubelet-completely-insecure builds", strings.Join(kinds, ", "))
	}
	return nil
}

// credentialKinds names the kinds of credentials cfg presents to a server.
func credentialKinds(cfg *rest.Config) []string {
	var kinds []string
	if cfg.BearerToken != "" || cfg.BearerTokenFile != "" {
		kinds = append(kinds, "bearer token")
	}
	if cfg.Username != "" || cfg.Password != "" {
		kinds = append(kinds, "basic auth")
	}
	t := cfg.TLSClientConfig
	if len(t.CertData) > 0 || t.CertFile != "" || len(t.KeyData) > 0 || t.KeyFile != "" {
		kinds = append(kinds, "client certificate")
	}
	if cfg.ExecProvider != nil {
		kinds = append(kinds, "exec credential plugin")
	}
	if cfg.AuthProvider != nil {
		kinds = append(kinds, "auth provider plugin")
	}
	return kinds
}

func (c *Config) defaults() {
	if c.Scheme == "" {
		c.Scheme = "https"
	}
	if c.DefaultPort == 0 {
		c.DefaultPort = 10250
	}
	if len(c.AddressTypes) == 0 {
		c.AddressTypes = DefaultAddressTypes
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = 16 << 20
	}
	if c.RetryPreferredAfter <= 0 {
		c.RetryPreferredAfter = 10 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Rest == nil {
		c.Rest = &rest.Config{}
	}
}
