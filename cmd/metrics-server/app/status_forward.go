package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// portForward forwards a free loopback port to the secure port of a ready
// pod behind the Service namespace/service, as kubectl port-forward does
// (WebSockets, falling back to SPDY), and returns the https base URL and
// stop, which ends the forward.
func portForward(ctx context.Context, cfg *rest.Config, kube kubernetes.Interface, namespace, service string) (base string, stop func(), err error) {
	pod, port, err := readyBackend(ctx, kube, namespace, service)
	if err != nil {
		return "", nil, err
	}
	req := kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod.Name).SubResource("portforward")
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("preparing the port-forward to pod %s/%s: %w", namespace, pod.Name, err)
	}
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: transport}, http.MethodPost, req.URL())
	if ws, err := portforward.NewSPDYOverWebsocketDialer(req.URL(), cfg); err == nil {
		dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
	}
	fwdCtx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var errOut strings.Builder
	fw, err := portforward.NewOnAddressesWithContext(fwdCtx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, ready, io.Discard, &errOut)
	if err != nil {
		cancel()
		return "", nil, fmt.Errorf("port-forwarding to pod %s/%s port %d: %w", namespace, pod.Name, port, err)
	}
	failed := make(chan error, 1)
	go func() { failed <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-failed:
		cancel()
		return "", nil, fmt.Errorf("port-forwarding to pod %s/%s port %d (you need create on pods/portforward there; or pass --server): %w %s", namespace, pod.Name, port, err, errOut.String())
	case <-ctx.Done():
		cancel()
		return "", nil, fmt.Errorf("port-forwarding to pod %s/%s port %d: %w", namespace, pod.Name, port, context.Cause(ctx))
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) == 0 {
		cancel()
		return "", nil, fmt.Errorf("port-forwarding to pod %s/%s: no local port: %v", namespace, pod.Name, err)
	}
	stop = func() {
		cancel()
		select {
		case <-failed:
		case <-time.After(5 * time.Second):
		}
	}
	return fmt.Sprintf("https://127.0.0.1:%d", ports[0].Local), stop, nil
}

// readyBackend returns a ready pod the Service selects and the pod port its
// secure port (the port named https, else the first) targets.
func readyBackend(ctx context.Context, kube kubernetes.Interface, namespace, service string) (*corev1.Pod, int, error) {
	svc, err := kube.CoreV1().Services(namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return nil, 0, fmt.Errorf("reading Service %s/%s to find a metrics-server pod (or pass --server, --namespace, --service): %w", namespace, service, err)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, 0, fmt.Errorf("service %s/%s is of type ExternalName (%s): metrics-server runs outside the cluster, with no pod to port-forward to; pass --server https://host:port of it", namespace, service, svc.Spec.ExternalName)
	}
	if len(svc.Spec.Selector) == 0 || len(svc.Spec.Ports) == 0 {
		return nil, 0, fmt.Errorf("service %s/%s has no selector or no port (type %s): pass --server https://host:port of a metrics-server", namespace, service, svc.Spec.Type)
	}
	sp := svc.Spec.Ports[0]
	for _, p := range svc.Spec.Ports {
		if p.Name == "https" {
			sp = p
		}
	}
	pods, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return nil, 0, fmt.Errorf("listing the pods of Service %s/%s: %w", namespace, service, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil || !podReady(p) {
			continue
		}
		port, err := targetPort(p, sp)
		if err != nil {
			return nil, 0, err
		}
		return p, port, nil
	}
	return nil, 0, fmt.Errorf("no ready pod behind Service %s/%s (%d selected: kubectl -n %s get pods -l %s); when metrics-server runs outside the cluster (a process, as in the local playground), pass --server https://host:port of it",
		namespace, service, len(pods.Items), namespace, labels.SelectorFromSet(svc.Spec.Selector))
}

func podReady(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// targetPort resolves a Service port's target on pod p: a number, or a
// container port's name; unset means the port itself.
func targetPort(p *corev1.Pod, sp corev1.ServicePort) (int, error) {
	switch {
	case sp.TargetPort.IntValue() > 0:
		return sp.TargetPort.IntValue(), nil
	case sp.TargetPort.StrVal != "":
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.Name == sp.TargetPort.StrVal {
					return int(cp.ContainerPort), nil
				}
			}
		}
		return 0, fmt.Errorf("pod %s/%s has no container port named %q (the Service's targetPort)", p.Namespace, p.Name, sp.TargetPort.StrVal)
	}
	return int(sp.Port), nil
}
