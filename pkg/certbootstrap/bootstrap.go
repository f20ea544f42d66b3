package certbootstrap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/klog/v2"
	apiregv1client "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"
	"k8s.io/utils/clock"
)

// DefaultInterval is how often a running Bootstrapper syncs: it reads the
// Secret (renewing the serving certificate when due, adopting another
// replica's renewal) and checks the APIServices.
const DefaultInterval = time.Minute

// Config is what a Bootstrapper works on.
type Config struct {
	// Namespace and Name name the Secret that holds the CA and the serving
	// certificate (keys tls.crt, tls.key, ca.crt and ca.key; type Opaque
	// or kubernetes.io/tls). It is written only while it is ours (see the
	// package doc).
	Namespace, Name string
	// Service is the name of the Service in front of the server, in
	// Namespace: the serving certificate names <Service>, <Service>.<ns>,
	// <Service>.<ns>.svc and <Service>.<ns>.svc.cluster.local.
	Service string
	// APIServiceNames are the APIServices whose spec.caBundle is kept equal
	// to the CA; empty means none. One whose spec.service is not
	// Namespace/Service, or whose caBundle cert-manager injects, is left
	// alone.
	APIServiceNames []string
	// CertDir is where FileServing and FileCA are written.
	CertDir string

	// Secrets and APIServices reach the kube-apiserver.
	Secrets     corev1client.SecretsGetter
	APIServices apiregv1client.APIServicesGetter

	// Events records a Warning event about each thing the bootstrap leaves
	// alone: the Secret when it is not ours, an APIService it may not
	// patch. Nil means no events, only logs.
	Events EventRecorder

	// Interval is the time between syncs of Run; 0 means DefaultInterval.
	Interval time.Duration
	// Clock tells the time that certificates are made and judged at; nil
	// means the real clock.
	Clock clock.PassiveClock
}

// Bootstrapper keeps the serving certificate in Config.CertDir and the
// APIServices' caBundle in step with the Secret. Init, then Run, from one
// goroutine.
type Bootstrapper struct {
	cfg              Config
	dnsNames         []string
	current          *bundle
	apiServiceStates map[string]apiServiceState
	apiServiceWhy    map[string]string    // why an APIService in stateForeign is left alone
	apiServiceUIDs   map[string]types.UID // of each APIService as last read, for its events
	secretUID        types.UID            // of the Secret as last read, for its events
	legacyLogged     bool                 // the adoption of an earlier version's Secret was logged
	lastSyncErr      string               // the last error of Run's syncs, "" after a success
	initBackoff      time.Duration        // Init's first wait between attempts, doubling
}

// New checks cfg and returns a Bootstrapper; nothing is read or written
// until Init.
func New(cfg Config) (*Bootstrapper, error) {
	var errs []error
	if msgs := validation.IsDNS1123Label(cfg.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %v", cfg.Namespace, msgs))
	}
	if msgs := validation.IsDNS1123Subdomain(cfg.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("secret name %q: %v", cfg.Name, msgs))
	}
	if msgs := validation.IsDNS1035Label(cfg.Service); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("service name %q: %v", cfg.Service, msgs))
	}
	if cfg.CertDir == "" {
		errs = append(errs, errors.New("no certificate directory"))
	}
	if cfg.Secrets == nil || (cfg.APIServices == nil && len(cfg.APIServiceNames) > 0) {
		errs = append(errs, errors.New("no API client"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("serving-certificate bootstrap: %w", errors.Join(errs...))
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Bootstrapper{cfg: cfg, dnsNames: DNSNames(cfg.Service, cfg.Namespace), apiServiceStates: map[string]apiServiceState{}, apiServiceWhy: map[string]string{},
		apiServiceUIDs: map[string]types.UID{}, initBackoff: initBackoff}, nil
}

// DNSNames returns the names a serving certificate for service in
// namespace carries, shortest first.
func DNSNames(service, namespace string) []string {
	ns := service + "." + namespace
	return []string{service, ns, ns + ".svc", ns + ".svc.cluster.local"}
}

// ServingFile is the path of the file Init writes with the serving
// certificate and its key, to be served as both --tls-cert-file and
// --tls-private-key-file; CAFile is the path of the CA's certificate.
func (b *Bootstrapper) ServingFile() string { return filepath.Join(b.cfg.CertDir, FileServing) }
func (b *Bootstrapper) CAFile() string      { return filepath.Join(b.cfg.CertDir, FileCA) }

// initAttempts and initBackoff bound Init's retries of errors that may pass
// (the kube-apiserver restarting): about 30s in all.
const (
	initAttempts = 5
	initBackoff  = 2 * time.Second
)

// Init makes the Secret hold a usable CA and serving certificate, writes
// them into CertDir, and sets the APIServices' caBundle once (an APIService
// that cannot be set is logged and left to Run). It returns an error when
// the files cannot be written or the Secret cannot be used: refused by RBAC
// (the error names the rule to add), not ours, or unreachable for about
// 30s.
func (b *Bootstrapper) Init(ctx context.Context) error {
	var err error
	for attempt, wait := 1, b.initBackoff; ; attempt, wait = attempt+1, 2*wait {
		if err = b.syncFiles(ctx); err == nil || !retriable(err) || attempt == initAttempts {
			break
		}
		klog.InfoS("Cannot get the serving certificate yet; retrying", "secret", klog.KRef(b.cfg.Namespace, b.cfg.Name), "err", err, "after", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("serving-certificate bootstrap: %w (stopped: %w)", err, context.Cause(ctx))
		case <-time.After(wait):
		}
	}
	if err != nil && retriable(err) {
		return fmt.Errorf("serving-certificate bootstrap: gave up after %d attempts: %w; "+
			"check that the kube-apiserver is reachable from the server (--kubeconfig, or the in-cluster service account and KUBERNETES_SERVICE_HOST) and not overloaded", initAttempts, err)
	}
	if err != nil {
		b.warnSecret(err)
		return fmt.Errorf("serving-certificate bootstrap: %w", err)
	}
	b.syncAPIServices(ctx, b.current.caPEM)
	return nil
}

// Run syncs every Interval until ctx is done: the Secret (renewing the
// serving certificate when less than a third of its lifetime is left,
// adopting what another replica wrote) into the files, and the APIServices'
// caBundle. Errors are logged and tried again at the next sync; the files
// keep the last good certificate. The APIServices are synced only after a
// sync that read the Secret and wrote its files: their caBundle moves only
// to the CA the Secret holds now, never back to a CA this replica served
// before another replica replaced it, and never while the Secret is not
// ours (another issuer keeps the caBundle then). Init must have succeeded.
func (b *Bootstrapper) Run(ctx context.Context) {
	t := time.NewTicker(b.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		syncCtx, cancel := context.WithTimeout(ctx, b.cfg.Interval)
		err := b.syncFiles(syncCtx)
		b.logSync(err)
		if err == nil {
			b.syncAPIServices(syncCtx, b.current.caPEM)
		}
		cancel()
	}
}

// logSync logs the outcome of a sync of Run when it differs from the last
// one's: an error when it starts or changes (with a Warning event on the
// Secret when it is not ours), and when it ends.
func (b *Bootstrapper) logSync(err error) {
	ref := klog.KRef(b.cfg.Namespace, b.cfg.Name)
	switch {
	case err == nil && b.lastSyncErr != "":
		klog.InfoS("The serving certificate syncs again", "secret", ref)
		b.lastSyncErr = ""
	case err == nil:
	case err.Error() == b.lastSyncErr:
		klog.V(4).InfoS("Still cannot sync the serving certificate", "secret", ref, "err", err)
	default:
		klog.ErrorS(err, "Cannot sync the serving certificate; serving the last one and trying again every interval", "secret", ref,
			"interval", b.cfg.Interval, "notAfter", b.current.cert.NotAfter.UTC().Format(time.RFC3339))
		b.lastSyncErr = err.Error()
		b.warnSecret(err)
	}
}

// syncFiles syncs the Secret and writes what it holds into CertDir.
func (b *Bootstrapper) syncFiles(ctx context.Context) error {
	next, err := b.syncSecret(ctx)
	if err != nil {
		return err
	}
	changed, err := writeFiles(b.cfg.CertDir, next)
	if err != nil {
		return err
	}
	if changed {
		klog.InfoS("Wrote the serving certificate", "dir", b.cfg.CertDir, "serial", next.cert.SerialNumber.Text(16),
			"notAfter", next.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	b.current = next
	return nil
}

// retriable tells an error that may pass (the kube-apiserver restarting or
// overloaded) from one that needs a person (RBAC, a Secret not ours, a
// read-only --cert-dir).
func retriable(err error) bool {
	if errors.Is(err, errNotOurs) || errors.Is(err, errWrite) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
			apierrors.IsInternalError(err) || apierrors.IsServiceUnavailable(err)
	}
	return true
}
