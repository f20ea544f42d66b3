package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/kubemetrics/metrics-server/test/fleet"
)

// writePodsToEtcd stores Running pods bound to the nodes straight into
// etcd, in the kube-apiserver's storage encoding (protobuf, identity
// transformer, /registry/pods/<namespace>/<name>), many at once. The apiserver's watch cache and every informer see them as
// if created and started through the API, at a fraction of the cost:
// through the API each pod is a create and a status update with admission,
// validation and managed fields, about 250 pods a second on two cores; at
// 10,000 nodes x 30 pods that alone is 20 minutes. The servers under test
// read pods only through the apiserver, so nothing they see differs.
func writePodsToEtcd(ctx context.Context, etcdURL string, nodes []string, nodeIPs map[string]string, perNode, containers int) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcdURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("connecting to etcd: %w", err)
	}
	defer cli.Close()
	enc := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	started := metav1.NewTime(time.Now().Add(-10 * time.Minute).Truncate(time.Second))
	// One put per pod, each its own revision, as the apiserver writes: a
	// watch resumes from the last revision it delivered, so several pods
	// in one revision could be lost to a watcher restarted between them.
	type put struct{ key, value string }
	work := make(chan put)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for p := range work {
				pctx, cancel := context.WithTimeout(ctx, time.Minute)
				_, err := cli.Put(pctx, p.key, p.value)
				cancel()
				if err != nil {
					select {
					case errs <- fmt.Errorf("writing %s to etcd: %w", p.key, err):
					default:
					}
				}
			}
		})
	}
	var encErr error
	for ni, node := range nodes {
		if strings.HasSuffix(node, "-host") || encErr != nil || len(errs) > 0 {
			continue
		}
		for p := range perNode {
			pod := runningBenchPod(ni, p, node, nodeIPs[node], containers, started)
			var b strings.Builder
			if err := enc.Encode(pod, &b); err != nil {
				encErr = fmt.Errorf("encoding pod %s: %w", pod.Name, err)
				break
			}
			work <- put{"/registry/pods/" + pod.Namespace + "/" + pod.Name, b.String()}
		}
	}
	close(work)
	wg.Wait()
	if encErr != nil {
		return encErr
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	return nil
}

// benchPod is pod p of node ni: bound, with the defaults the apiserver
// would fill, and the usage annotation the fleet plays. Written to etcd it
// also gets a UID, a creation time and the Running status the fleet's
// kubelet would report; created through the API it gets none of those.
func benchPod(ni, p int, node string, containers int) *corev1.Pod {
	grace := int64(30)
	noToken := false
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("pod-%05d-%02d", ni, p), Namespace: "default",
			Labels:      map[string]string{"bench": "fleet", "app": fmt.Sprintf("app-%d", p)},
			Annotations: map[string]string{fleet.UsageAnnotation: benchUsage(ni, p)},
		},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyAlways, DNSPolicy: corev1.DNSClusterFirst,
			TerminationGracePeriodSeconds: &grace, SchedulerName: corev1.DefaultSchedulerName,
			ServiceAccountName: "default", DeprecatedServiceAccount: "default", AutomountServiceAccountToken: &noToken,
			SecurityContext: &corev1.PodSecurityContext{}, EnableServiceLinks: new(true),
		},
	}
	for c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: fmt.Sprintf("c%d", c), Image: "registry.invalid/bench:1", ImagePullPolicy: corev1.PullIfNotPresent,
			TerminationMessagePath: corev1.TerminationMessagePathDefault, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		})
	}
	return pod
}

// benchUsage is the per-container load of pod p of node ni: on the large
// machines the fleet makes every third node (fleet.IsLarge), pod 0 is a
// database of 18 GiB a container and pod 1 a JVM of 6 GiB; every other
// pod is a small service.
func benchUsage(ni, p int) string {
	if fleet.IsLarge(ni) {
		switch p {
		case 0:
			return "cpu=2500m,memory=18Gi"
		case 1:
			return "cpu=800m,memory=6Gi"
		}
	}
	return "cpu=50m,memory=64Mi"
}

// runningBenchPod is benchPod as stored after its kubelet reported it
// Running since started.
func runningBenchPod(ni, p int, node, nodeIP string, containers int, started metav1.Time) *corev1.Pod {
	pod := benchPod(ni, p, node, containers)
	pod.UID = uuid.NewUUID()
	pod.CreationTimestamp = started
	pod.Status.QOSClass = corev1.PodQOSBestEffort
	pod.Status = fleet.RunningStatus(pod, nodeIP, started)
	return pod
}
