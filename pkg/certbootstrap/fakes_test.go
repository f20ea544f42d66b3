package certbootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	clienttesting "k8s.io/client-go/testing"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

const (
	testNS     = "kube-system"
	testSecret = "metrics-server-tls"
	v1API      = "v1.metrics.k8s.io"
	v1beta1API = "v1beta1.metrics.k8s.io"
)

var secretsGVR = corev1.SchemeGroupVersion.WithResource("secrets")

// cluster is a fake kube-apiserver for the bootstrap: Secrets with
// optimistic concurrency (create fails with AlreadyExists, an update at a
// stale resourceVersion with Conflict, as the real one does; managedFields
// kept per field manager) and APIServices.
type cluster struct {
	kube *kubefake.Clientset
	agg  *aggfake.Clientset

	mu sync.Mutex
	rv int
}

func newCluster(t *testing.T, apiServices ...*apiregv1.APIService) *cluster {
	t.Helper()
	var objs []runtime.Object
	for _, a := range apiServices {
		objs = append(objs, a)
	}
	c := &cluster{kube: kubefake.NewClientset(), agg: aggfake.NewClientset(objs...)}
	c.kube.PrependReactor("create", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		create := a.(clienttesting.CreateActionImpl)
		s := create.GetObject().(*corev1.Secret).DeepCopy()
		c.mu.Lock()
		defer c.mu.Unlock()
		c.rv++
		s.ResourceVersion = strconv.Itoa(c.rv)
		if err := c.kube.Tracker().Create(secretsGVR, s, s.Namespace, create.GetCreateOptions()); err != nil {
			return true, nil, err
		}
		return true, s, nil
	})
	c.kube.PrependReactor("update", "secrets", func(a clienttesting.Action) (bool, runtime.Object, error) {
		update := a.(clienttesting.UpdateActionImpl)
		s := update.GetObject().(*corev1.Secret).DeepCopy()
		c.mu.Lock()
		defer c.mu.Unlock()
		cur, err := c.kube.Tracker().Get(secretsGVR, s.Namespace, s.Name)
		if err != nil {
			return true, nil, err
		}
		if cur.(*corev1.Secret).ResourceVersion != s.ResourceVersion {
			return true, nil, apierrors.NewConflict(secretsGVR.GroupResource(), s.Name,
				fmt.Errorf("resourceVersion %s is not the stored %s", s.ResourceVersion, cur.(*corev1.Secret).ResourceVersion))
		}
		c.rv++
		s.ResourceVersion = strconv.Itoa(c.rv)
		if err := c.kube.Tracker().Update(secretsGVR, s, s.Namespace, update.GetUpdateOptions()); err != nil {
			return true, nil, err
		}
		return true, s, nil
	})
	return c
}

// bootstrapper returns a Bootstrapper on c writing into dir, syncing every
// interval (0: the default) at the time clk tells (nil: the real clock).
func (c *cluster) bootstrapper(t *testing.T, dir string, clk clock.PassiveClock, interval time.Duration) *Bootstrapper {
	t.Helper()
	b, err := New(Config{
		Namespace: testNS, Name: testSecret, Service: "metrics-server",
		APIServiceNames: []string{v1API, v1beta1API},
		CertDir:         dir,
		Secrets:         c.kube.CoreV1(),
		APIServices:     c.agg.ApiregistrationV1(),
		Interval:        interval,
		Clock:           clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (c *cluster) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	s, err := c.kube.CoreV1().Secrets(testNS).Get(context.Background(), testSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (c *cluster) apiService(t *testing.T, name string) *apiregv1.APIService {
	t.Helper()
	a, err := c.agg.ApiregistrationV1().APIServices().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// writes counts the Secret writes of verb ("create", "update") seen so far.
func (c *cluster) writes(verb string) int {
	n := 0
	for _, a := range c.kube.Actions() {
		if a.GetVerb() == verb && a.GetResource() == secretsGVR {
			n++
		}
	}
	return n
}

// metricsAPIService is an APIService as upstream's manifests ship it:
// served by the metrics-server Service, TLS not verified.
func metricsAPIService(name string) *apiregv1.APIService {
	version, group, _ := strings.Cut(name, ".")
	return &apiregv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: apiregv1.APIServiceSpec{
			Service:               &apiregv1.ServiceReference{Namespace: testNS, Name: "metrics-server", Port: ptr.To[int32](443)},
			Group:                 group,
			Version:               version,
			InsecureSkipTLSVerify: true,
			GroupPriorityMinimum:  100,
			VersionPriority:       100,
		},
	}
}

// readFiles returns the files in dir.
func readFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, name := range []string{FileCA, FileServing} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	return out
}

// barrier holds the first n callers of wait until all n have come (5s at
// most), so that they act on what each saw before any of them wrote.
type barrier struct {
	mu      sync.Mutex
	n, seen int
	all     chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, all: make(chan struct{})} }

func (b *barrier) wait() {
	b.mu.Lock()
	b.seen++
	if b.seen > b.n {
		b.mu.Unlock()
		return
	}
	if b.seen == b.n {
		close(b.all)
	}
	b.mu.Unlock()
	select {
	case <-b.all:
	case <-time.After(5 * time.Second):
	}
}

// heldSecrets is a SecretsGetter whose Secret reads each wait, after
// reading, at bar: the fake clientset runs its reactors under one lock, so
// the wait cannot be a reactor.
type heldSecrets struct {
	corev1client.SecretsGetter
	bar *barrier
}

func (h heldSecrets) Secrets(ns string) corev1client.SecretInterface {
	return heldSecret{h.SecretsGetter.Secrets(ns), h.bar}
}

type heldSecret struct {
	corev1client.SecretInterface
	bar *barrier
}

func (h heldSecret) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error) {
	s, err := h.SecretInterface.Get(ctx, name, opts)
	h.bar.wait()
	return s, err
}

// holdFirstReads makes the first n Secret reads of bs each wait, after
// reading, until all n have read.
func holdFirstReads(n int, bs ...*Bootstrapper) {
	bar := newBarrier(n)
	for _, b := range bs {
		b.cfg.Secrets = heldSecrets{b.cfg.Secrets, bar}
	}
}

func newFakeClock(t time.Time) *clocktesting.FakePassiveClock {
	return clocktesting.NewFakePassiveClock(t)
}
